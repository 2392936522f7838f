"""Erasure through the local host: exactly the subject's objects go, proven gone; nothing else changes."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from urllib.parse import unquote

import pytest
import requests
from azure.identity import ManagedIdentityCredential

from devtools.amlsim.fixture import demo_tenant
from devtools.demo import container_client, status, submit, wait
from devtools.stack import APP_CLIENT_ID
from shared.core.matching import Subject
from shared.core.model import DsrRequest, Task, WorkspaceRef, utcnow
from shared.core.settings import Settings
from shared.evidence import audit
from shared.lifecycle import workspace_checks
from shared.runtime import Runtime
from shared.tasks import dispatch

PERSON = "alice"
DELETABLE = ("services", "images", "models", "assets")


@pytest.fixture
def fresh(sim):
    """The demo tenant as seeded (erasure tests change it), default LRO behaviour."""
    sim.reset(demo_tenant())
    sim.set_lro(polls_in_progress=2, outcome="Succeeded", retry_after=1, initial_status=202)
    sim.set_service_lro(initial_status=202, polls_in_progress=2, outcome="Succeeded", retry_after=1)
    sim.clear_log()
    yield sim
    sim.set_service_lro()
    sim.set_lro()
    sim.reset(demo_tenant())  # later test modules see the tenant as seeded


def person_headers(principal_id: str, name: str) -> dict[str, str]:
    claims = {"auth_typ": "aad", "claims": [{"typ": "roles", "val": "DSR.Approve"}]}
    return {
        "X-MS-CLIENT-PRINCIPAL-ID": principal_id,
        "X-MS-CLIENT-PRINCIPAL-NAME": name,
        "X-MS-CLIENT-PRINCIPAL": base64.b64encode(json.dumps(claims).encode()).decode(),
    }


OFFICER_A = person_headers("11111111-aaaa-4aaa-8aaa-000000000001", "officer.a@contoso.com")
OFFICER_B = person_headers("22222222-bbbb-4bbb-8bbb-000000000002", "officer.b@contoso.com")


def post(stack, path, body=None, headers=None):
    return requests.post(
        f"{stack.api_url}/v1/{path}",
        json=body,
        headers={"x-functions-key": stack.function_key, **(headers or {})},
        timeout=30,
    )


def subject(sim, key=PERSON):
    p = sim.tenant.people[key]
    return {"objectId": p.object_id, "userPrincipalName": p.upn, "email": p.email}


def subscriptions(sim):
    return sorted({ws.subscription_id for ws in sim.tenant.workspaces.values()})


def erasure(sim, **over):
    body = {"type": "erasure", "subject": subject(sim), "scope": {"subscriptions": subscriptions(sim)}}
    body.update(over)
    return body


def record_of(stack, view):
    blob = container_client(stack).get_blob_client(f"{view['id']}/erasure-record.json")
    return json.loads(blob.download_blob().readall())


def objects(snapshot):
    """{(workspace, family, id): body} of every object in a simulator snapshot."""
    return {
        (ws["id"], family, obj["id"]): obj["body"]
        for ws in snapshot["workspaces"]
        for family, items in ws["families"].items()
        for obj in items
    }


def deletes(sim):
    return [e for e in sim.log if e["method"] == "DELETE"]


def last_segment(entry):
    return unquote(entry["path"].rsplit("/", 1)[-1])


def approve_and_wait(stack, view, headers=OFFICER_A):
    response = post(stack, f"requests/{view['id']}:approve", {"reason": "ticket verified"}, headers)
    assert response.status_code == 200, response.text
    assert response.json()["decision"]["by"]["name"] == headers["X-MS-CLIENT-PRINCIPAL-NAME"]
    return wait(stack, view["links"]["self"], timeout=240)


def test_dry_run_lists_what_the_erasure_then_deletes_and_nothing_else_changes(stack, fresh):
    sim = fresh
    before = objects(sim.snapshot())
    # what the contract lets an erasure attribute to her: models and services by object id; images packaging
    # only her models and assets of her runs by rule (the contract names no creator on those)
    owned = sim.tenant.erasable(PERSON)
    assert {k[1] for k in owned} == set(DELETABLE)
    assert all(sim_owner(sim, k) == PERSON for k in owned if k[1] in ("models", "services"))
    # Given a dry run: it needs no approval, sends no DELETE and lists every matched object
    dry = submit(stack, erasure(sim, dryRun=True))
    assert dry.status_code == 202
    dry_view = wait(stack, dry.headers["Location"], timeout=240)
    assert dry_view["status"] == "completed"
    assert deletes(sim) == []
    planned = {(i["workspace"], i["family"], i["id"]) for i in record_of(stack, dry_view)["items"]}
    assert {i["outcome"] for i in record_of(stack, dry_view)["items"]} == {"would delete"}
    assert planned == owned
    # When the real erasure is submitted, it waits for approval, then runs
    response = submit(stack, erasure(sim))
    view = response.json()
    assert view["status"] == "awaiting_approval"
    assert deletes(sim) == []
    done = approve_and_wait(stack, view)
    record = record_of(stack, done)
    erased = {(i["workspace"], i["family"], i["id"]) for i in record["items"]}
    # Then it worked on exactly the planned set
    assert erased == planned
    outcomes = {(i["family"], i["id"]): i["outcome"] for i in record["items"]}
    blocked = {k for k, v in outcomes.items() if v == "blocked"}
    assert set(outcomes.values()) <= {"deleted", "blocked"}
    # bob's image that packages only her model is hers by rule, but bob's service runs on it: kept and
    # reported, and so her model in it; her image that also packages bob's model is not hers to delete
    assert ("images", "fraud-img-r1:1") in blocked
    assert ("models", "churn-r1:2") in blocked
    assert ("images", "churn-img-r1:2") not in outcomes
    assert ("models", "anomaly-r1:2") not in outcomes  # names her display name only: matched to nobody
    assert done["status"] == "completed_with_errors"
    assert {e["reason"].split(":")[0] for e in done["errors"]} >= {"fraud-img-r1", "churn-r1"}
    # And every deleted object answered 404 when read back, and the DELETEs named only planned ids
    for item in record["items"]:
        if item["outcome"] == "deleted":
            # a service DELETE answers 202 and its operation is polled to Succeeded (Services_Delete)
            assert item["delete"]["status"] == (202 if item["family"] == "services" else 200)
            assert item["verification"]["status"] == 404
    deleted_paths = {last_segment(e) for e in deletes(sim)}
    assert deleted_paths == {i["id"] for i in record["items"]}
    # And the simulator's state lost exactly the deleted objects; every other object is byte-for-byte the same
    after = objects(sim.snapshot())
    gone = {k for k in erased if outcomes[(k[1], k[2])] == "deleted"}
    assert set(before) - set(after) == gone
    assert all(after[k] == before[k] for k in after)
    assert record["counts"]["services"]["deleted"] >= 1
    assert {n["what"] for n in record["notErasable"]} >= {"Run history (experiments, runs)", "Run metrics"}
    # And the v2 (ARM) objects, exported but not yet deleted by this version, are listed as not erased
    assert any(n["what"].startswith("v2 (ARM) objects") for n in record["notErasable"])


def sim_owner(sim, key):
    ws_id, family, object_id = key
    for ws in sim.tenant.workspaces.values():
        if ws.arm_id == ws_id:
            for record in ws.records(family):
                if ws.truth_id(family, record) == object_id:
                    return record.owner
    return None


def test_dependents_are_deleted_first(stack, fresh):
    sim = fresh
    response = submit(stack, erasure(sim))
    approve_and_wait(stack, response.json())
    order = [last_segment(e) for e in deletes(sim)]
    # alice's own chain: the service uses the image, the image uses the model
    assert order.index("churn-svc-r1") < order.index("churn-img-r1:1") < order.index("churn-r1:1")
    # Every object refused as in use (412 DeletionRequired) is still used by a surviving object; every deleted one
    # was used by none
    after = sim.snapshot()["workspaces"]
    users: dict[str, set[str]] = {}
    for ws in after:
        for svc in ws["families"]["services"]:
            users.setdefault(svc["body"].get("imageId"), set()).add(svc["id"])
        for img in ws["families"]["images"]:
            for model_id in img["body"].get("modelIds") or []:
                users.setdefault(model_id, set()).add(img["id"])
    conflicts = {last_segment(e) for e in sim.log if e["method"] == "DELETE" and e["status"] == 412}
    assert conflicts >= {"fraud-img-r1:1", "churn-r1:2"}
    assert all(users.get(object_id) for object_id in conflicts)
    removed = {last_segment(e) for e in sim.log if e["method"] == "DELETE" and e["status"] == 200}
    assert removed
    assert not any(users.get(object_id) for object_id in removed)


def test_every_message_delivered_twice_deletes_nothing_more_and_yields_the_same_record(stack, fresh):
    sim = fresh
    once = submit(stack, erasure(sim, dryRun=True))
    planned = record_of(stack, wait(stack, once.headers["Location"], timeout=240))["items"]
    # Run the erasure on a host that puts every message back once after it succeeded
    normal = stack.host_processes[0]
    stack.stop_host(normal)
    stack.start_host(FUNCHOST_DUPLICATE_DELIVERY="1")
    try:
        view = submit(stack, erasure(sim)).json()
        done = approve_and_wait(stack, view)
        copies = [line for line in stack.host_processes[0].log if "duplicate delivery" in line]
    finally:
        stack.stop_host(stack.host_processes[0])
        stack.start_host()
    record = record_of(stack, done)
    tasks = sum(p["tasks"] for p in done["progress"].values())
    assert len(copies) >= tasks + 1  # the plan message and every task's message came (at least) twice
    assert [(i["family"], i["id"]) for i in record["items"]] == [(i["family"], i["id"]) for i in planned]
    ids = [last_segment(e) for e in deletes(sim)]
    assert len(ids) == len(set(ids)) == len(planned)  # one DELETE per object, however often messages came
    # services answered 202: their operations were polled by (duplicated) delayed messages, never re-deleted
    services = [i for i in record["items"] if i["family"] == "services"]
    assert services
    assert {(i["delete"]["status"], i["operation"]["status"], i["outcome"]) for i in services} == {
        (202, "Succeeded", "deleted")
    }
    assert all(i["operation"]["polls"] >= 3 for i in services)
    assert (
        status(stack, f"{stack.api_url}/v1/requests/{done['id']}")["status"]
        == done["status"]
        == "completed_with_errors"
    )


def test_a_service_delete_answering_202_is_polled_to_success_then_verified(stack, fresh):
    sim = fresh
    sim.set_service_lro(initial_status=202, polls_in_progress=2, outcome="Succeeded", retry_after=1)
    services = {s for ids in sim.truth_by_workspace(PERSON).values() for s in ids["services"]}
    assert len(services) == 6
    done = approve_and_wait(stack, submit(stack, erasure(sim)).json())
    record = record_of(stack, done)
    items = {i["id"]: i for i in record["items"] if i["family"] == "services"}
    assert set(items) == services
    states = {o["service"]: o for o in sim.snapshot()["serviceOperations"]}
    for service_id, item in items.items():
        # Then the DELETE answered 202, its operation was polled NotStarted, Running, Succeeded, and only then
        # the service was read back (404)
        assert item["delete"]["status"] == 202
        op = item["operation"]
        assert (op["status"], op["polls"]) == ("Succeeded", 3)
        assert op["id"] == states[service_id]["id"]
        assert op["url"].endswith(f"/operations/{op['id']}")
        assert f"/modelmanagement/v1.0{item['workspace']}/operations/" in op["url"]
        assert op["at"] >= item["delete"]["at"]
        assert item["verification"]["status"] == 404
        assert item["outcome"] == "deleted"
        assert states[service_id]["state"] == "Succeeded"
    # One DELETE per service; each of its operation's polls came after it
    sent = [last_segment(e) for e in deletes(sim) if "/services/" in e["path"]]
    assert sorted(sent) == sorted(services)
    assert not set(sim.truth(PERSON)["services"])
    for entry in sim.log:
        if "/operations/" in entry["path"]:
            assert entry["method"] == "GET"
            assert "api-version" not in entry.get("query", "")


def test_a_service_delete_whose_operation_has_expired_is_judged_by_reading_the_service(stack, fresh):
    sim = fresh
    # Given a service DELETE answering 202 whose operation record is gone before the first poll (404)
    sim.set_service_lro(initial_status=202, retry_after=1, forget_operation=True)
    ws_id = workspace_id(sim, "mlw-prod-01")
    (service,) = sim.truth_by_workspace(PERSON)[ws_id]["services"]
    done = approve_and_wait(stack, submit(stack, erasure(sim, scope={"workspaces": [ws_id]})).json())
    # Then the task does not fail: the service is read back, and being gone, it is recorded deleted
    (item,) = [i for i in record_of(stack, done)["items"] if i["family"] == "services"]
    assert (item["id"], item["delete"]["status"]) == (service, 202)
    assert item["operation"]["status"] == "unknown (operation not found)"
    assert item["operation"]["error"]["code"] == "OperationNotFound"
    assert (item["verification"]["status"], item["outcome"]) == (404, "deleted")
    assert not [t for t in done.get("errors") or [] if "services" in str(t)]


def test_a_service_delete_still_running_after_the_bound_is_pending_not_still_visible(stack, fresh):
    sim = fresh
    # Given a service whose deletion never finishes (only mlw-prod-01's one service of alice is in scope)
    sim.set_service_lro(initial_status=202, polls_in_progress=10_000, outcome="Succeeded", retry_after=0)
    ws_id = workspace_id(sim, "mlw-prod-01")
    (service,) = sim.truth_by_workspace(PERSON)[ws_id]["services"]
    done = approve_and_wait(stack, submit(stack, erasure(sim, scope={"workspaces": [ws_id]})).json())
    record = record_of(stack, done)
    (item,) = [i for i in record["items"] if i["family"] == "services"]
    # Then the item is pending with its operation (still Running after the bound) and was not read back
    assert item["id"] == service
    assert item["outcome"] == "pending"
    assert item["verification"] is None
    assert item["operation"]["status"] == "Running"
    assert item["operation"]["polls"] == 40
    assert item["operation"]["url"].endswith("/operations/" + item["operation"]["id"])
    # and the request does not claim completion
    assert done["status"] == "completed_with_errors"
    assert f"{service}: pending" in {e["reason"] for e in done["errors"]}
    # The service is still there, the DELETE went once, and the operation was polled exactly the bound
    assert service in sim.truth(PERSON)["services"]
    assert [last_segment(e) for e in deletes(sim) if "/services/" in e["path"]] == [service]
    (op,) = [o for o in sim.snapshot()["serviceOperations"] if o["service"] == service]
    assert op["polls"] == 40


def test_request_lifecycle_reject_and_cancel(stack, fresh):
    sim = fresh
    rejected = submit(stack, erasure(sim)).json()
    r = post(stack, f"requests/{rejected['id']}:reject", {"reason": "identity not verified"}, OFFICER_A)
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["decision"]["reason"]) == ("rejected", "identity not verified")
    again = post(stack, f"requests/{rejected['id']}:approve", None, OFFICER_B)
    assert again.status_code == 409
    assert again.headers["Content-Type"].startswith("application/problem+json")
    cancelled = submit(stack, erasure(sim)).json()
    c = post(stack, f"requests/{cancelled['id']}:cancel", None, OFFICER_A)
    assert c.json()["status"] == "cancelled"
    assert deletes(sim) == []
    assert post(stack, "requests/not-a-request:cancel").status_code == 404


WS_NAME = "mlw-research-02"


def workspace_id(sim, name=WS_NAME):
    return next(ws.arm_id for ws in sim.tenant.workspaces.values() if ws.name == name)


def delete_workspace(sim, **over):
    body = {
        "type": "erasure",
        "scope": {"workspaces": [workspace_id(sim)]},
        "deleteWorkspace": {"confirm": WS_NAME},
    }
    body.update(over)
    return body


def test_workspace_deletion_polls_the_operation_and_proves_the_workspace_gone(stack, fresh):
    sim = fresh
    sim.set_lro(polls_in_progress=3, outcome="Succeeded", retry_after=1, initial_status=202)
    arm_id = workspace_id(sim)
    response = submit(stack, delete_workspace(sim), headers=OFFICER_A)
    view = response.json()
    assert view["status"] == "awaiting_approval"
    # The submitter cannot approve it, and neither can a function-key caller with no identity
    own = post(stack, f"requests/{view['id']}:approve", None, OFFICER_A)
    assert own.status_code == 403
    assert "submitter" in own.json()["detail"]
    assert post(stack, f"requests/{view['id']}:approve").status_code == 403
    done = approve_and_wait(stack, view, OFFICER_B)
    assert done["status"] == "completed", done["errors"]
    [item] = record_of(stack, done)["items"]
    assert (item["endpoint"], item["outcome"], item["delete"]["status"]) == ("D1", "purged", 202)
    assert item["operation"]["status"] == "Succeeded"
    assert item["operation"]["polls"] >= 4
    assert item["verification"]["status"] == 404
    assert all(ws["id"] != arm_id for ws in sim.snapshot()["workspaces"])
    assert sim.deleted_workspaces()[arm_id]["state"] == "purged"
    assert (
        len(
            [
                e
                for e in sim.log
                if "workspaceOperationsStatus" in e["path"] or "operation" in e["path"].lower()
            ]
        )
        >= 4
    )


def test_a_failed_workspace_deletion_is_reported_truthfully(stack, fresh):
    sim = fresh
    sim.set_lro(polls_in_progress=1, outcome="Failed", retry_after=1, initial_status=202)
    view = submit(stack, delete_workspace(sim), headers=OFFICER_A).json()
    done = approve_and_wait(stack, view, OFFICER_B)
    assert done["status"] == "completed_with_errors"
    [item] = record_of(stack, done)["items"]
    assert item["outcome"] == "operation failed"
    assert item["operation"]["error"]["code"]
    assert any(ws["id"] == workspace_id(sim) for ws in sim.snapshot()["workspaces"])


def test_export_first_archives_the_workspace_then_deletes_it(stack, fresh):
    sim = fresh
    sim.set_lro(polls_in_progress=0, outcome="Succeeded", retry_after=1, initial_status=202)
    ws = next(w for w in sim.tenant.workspaces.values() if w.name == WS_NAME)
    runs = sum(1 for _ in ws.records("runs"))
    body = delete_workspace(sim, deleteWorkspace={"confirm": WS_NAME, "exportFirst": True})
    view = submit(stack, body, headers=OFFICER_A).json()
    done = approve_and_wait(stack, view, OFFICER_B)
    assert done["status"] == "completed", done["errors"]
    manifest = json.loads(
        container_client(stack).get_blob_client(f"{done['id']}/manifest.json").download_blob().readall()
    )
    assert sum(f["records"] for f in manifest["files"] if f["family"] == "runs") == runs > 0
    assert manifest["erasureRecord"]["path"].endswith("erasure-record.json")
    assert record_of(stack, done)["items"][0]["outcome"] == "purged"


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        ({"deleteWorkspace": {}}, 422, "confirm"),
        ({"deleteWorkspace": {"confirm": "mlw-research-01"}}, 422, "confirm"),
        ({"type": "export"}, 422, "erasure"),
    ],
)
def test_workspace_deletion_is_refused_without_a_matching_confirm(stack, fresh, change, status, detail):
    body = delete_workspace(fresh)
    body.update(change)
    response = submit(stack, body)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert detail in json.dumps(response.json())


# -- an erasure record that is true: purge, or a soft delete recorded as one ------------------------------------
PURGE_API_VERSION = "2025-12-01"  # the product's default DSR_ARM_WORKSPACE_DELETE_API_VERSION


def workspace_deletes(sim, arm_id):
    return [
        e
        for e in sim.log
        if e["method"] == "DELETE"
        and e["host"] == "management.azure.com"
        and unquote(e["path"]).lower() == arm_id.lower()
    ]


def runtime() -> Runtime:
    rt = Runtime.create(Settings.from_env(), ManagedIdentityCredential(client_id=APP_CLIENT_ID))
    rt.storage.ensure()
    return rt


def run_dying_after_its_delete(rt: Runtime, monkeypatch, task: Task) -> None:
    """Run `task` on a worker that dies right after its DELETE was answered, before it kept the answer."""
    real = rt.aml.request

    def dies_after_delete(method, url, **kwargs):
        response = real(method, url, **kwargs)
        if method == "DELETE":
            raise RuntimeError("the worker died")
        return response

    monkeypatch.setattr(rt.aml, "request", dies_after_delete)
    with pytest.raises(RuntimeError, match="died"):
        dispatch.execute(rt, task.request_id, task.task_id)
    monkeypatch.setattr(rt.aml, "request", real)


def workspace_erasure(arm_id: str, status: str) -> DsrRequest:
    """A stored-request shape of an approved whole-workspace erasure, for tests that drive its task by hand."""
    return DsrRequest(
        id=str(uuid.uuid4()),
        type="erasure",
        subject=None,
        scope={"workspaces": [arm_id]},
        received_at=utcnow(),
        status=status,
        stage="done",
        delete_workspace={"confirm": WS_NAME},
    )


def links_of(rt, request_id):
    stored = rt.store.get_request(request_id)
    assert stored is not None
    return stored.links["workspaceErasure"]


def checks_of(rt, request_id):
    return [e for e in audit.trail(rt).entries(request_id) if e.action == workspace_checks.WORKSPACE_CHECKED]


def test_a_workspace_erasure_purges_it_and_the_record_says_purged(stack, fresh):
    sim = fresh
    sim.set_lro(polls_in_progress=1, outcome="Succeeded", retry_after=1, initial_status=202)
    arm_id = workspace_id(sim)
    held = next(w for w in sim.tenant.workspaces.values() if w.arm_id == arm_id).count()
    view = submit(stack, delete_workspace(sim), headers=OFFICER_A).json()
    done = approve_and_wait(stack, view, OFFICER_B)
    assert done["status"] == "completed", done["errors"]
    [item] = record_of(stack, done)["items"]
    assert (item["outcome"], item["forceToPurge"], item["recoverableUntil"]) == ("purged", True, None)
    assert item["apiVersion"] == PURGE_API_VERSION
    # The one DELETE asked for the purge at an api-version that has forceToPurge
    [sent] = workspace_deletes(sim, arm_id)
    assert sent["query"] == {"api-version": PURGE_API_VERSION, "forceToPurge": "true"}
    # And the simulator purged it: no data kept, nothing to recover
    entry = sim.deleted_workspaces()[arm_id]
    assert (entry["state"], entry["purgedBy"], entry["objectsRetained"]) == ("purged", "forceToPurge", 0)
    assert entry["objectsAtDeletion"] == held > 0
    with pytest.raises(KeyError):
        sim.recover_workspace(arm_id)
    # A later check reads it again: still 404, recorded with its time on the request and in the audit trail
    rt = runtime()
    follow = links_of(rt, done["id"])[arm_id]
    assert (follow["outcome"], follow["final"], follow["checks"]) == ("purged", False, [])
    assert workspace_checks.recheck_workspace_erasures(rt, utcnow())["checked"] == 0  # not due yet
    later = utcnow() + dt.timedelta(hours=workspace_checks.WORKSPACE_RECHECK_HOURS, minutes=1)
    assert workspace_checks.recheck_workspace_erasures(rt, later)["checked"] >= 1
    follow = links_of(rt, done["id"])[arm_id]
    assert follow["final"] is True
    assert [c["status"] for c in follow["checks"]] == [404]
    assert follow["confirmedAt"] == follow["checks"][0]["at"]
    [entry] = checks_of(rt, done["id"])
    assert (entry.details["workspace"], entry.details["status"], entry.details["final"]) == (
        arm_id,
        404,
        True,
    )
    # At least once: another run finds nothing due and records nothing more
    workspace_checks.recheck_workspace_erasures(rt, later + dt.timedelta(days=30))
    assert len(checks_of(rt, done["id"])) == 1
    assert status(stack, f"{stack.api_url}/v1/requests/{done['id']}")["related"]["workspaceErasure"][arm_id][
        "final"
    ]


def test_a_chosen_soft_delete_is_recorded_as_recoverable_until_a_date(stack, fresh):
    sim = fresh
    sim.set_lro(polls_in_progress=0, outcome="Succeeded", retry_after=1, initial_status=202)
    arm_id = workspace_id(sim)
    normal = stack.host_processes[0]
    stack.stop_host(normal)
    stack.start_host(DSR_WORKSPACE_PURGE="false")
    try:
        view = submit(stack, delete_workspace(sim), headers=OFFICER_A).json()
        done = approve_and_wait(stack, view, OFFICER_B)
    finally:
        stack.stop_host(stack.host_processes[0])
        stack.start_host()
    assert done["status"] == "completed", done["errors"]
    [item] = record_of(stack, done)["items"]
    entry = sim.deleted_workspaces()[arm_id]
    assert entry["state"] == "soft-deleted"
    assert entry["objectsRetained"] > 0
    # The record says what happened, and the date is no earlier than the simulator's own retention end
    assert item["forceToPurge"] is False
    assert "DSR_WORKSPACE_PURGE" in item["noPurgeReason"]
    assert item["outcome"] == f"soft-deleted, recoverable until {item['recoverableUntil']}"
    recorded = dt.datetime.fromisoformat(item["recoverableUntil"])
    really = dt.datetime.fromisoformat(entry["recoverableUntil"])
    assert really <= recorded < really + dt.timedelta(minutes=5)
    [sent] = workspace_deletes(sim, arm_id)
    assert "forceToPurge" not in sent["query"]
    # A check within the retention period sees 404 and waits for its end; one after it records the end
    rt = runtime()
    counts = workspace_checks.recheck_workspace_erasures(rt, utcnow() + dt.timedelta(days=1, minutes=1))
    assert counts["checked"] >= 1
    follow = links_of(rt, done["id"])[arm_id]
    assert follow["final"] is False
    assert dt.datetime.fromisoformat(follow["nextCheckAt"]) <= recorded + dt.timedelta(minutes=1)
    sim.expire_soft_deleted(recorded.timestamp() + 1)
    assert sim.deleted_workspaces()[arm_id]["purgedBy"] == "retention expired"
    workspace_checks.recheck_workspace_erasures(rt, recorded + dt.timedelta(minutes=2))
    follow = links_of(rt, done["id"])[arm_id]
    assert follow["final"] is True
    assert follow["outcome"].startswith(f"soft-deleted; its retention ended {item['recoverableUntil']}")
    assert [c["status"] for c in follow["checks"]] == [404, 404]
    assert [e.details["final"] for e in checks_of(rt, done["id"])] == [False, True]


def test_a_soft_deleted_workspace_that_is_recovered_is_caught_by_the_later_check(stack, fresh):
    sim = fresh
    sim.set_lro(initial_status=200)
    arm_id = workspace_id(sim)
    rt = runtime()
    # Given an erasure that soft-deleted a workspace (DELETE at the seed's api-version, which cannot purge)
    response = rt.aml.request(
        "DELETE", rt.settings.arm_base_url + unquote(arm_id) + "?api-version=2019-11-01"
    )
    assert response.status_code == 200
    assert sim.deleted_workspaces()[arm_id]["state"] == "soft-deleted"
    until = utcnow() + dt.timedelta(days=14)
    request = workspace_erasure(arm_id, "completed")
    record = {
        "items": [
            {
                "family": "workspace",
                "workspace": arm_id,
                "outcome": f"soft-deleted, recoverable until {until.isoformat()}",
                "forceToPurge": False,
                "recoverableUntil": until.isoformat(),
                "verification": {"status": 404, "at": utcnow().isoformat()},
            }
        ]
    }
    workspace_checks.follow_workspace_erasures(request, record)
    rt.store.create_request(request)
    # When someone recovers it within the retention period
    sim.recover_workspace(arm_id)
    counts = workspace_checks.recheck_workspace_erasures(rt, utcnow() + dt.timedelta(days=1, minutes=1))
    # Then the check sees it again and says so on the request and in the audit trail
    assert counts["visible"] >= 1
    stored = rt.store.get_request(request.id)
    assert stored is not None
    follow = stored.links["workspaceErasure"][arm_id]
    assert follow["final"] is True
    assert follow["checks"][-1]["status"] == 200
    assert follow["outcome"].startswith("visible again")
    assert any(e["workspace"] == arm_id and e["reason"] == follow["outcome"] for e in stored.errors)
    assert stored.status == "completed_with_errors"  # the request no longer reads as a clean erasure
    [entry] = checks_of(rt, request.id)
    assert entry.details["status"] == 200


@pytest.mark.parametrize("initial_status", [200, 202])
def test_a_redelivered_message_after_a_lost_delete_answer_sends_no_second_delete(
    stack, fresh, monkeypatch, initial_status
):
    sim = fresh
    # 200: the DELETE purges at once; 202: a long-running operation whose URLs were lost with the answer
    sim.set_lro(polls_in_progress=1, retry_after=1, initial_status=initial_status)
    arm_id = workspace_id(sim)
    ws = next(w for w in sim.tenant.workspaces.values() if w.arm_id == arm_id)
    rt = runtime()
    request = workspace_erasure(arm_id, "running")
    rt.store.create_request(request)
    task = Task(
        request.id,
        "ws-probe-delete",
        "workspace-delete",
        workspace=WorkspaceRef(ws.subscription_id, ws.resource_group, ws.name, ws.location),
    )
    rt.store.create_tasks([task])
    # Given a worker that dies right after the DELETE was answered, before it saved anything
    run_dying_after_its_delete(rt, monkeypatch, task)
    assert len(workspace_deletes(sim, arm_id)) == 1
    # When its message is delivered again (the lease has run out)
    stored = rt.store.get_task(request.id, task.task_id)
    assert stored is not None
    assert stored.checkpoint["phase"] == "sending"
    stored.lease_until = utcnow() - dt.timedelta(minutes=1)
    rt.store.update_task(stored)
    if initial_status == 200:
        assert dispatch.execute(rt, request.id, task.task_id) == "done"
    else:
        # the workspace says Deleting: the task waits for its 404 (delayed messages, run by the host)
        assert dispatch.execute(rt, request.id, task.task_id) == "waiting"
        [op] = sim.snapshot()["operations"]
        assert op["purge"] is True
        status_url = (
            f"{rt.settings.arm_base_url}/subscriptions/{ws.subscription_id}/providers/"
            f"Microsoft.MachineLearningServices/locations/{ws.location}/workspaceOperationsStatus/{op['id']}"
        )
        # ARM finishes the operation whether or not anyone polls it; the simulator needs a poll
        polled = [
            rt.aml.get_json(status_url, params={"api-version": "2019-11-01"})["status"] for _ in range(2)
        ]
        assert polled == ["InProgress", "Succeeded"]
    deadline = time.monotonic() + 90
    while (current := rt.store.get_task(request.id, task.task_id)) is not None and current.status != "done":
        assert time.monotonic() < deadline, current.checkpoint
        time.sleep(0.5)
    assert dispatch.execute(rt, request.id, task.task_id) == "duplicate"
    # Then no second DELETE went out, and the record still says what happened
    assert len(workspace_deletes(sim, arm_id)) == 1
    done = rt.store.get_task(request.id, task.task_id)
    assert done is not None
    entry = done.checkpoint["entry"]
    assert (entry["outcome"], entry["verification"]["status"]) == ("purged", 404)
    state = "gone" if initial_status == 200 else "Deleting"
    assert entry["delete"]["note"] == f"sent before; workspace {state}"
    assert sim.deleted_workspaces()[arm_id]["state"] == "purged"


def test_a_service_delete_whose_answer_was_lost_is_not_sent_again(stack, fresh, monkeypatch):
    sim = fresh
    sim.set_service_lro(initial_status=202, polls_in_progress=1, outcome="Succeeded", retry_after=1)
    ws_id = workspace_id(sim, "mlw-prod-01")
    ws = next(w for w in sim.tenant.workspaces.values() if w.arm_id == ws_id)
    (service,) = sim.truth_by_workspace(PERSON)[ws_id]["services"]
    person = sim.tenant.people[PERSON]
    rt = runtime()
    request = DsrRequest(
        str(uuid.uuid4()),
        "erasure",
        Subject(person.object_id),
        {"workspaces": [ws_id]},
        utcnow(),
        status="running",
    )
    rt.store.create_request(request)
    task = Task(
        request.id,
        "ws-probe-erase",
        "erase",
        workspace=WorkspaceRef(ws.subscription_id, ws.resource_group, ws.name, ws.location),
    )
    rt.store.create_tasks([task])
    # Given a worker that dies right after its service DELETE was answered (202), before it kept the answer
    run_dying_after_its_delete(rt, monkeypatch, task)

    def service_deletes():
        return [e for e in deletes(sim) if "/services/" in e["path"]]

    assert len(service_deletes()) == 1

    def redeliver():
        stored = rt.store.get_task(request.id, task.task_id)
        assert stored is not None
        stored.lease_until = utcnow() - dt.timedelta(minutes=1)
        rt.store.update_task(stored)
        return dispatch.execute(rt, request.id, task.task_id)

    # When its message comes again while the service's deletion still runs: it reads the service, waits, and
    # sends no second DELETE
    assert redeliver() == "waiting"
    assert len(service_deletes()) == 1
    # And once the deletion has ended (the simulator advances an operation when it is polled), the next delivery
    # finds the service gone and records it deleted, still with one DELETE sent
    [op] = [o for o in sim.snapshot()["serviceOperations"] if o["service"] == service]
    [sent] = service_deletes()
    workspace_path = sent["path"].split("/services/")[0]
    for _ in range(3):
        rt.aml.request("GET", f"{sim.base_url}/{sent['host']}{workspace_path}/operations/{op['id']}")
    redeliver()
    stored = rt.store.get_task(request.id, task.task_id)
    assert stored is not None
    assert "sending" not in stored.checkpoint
    assert len(service_deletes()) == 1
    assert service not in sim.truth(PERSON)["services"]
