"""Subject resolution through Microsoft Graph (shared/aml/identity.py) against the simulator, with the real managed-
identity credential: which calls, which identifiers from where, what is missing, and where the token goes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential

from devtools.amlsim import Simulator, demo_tenant
from devtools.amlsim.identity import TokenIssuer
from shared.aml import identity
from shared.core import settings as names
from shared.core.matching import Subject
from shared.core.settings import Settings
from tests.conftest import APP_CLIENT_ID

SELECTED = "id,userPrincipalName,mail,otherMails"


@pytest.fixture
def sim(
    issuer: TokenIssuer, tls: tuple[Path, Path], identity_endpoint: Any, monkeypatch
) -> Iterator[Simulator]:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))
    with Simulator(demo_tenant(), issuer, cert=tls[0], key=tls[1]) as simulator:
        yield simulator


def settings_for(sim: Simulator, **over: str) -> Settings:
    env = {
        names.STORAGE_BLOB_URI: "https://127.0.0.1:1/devstoreaccount1",
        names.STORAGE_QUEUE_URI: "https://127.0.0.1:2/devstoreaccount1",
        names.STORAGE_TABLE_URI: "https://127.0.0.1:3/devstoreaccount1",
        names.PSEUDONYM_KEY: "k",
        names.ALLOWED_HOSTS: sim.base_url.removeprefix("https://"),
        names.GRAPH_BASE_URL: sim.graph_url,
        **over,
    }
    return Settings.from_env(env)


def run(sim: Simulator, subject: Subject, **over: str) -> tuple[Subject, dict[str, Any]]:
    settings = settings_for(sim, **over)
    client = identity.graph_client(settings, ManagedIdentityCredential(client_id=APP_CLIENT_ID))
    return identity.resolve(settings, client, subject)


def graph_calls(sim: Simulator) -> list[dict[str, Any]]:
    return [e for e in sim.log if e["host"] == "graph.microsoft.com"]


def sources(record: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {i["kind"]: (i["value"], i["source"]) for i in record["identifiers"] if i["kind"] != "otherMails"}


def test_upn_only_is_resolved_to_object_id_and_mail(sim: Simulator) -> None:
    alice = sim.tenant.people["alice"]
    subject, record = run(sim, Subject(user_principal_name=alice.upn))
    assert subject == Subject(alice.object_id, alice.upn, alice.email, ("alice.smith@outlook.com",))
    assert sources(record) == {
        "userPrincipalName": (alice.upn, "request"),
        "objectId": (alice.object_id, "graph"),
        "email": (alice.email, "graph"),
    }
    assert record["graph"]["outcome"] == "resolved"
    assert record["missing"] == []
    calls = graph_calls(sim)
    assert [(c["path"], c["query"]["$select"]) for c in calls] == [(f"/v1.0/users/{alice.upn}", SELECTED)]
    assert {c["auth"] for c in calls} == {"valid"}


def test_email_only_is_resolved_through_the_mail_filter(sim: Simulator) -> None:
    alice = sim.tenant.people["alice"]
    subject, record = run(sim, Subject(email=alice.email))
    assert (subject.object_id, subject.user_principal_name) == (alice.object_id, alice.upn)
    assert sources(record)["objectId"] == (alice.object_id, "graph")
    calls = graph_calls(sim)
    assert [c["status"] for c in calls] == [404, 200]  # not a UPN, then found by mail
    assert calls[1]["path"] == "/v1.0/users"
    assert calls[1]["query"]["$filter"] == (
        f"mail eq '{alice.email}' or otherMails/any(x:x eq '{alice.email}')"
    )
    assert calls[1]["query"]["$count"] == "true"


def test_a_guest_with_the_same_display_name_stays_herself(sim: Simulator) -> None:
    guest = sim.tenant.people["asmith"]
    subject, _ = run(sim, Subject(email=guest.email))
    assert subject.object_id == guest.object_id
    assert subject.object_id != sim.tenant.people["alice"].object_id
    assert graph_calls(sim)[0]["path"] == "/v1.0/users/alice.smith@fabrikam.com"
    # And her guest UPN (with its #EXT#) goes into the path percent-encoded, and is found
    by_upn, record = run(sim, Subject(user_principal_name=guest.upn))
    assert by_upn.object_id == guest.object_id
    assert record["graph"]["calls"] == 1


@pytest.mark.parametrize("given", ["objectId", "userPrincipalName"])
def test_a_soft_deleted_person_is_resolved_through_deleted_items(sim: Simulator, given: str) -> None:
    erin = sim.tenant.people["erin"]
    sim.graph.soft_delete("erin")
    request = (
        Subject(object_id=erin.object_id) if given == "objectId" else Subject(user_principal_name=erin.upn)
    )
    subject, record = run(sim, request)
    assert subject == Subject(erin.object_id, erin.upn, erin.email)  # the UPN without Entra's deletion prefix
    assert {source for _, source in sources(record).values()} == {"request", "graph-deleted-items"}
    assert record["graph"]["outcome"] == "resolved from deleted items"
    assert "/directory/deletedItems" in graph_calls(sim)[-1]["path"]


def test_graph_not_configured_runs_on_the_request_and_names_the_missing_kinds(sim: Simulator) -> None:
    alice = sim.tenant.people["alice"]
    subject, record = run(sim, Subject(user_principal_name=alice.upn), DSR_GRAPH_BASE_URL="")
    assert subject == Subject(user_principal_name=alice.upn)
    assert record["graph"]["outcome"] == "not configured"
    assert [m["kind"] for m in record["missing"]] == ["objectId", "email"]
    assert record["missing"][0]["fields"] == [
        "createdBy.userObjectId",
        "properties.properties.createdBy.userId",
        "properties.properties.personalComputeInstanceSettings.assignedUser.objectId",
        "CreatedBy.UserObjectId",
    ]
    assert "systemData.createdBy" in record["missing"][1]["fields"]
    assert "ARM systemData.createdBy" in record["missing"][1]["effect"]
    assert graph_calls(sim) == []


def test_graph_403_is_recorded_and_resolution_goes_on_without(
    sim: Simulator, issuer: TokenIssuer, monkeypatch
) -> None:
    alice = sim.tenant.people["alice"]
    monkeypatch.setattr(issuer, "graph_roles", ())  # the app role was never granted
    subject, record = run(sim, Subject(user_principal_name=alice.upn))
    assert subject == Subject(user_principal_name=alice.upn)
    assert record["graph"]["outcome"] == "denied"
    assert "403 Authorization_RequestDenied" in record["graph"]["detail"]
    assert "User.Read.All" in record["graph"]["detail"]
    assert [m["kind"] for m in record["missing"]] == ["objectId", "email"]


def test_the_graph_token_goes_only_to_the_allow_listed_graph_host(sim: Simulator) -> None:
    alice = sim.tenant.people["alice"]
    # Graph's host off the allow-list: nothing is sent, and the request says so
    settings = settings_for(sim, DSR_GRAPH_BASE_URL="https://graph.attacker.invalid")
    asked: list[str] = []

    @dataclasses.dataclass
    class Spy:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            asked.extend(scopes)
            raise AssertionError("no token may be asked for a host off the allow-list")

    client = identity.graph_client(settings, Spy())
    subject, record = identity.resolve(settings, client, Subject(user_principal_name=alice.upn))
    assert record["graph"]["outcome"] == "not allowed"
    assert subject == Subject(user_principal_name=alice.upn)
    assert asked == []
    # And the Graph client's allow-list is the Graph host alone, even when other hosts are allowed
    public = Settings.from_env(
        {
            names.STORAGE_BLOB_URI: "https://b",
            names.STORAGE_QUEUE_URI: "https://q",
            names.STORAGE_TABLE_URI: "https://t",
            names.PSEUDONYM_KEY: "k",
        }
    )
    graph = identity.graph_client(public, Spy())
    assert graph is not None
    assert graph.audience == "https://graph.microsoft.com/.default"
    assert graph.allow_list.allows("https://graph.microsoft.com/v1.0/users/x")
    assert not graph.allow_list.allows("https://management.azure.com/subscriptions")
    assert not graph.allow_list.allows("https://westeurope.api.azureml.ms/history")


# -- the plan step: resolution stored once on the request, shown in the status, the manifest and index.html ---
def _submit_and_plan(rt: Any, subject: dict[str, str]) -> Any:
    from shared.lifecycle import intake, planning
    from shared.lifecycle.submission import SubmitIn

    body = SubmitIn.model_validate(
        {
            "type": "export",
            "subject": subject,
            "scope": {"subscriptions": ["6d6e2f4a-3c1b-4e8f-9a7d-5b2c1e0f4a01"]},
        }
    )
    request, _ = intake.submit(rt, body, None)
    assert planning.plan(rt, request.id) == "planned"
    return rt.store.get_request(request.id)


def test_plan_without_graph_still_plans_and_says_what_is_missing(rt: Any) -> None:
    from shared.evidence.manifest import build_manifest
    from shared.evidence.package_html import render_index
    from shared.lifecycle.status import status_view

    unconfigured = dataclasses.replace(
        rt, settings=dataclasses.replace(rt.settings, graph_base_url=""), graph=None
    )
    stored = _submit_and_plan(unconfigured, {"userPrincipalName": "alice@contoso.com"})
    assert stored.status == "running"
    assert stored.identity["graph"]["outcome"] == "not configured"
    assert stored.identity["identifiers"] == [
        {"kind": "userPrincipalName", "value": "alice@contoso.com", "source": "request"}
    ]
    assert [m["kind"] for m in stored.identity["missing"]] == ["objectId", "email"]
    view = status_view(unconfigured, stored, "https://x")
    assert view["identity"] == stored.identity
    manifest = build_manifest(stored, [])
    assert manifest["request"]["identity"] == stored.identity
    page = "".join(render_index(manifest, None, {}, lambda path: iter(())))
    assert "UPN alice@contoso.com: given in the request" in page
    assert "Microsoft Graph: not configured" in page
    assert (
        "ARM systemData.createdBy (newer api-versions; none at 2019-11-01) holds a UPN or e-mail: no e-mail address known"
        in page
    )


def test_plan_resolves_once_and_a_redelivered_plan_keeps_it(
    rt: Any, sim: Simulator, issuer: TokenIssuer
) -> None:
    from shared.lifecycle import planning

    alice = sim.tenant.people["alice"]
    settings = dataclasses.replace(
        rt.settings, graph_base_url=sim.graph_url, allowed_hosts=(sim.base_url.removeprefix("https://"),)
    )
    wired = dataclasses.replace(
        rt,
        settings=settings,
        graph=identity.graph_client(settings, ManagedIdentityCredential(client_id=APP_CLIENT_ID)),
    )
    stored = _submit_and_plan(wired, {"userPrincipalName": alice.upn})
    assert stored.subject.object_id == alice.object_id
    assert stored.identity["graph"]["calls"] == 1
    # The person is then deleted from Entra ID; a re-delivered plan message neither calls Graph nor changes a thing
    sim.graph.soft_delete("alice")
    assert planning.plan(wired, stored.id) == "planned"
    again = rt.store.get_request(stored.id)
    assert again.identity == stored.identity
    assert again.subject == stored.subject
    assert len(graph_calls(sim)) == 1
    # And the object id Graph added finds the request in the subject index
    assert [r["id"] for r in rt.store.requests_of_subject(wired.pseudonym(alice.object_id))] == [stored.id]


def test_a_short_graph_429_is_waited_out(sim: Simulator) -> None:
    alice = sim.tenant.people["alice"]
    sim.inject_fault(route=r"^GET /graph\.microsoft\.com/", status=429, retry_after=1, count=1)
    subject, record = run(sim, Subject(user_principal_name=alice.upn))
    assert subject.object_id == alice.object_id
    assert [c["status"] for c in graph_calls(sim)] == [429, 200]
    assert record["graph"]["outcome"] == "resolved"


def test_a_long_graph_429_re_enqueues_the_plan_unresolved(rt: Any, sim: Simulator, monkeypatch) -> None:
    from shared.core import settings as names
    from shared.lifecycle import intake, planning
    from shared.lifecycle.submission import SubmitIn

    settings = dataclasses.replace(
        rt.settings, graph_base_url=sim.graph_url, allowed_hosts=(sim.base_url.removeprefix("https://"),)
    )
    wired = dataclasses.replace(
        rt,
        settings=settings,
        graph=identity.graph_client(settings, ManagedIdentityCredential(client_id=APP_CLIENT_ID)),
    )
    sent: list[tuple[str, dict[str, Any], float]] = []
    monkeypatch.setattr(
        wired.storage, "send", lambda q, m, delay_seconds=0: sent.append((q, m, delay_seconds))
    )
    body = SubmitIn.model_validate(
        {
            "type": "export",
            "subject": {"email": "bob@contoso.com"},
            "scope": {"subscriptions": ["6d6e2f4a-3c1b-4e8f-9a7d-5b2c1e0f4a01"]},
        }
    )
    request, _ = intake.submit(wired, body, None)
    sent.clear()
    sim.inject_fault(route=r"^GET /graph\.microsoft\.com/", status=429, retry_after=120, count=1)
    assert planning.plan(wired, request.id) == "throttled"
    assert sent == [(names.PLAN_QUEUE, {"requestId": request.id}, 120.0)]
    stored = rt.store.get_request(request.id)
    assert stored.identity is None
    assert stored.status == "accepted"
    # The plan message comes back after the wait: resolved then, planned
    assert planning.plan(wired, request.id) == "planned"
    assert rt.store.get_request(request.id).subject.object_id == sim.tenant.people["bob"].object_id


def test_a_request_whose_identifiers_disagree_with_graph_is_not_widened(sim: Simulator) -> None:
    alice, guest = sim.tenant.people["alice"], sim.tenant.people["asmith"]
    # Given alice's object id paired with the guest's e-mail (a help-desk typo)
    subject, record = run(sim, Subject(object_id=alice.object_id, email=guest.email))
    # Then Graph adds alice's UPN, keeps the request's e-mail, and records the disagreement
    assert subject.user_principal_name == alice.upn
    assert subject.email == guest.email
    assert alice.email not in subject.identifiers()
    assert record["graph"]["conflicts"] == [
        "the request's e-mail address differs from the one Graph holds for this person; the request's is used"
    ]


def test_resolution_logs_carry_no_identifier(sim: Simulator, caplog: Any) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="shared")
    alice = sim.tenant.people["alice"]
    run(sim, Subject(email=alice.email))
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("shared")]
    assert ours, "the resolution logs its outcome"
    values = {alice.object_id, alice.upn, alice.email, "alice.smith@outlook.com", "contoso"}
    assert [line for line in ours if any(v.lower() in line.lower() for v in values)] == []


def test_plan_with_graph_denied_still_plans_and_records_why(
    rt: Any, sim: Simulator, issuer: TokenIssuer, monkeypatch
) -> None:
    from shared.lifecycle.status import status_view

    monkeypatch.setattr(issuer, "graph_roles", ())  # User.Read.All not granted to the identity
    settings = dataclasses.replace(
        rt.settings, graph_base_url=sim.graph_url, allowed_hosts=(sim.base_url.removeprefix("https://"),)
    )
    wired = dataclasses.replace(
        rt,
        settings=settings,
        graph=identity.graph_client(settings, ManagedIdentityCredential(client_id=APP_CLIENT_ID)),
    )
    stored = _submit_and_plan(wired, {"email": "carol.white@contoso.com"})
    assert stored.status == "running"
    assert stored.subject == Subject(email="carol.white@contoso.com")
    assert stored.identity["graph"]["outcome"] == "denied"
    assert [m["kind"] for m in stored.identity["missing"]] == ["objectId", "userPrincipalName"]
    assert [c["status"] for c in graph_calls(sim)] == [403]
    assert status_view(wired, stored, "https://x")["identity"]["graph"]["outcome"] == "denied"


def test_a_person_graph_does_not_know_is_not_found_and_runs_on_the_request(sim: Simulator) -> None:
    subject, record = run(sim, Subject(user_principal_name="nobody@contoso.com"))
    assert subject == Subject(user_principal_name="nobody@contoso.com")
    assert record["graph"]["outcome"] == "not found"
    calls = graph_calls(sim)
    assert [(c["path"], c["status"]) for c in calls] == [
        ("/v1.0/users/nobody@contoso.com", 404),
        ("/v1.0/users", 200),
        ("/v1.0/directory/deletedItems/microsoft.graph.user", 200),
    ]
    assert calls[2]["query"]["$filter"] == (
        "mail eq 'nobody@contoso.com' or endsWith(userPrincipalName,'nobody@contoso.com')"
    )
    assert [m["kind"] for m in record["missing"]] == ["objectId", "email"]
