"""The v2 (ARM) families against their contract table (devtools/amlsim/contract_v2.py), and their ground truth.

Every v2 list is paged to the end and every object read through the simulator's HTTP API; each answer must name
a person only at the row's identity paths, page with the row's parameter, answer the row's statuses in ARM's error
shape; deletes run as the row says (LRO polled to 404; 409 while in use), and an application's objects are in no
person's truth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from devtools.amlsim import Simulator, demo_tenant, large_tenant, v2
from devtools.amlsim.contract_v2 import V2_CONTRACT, V2_IDENTITY_KEYS, allowed, identity_keys_at
from devtools.amlsim.identity import TokenIssuer
from devtools.amlsim.state import Tenant

from .conftest import ARM_VERSION, PROD, R1, Client, ws_path

V2 = {"api-version": "2026-07-01"}
ALL = {**V2, "listViewType": "All"}
TOP = {"jobs": "jobs", "schedules": "schedules", "connections": "connections", "datastores": "datastores"}
TOP |= {"computes": "computes", "online_endpoints": "onlineEndpoints", "batch_endpoints": "batchEndpoints"}
TOP |= {
    f"{a}_containers": s for a, s in (("model", "models"), ("data", "data"), ("environment", "environments"))
}
TOP |= {"component_containers": "components", "code_containers": "codes"}


@pytest.fixture
def make_client(issuer: TokenIssuer, tls: tuple[Path, Path]) -> Iterator[Callable[[Tenant], Client]]:
    """A client of a fresh simulator of the given tenant (stopped after the test)."""
    cert, key = tls
    started: list[tuple[Simulator, requests.Session]] = []

    def make(tenant: Tenant) -> Client:
        sim = Simulator(tenant, issuer, cert=cert, key=key, page_size=5).start()
        session = requests.Session()
        session.trust_env = False
        started.append((sim, session))
        return Client(sim, str(cert), issuer.mint("https://management.azure.com")["access_token"], session)

    yield make
    for sim, session in started:
        session.close()
        sim.stop()


def arm(client: Client, path: str) -> str:
    return client.url("arm", path)


def served(client: Client) -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(family, record, the pages it came in) for every v2 list and detail answer of every workspace."""
    for ws in client.sim.tenant.workspaces.values():
        for family, segment in TOP.items():
            base = f"{ws.arm_id}/{segment}"
            items, pages = client.walk(arm(client, base), ALL if V2_CONTRACT[family].paging.views else V2)
            nested = family.replace("containers", "versions").replace("endpoints", "deployments")
            for item in items:
                yield family, item, pages
                yield family, _get(client, item["id"]), []
                if nested == family:  # no versions or deployments under it
                    continue
                params = ALL if V2_CONTRACT[nested].paging.views else V2
                segment = "deployments" if family.endswith("endpoints") else "versions"
                children, child_pages = client.walk(arm(client, f"{item['id']}/{segment}"), params)
                for one in children:
                    yield nested, one, child_pages
                    yield nested, _get(client, one["id"]), []
        for record in v2.records(ws, "child_jobs"):  # never listed over ARM: read by name
            yield "child_jobs", _get(client, f"{ws.arm_id}/{record.id}"), []


def _get(client: Client, arm_id: str) -> dict[str, Any]:
    response = client.get(arm(client, arm_id), V2)
    assert response.status_code == 200, (arm_id, response.text)
    body = response.json()
    assert isinstance(body, dict)
    return body


def test_every_v2_answer_names_people_only_where_the_contract_does(client: Client) -> None:
    bad, counts, tokens = [], {}, set()
    for family, record, pages in served(client):
        counts[family] = counts.get(family, 0) + 1
        bad.extend(f"{family}: {p}" for p in identity_keys_at(record) if not allowed(family, p))
        for page in pages:
            if page.get("nextLink"):
                tokens.update((family, k) for k in parse_qs(urlsplit(page["nextLink"]).query) if "skip" in k)
    assert sorted(set(bad)) == []
    assert set(counts) == set(V2_CONTRACT)  # every family was served and checked
    assert tokens
    assert all(key == V2_CONTRACT[family].paging.token[0] for family, key in tokens)
    assert {f for f, _ in tokens} >= {"jobs", "computes", "datastores"}  # paged over 2+ pages at page size 5
    identity = {f for f, r, _ in served(client) if identity_keys_at(r)}
    assert identity == {f for f, row in V2_CONTRACT.items() if row.identity}  # what may name someone does


def test_paging_to_the_end_returns_every_object_exactly_once(client: Client, sim: Simulator) -> None:
    sim.page_size = 2
    ws = sim.tenant.find_workspace(*R1)
    assert ws is not None
    for family, segment in TOP.items():
        params = ALL if V2_CONTRACT[family].paging.views else V2
        items, pages = client.walk(arm(client, f"{ws.arm_id}/{segment}"), params)
        ids = [i["id"] for i in items]
        assert len(ids) == len(set(ids)), family
        assert sorted(ids) == sorted(v2.resource_id(ws, family, r) for r in v2.records(ws, family)), family
        assert len(pages) == max(1, -(-len(ids) // 2)), family
    versions, pages = client.walk(
        arm(client, f"{ws.arm_id}/models/churn-model/versions"), {**ALL, "$top": "1"}
    )
    assert [v["name"] for v in versions] == ["1", "2", "3"]
    assert len(pages) == 3
    tokens = {k for p in pages[:-1] for k in parse_qs(urlsplit(p["nextLink"]).query)}
    assert "$skip" in tokens
    assert "nextLink" not in pages[-1]


def test_list_views_hide_archived_objects_and_disabled_schedules_by_default(client: Client) -> None:
    base = ws_path(*R1)

    def names(path: str, **params: str) -> list[str]:
        return [i["name"] for i in client.walk(arm(client, base + path), {**V2, **params})[0]]

    assert "r1-train-old" not in names("/jobs")
    assert names("/jobs", listViewType="ArchivedOnly") == ["r1-train-old"]
    assert "r1-train-old" in names("/jobs", listViewType="All")
    assert set(names("/jobs", jobType="Pipeline")) == {"r1-pipeline-churn", "r1-pipeline-fraud"}
    assert not any(n.startswith("r1-pipeline-churn-") for n in names("/jobs", listViewType="All"))  # children
    assert names("/models/churn-model/versions") == ["1", "3"]  # version 2 is archived
    assert "weekly-churn-report" not in names("/schedules")
    assert names("/schedules", listViewType="DisabledOnly") == ["weekly-churn-report"]
    bad = client.get(arm(client, base + "/jobs"), {**V2, "listViewType": "Everything"})
    assert bad.status_code == 400
    assert set(bad.json()["error"]) >= {"code", "message"}


def test_errors_have_the_arm_shape_and_old_api_versions_know_no_v2_family(client: Client) -> None:
    base = ws_path(*R1)
    missing = client.get(arm(client, base + "/jobs/no-such-job"), V2)
    assert missing.status_code == 404
    assert set(missing.json()["error"]) >= {"code", "message"}
    old = client.get(arm(client, base + "/jobs"), ARM_VERSION)
    assert old.status_code == 400
    assert old.json()["error"]["code"] == "NoRegisteredProviderFound"
    child = _get(client, base + "/jobs/r1-pipeline-churn-prep")
    assert child["properties"] is None
    assert "systemData" not in child
    assert client.get(arm(client, base + "/models/churn-model/versions"), ARM_VERSION).status_code == 400
    old_ci = client.get(arm(client, base + "/computes/ci-r1-00"), ARM_VERSION).json()
    assert "personalComputeInstanceSettings" not in old_ci["properties"]["properties"]  # 2019-11-01: v1 shape
    new_ci = _get(client, base + "/computes/ci-r1-00")["properties"]["properties"]
    assert (
        new_ci["personalComputeInstanceSettings"]["assignedUser"]["objectId"] == new_ci["createdBy"]["userId"]
    )


def poll(client: Client, response: requests.Response, header: str = "Location") -> list[int]:
    """Follow a 202's header until the operation ends: the statuses (or states) seen."""
    assert response.status_code == 202, response.text
    assert response.headers["Retry-After"] == "1"
    url, seen = response.headers[header], []
    assert url.startswith(client.sim.base_url + "/management.azure.com/")
    while len(seen) < 10:
        answer = client.get(url)
        seen.append(answer.json()["status"] if header == "Azure-AsyncOperation" else answer.status_code)
        if seen[-1] not in (202, "InProgress"):
            return seen
    raise AssertionError(seen)


def test_a_job_delete_is_a_long_running_operation_polled_to_404(client: Client) -> None:
    job = arm(client, ws_path(*R1) + "/jobs/r1-pipeline-churn")
    assert poll(client, client.delete(job, V2)) == [202, 202, 200]
    assert client.get(job, V2).status_code == 404
    assert (
        client.get(arm(client, ws_path(*R1) + "/jobs/r1-pipeline-churn-prep"), V2).status_code == 404
    )  # children
    assert client.delete(job, V2).status_code == 204  # "Resource does not exist"
    failing = arm(client, ws_path(*R1) + "/jobs/r1-sweep-churn")
    client.sim.set_v2_lro(polls_in_progress=0, outcome="Failed")
    assert poll(client, client.delete(failing, V2)) == [500]
    assert client.get(failing, V2).status_code == 200  # a failed delete deletes nothing


def test_a_compute_delete_names_its_action_and_is_followed_by_its_status(client: Client) -> None:
    compute = arm(client, ws_path(*PROD) + "/computes/ci-p1-03")
    assert client.delete(compute, V2).status_code == 400  # underlyingResourceAction is required
    accepted = client.delete(compute, {**V2, "underlyingResourceAction": "Delete"})
    assert poll(client, accepted, "Azure-AsyncOperation") == ["InProgress", "InProgress", "Succeeded"]
    assert client.get(accepted.headers["Location"]).status_code == 200
    assert client.get(compute, V2).status_code == 404
    assert client.get(compute, ARM_VERSION).status_code == 404  # the same compute the v1 calls list


def test_an_endpoint_with_deployments_answers_in_use_until_they_are_gone(
    client: Client, sim: Simulator
) -> None:
    endpoint = arm(client, ws_path(*R1) + "/onlineEndpoints/churn-ep")
    refused = client.delete(endpoint, V2)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "Conflict"
    assert {d["target"].rsplit("/", 1)[1] for d in error["details"]} == {
        "blue",
        "green",
    }
    assert poll(client, client.delete(endpoint + "/deployments/blue", V2)) == [202, 202, 200]
    sim.set_v2_lro(initial_status=200)
    assert client.delete(endpoint + "/deployments/green", V2).status_code == 200
    assert client.delete(endpoint, V2).status_code == 200
    assert client.get(endpoint, V2).status_code == 404


def test_a_version_in_use_and_a_container_with_versions_are_kept(client: Client) -> None:
    base = arm(client, ws_path(*R1))
    used = client.delete(f"{base}/models/fraud-model/versions/2", V2)  # bob's deployment serves it
    assert used.status_code == 409
    assert used.json()["error"]["details"][0]["target"].endswith("/onlineEndpoints/fraud-ep/deployments/blue")
    assert client.delete(f"{base}/data/churn-features", V2).status_code == 409  # versions remain
    assert [client.delete(f"{base}/data/churn-features/versions/{v}", V2).status_code for v in "12"] == [
        200,
        200,
    ]
    assert client.delete(f"{base}/data/churn-features", V2).status_code == 200
    assert client.get(f"{base}/data/churn-features", V2).status_code == 404
    assert client.delete(f"{base}/data/churn-features", V2).status_code == 204


def test_the_erasable_order_deletes_everything_without_a_conflict(client: Client, sim: Simulator) -> None:
    sim.set_v2_lro(initial_status=200)
    order = sim.erasable_v2("alice")
    families = [family for ws, family, _ in order if ws.endswith("mlw-research-01")]

    def last(family: str) -> int:
        return len(families) - 1 - families[::-1].index(family)

    for first, then in (
        ("schedules", "jobs"),
        ("online_deployments", "online_endpoints"),
        ("jobs", "model_versions"),
        ("model_versions", "model_containers"),
    ):
        assert last(first) < families.index(then), (first, then)
    erased = {arm_id.rsplit("/workspaces/", 1)[1] for _, _, arm_id in order}
    kept = {"mlw-research-01/models/fraud-model/versions/2", "mlw-research-01/onlineEndpoints/shared-ep"}
    assert not kept & erased
    assert "mlw-prod-01/onlineEndpoints/prod-churn" not in erased
    assert "mlw-research-01/jobs/r1-spark-features" not in erased  # names only her display name
    for _, family, arm_id in order:
        params = {**V2, "underlyingResourceAction": "Delete"} if family == "computes" else V2
        assert client.delete(arm(client, arm_id), params).status_code == 200, arm_id
        assert client.get(arm(client, arm_id), V2).status_code == 404, arm_id
    assert sim.erasable_v2("alice") == []


def test_an_applications_objects_are_in_no_persons_truth(client: Client, sim: Simulator) -> None:
    apps = set().union(*sim.truth_v2("automation").values())
    assert {"jobs", "model_versions", "online_deployments", "schedules", "datastores"} <= {
        f for f, ids in sim.truth_v2("automation").items() if ids
    }
    for person in sim.tenant.people:
        theirs = set().union(*sim.truth_v2(person).values(), *sim.reachable_v2(person).values())
        assert not theirs & (apps - set(sim.truth_v2(person)["computes"])), person
    app_job = _get(client, ws_path(*R1) + "/jobs/r1-nightly-retrain")
    assert app_job["systemData"]["createdByType"] == "Application"
    assert app_job["systemData"]["createdBy"] == sim.tenant.principals["automation"].app_id
    # the compute instance the application made is assigned to alice: hers by the contract's assignedUser
    assigned = ws_path(*PROD) + "/computes/ci-p1-03"
    assert assigned in sim.findable_v2("alice")["computes"]
    assert assigned in sim.truth_v2("automation")["computes"]


def test_truth_findable_and_what_the_contract_hides(sim: Simulator) -> None:
    truth, findable = sim.truth_v2("alice"), sim.findable_v2("alice")
    assert all(set(findable[f]) <= set(truth[f]) for f in truth)
    gap = {f: {i.rsplit("/", 1)[1] for i in set(truth[f]) - set(findable[f])} for f in truth}
    assert gap["jobs"] == {"r1-spark-features"}  # systemData names her display name only
    assert gap["child_jobs"] == {
        "r1-pipeline-churn-prep",
        "r1-pipeline-churn-train",
    }  # listed by run history only
    assert gap["connections"] == {"alice-github"}  # systemData null
    assert gap["datastores"] == {"ds_r1_file_sas_05"}
    assert all(n.startswith("cc-") for n in gap["computes"])
    assert sum(len(ids) for ids in findable.values()) >= 35
    assert sim.truth_v2("asmith")["jobs"]
    assert not set(sim.truth_v2("asmith")["jobs"]) & set(truth["jobs"])


def test_display_names_as_recorded_leave_only_object_ids_to_match(
    make_client: Callable[[Tenant], Client],
) -> None:
    client = make_client(demo_tenant(v2_created_by="name"))
    job = _get(client, ws_path(*R1) + "/jobs/r1-train-churn")
    assert job["systemData"]["createdBy"] == "Alice Smith" == job["properties"]["tags"]["mlflow.user"]
    ranker = _get(client, ws_path(*R1) + "/jobs/r1-eval-ranker")
    assert ranker["systemData"]["createdBy"] == "Alice Smith"  # asmith, her namesake: a name proves nothing
    findable = client.sim.findable_v2("alice")
    assert {f for f, ids in findable.items() if ids} == {"computes"}


def test_jobs_in_run_history_make_children_listable_and_runs_of_the_same_name(
    make_client: Callable[[Tenant], Client],
) -> None:
    client = make_client(demo_tenant(jobs_in_run_history=True))
    sim = client.sim
    assert {"r1-train-churn", "r1-pipeline-churn-prep"} <= set(sim.truth("alice")["runs"])
    assert len(sim.findable_v2("alice")["child_jobs"]) == 2
    runs = client.url("experiments", "/history/v1.0" + ws_path(*R1) + "/experiments/churn/runs")
    listed = {r["runId"]: r for r in client.walk(runs)[0]}
    assert listed["r1-pipeline-churn-prep"]["parentRunId"] == "r1-pipeline-churn"
    sim.set_v2_lro(initial_status=200)
    assert client.delete(arm(client, ws_path(*R1) + "/jobs/r1-pipeline-churn"), V2).status_code == 200
    assert not {"r1-pipeline-churn", "r1-pipeline-churn-prep"} & {r["runId"] for r in client.walk(runs)[0]}


def test_secrets_are_never_served(client: Client) -> None:
    base = ws_path(*R1)
    for path in ("/connections/alice-github/listsecrets", "/datastores/workspaceblobstore/listSecrets"):
        refused = client.request("POST", arm(client, base + path), params=V2)
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "AuthorizationFailed"
    v1 = client.get(client.url("experiments", f"/datastore/v1.0{base}/datastores/workspaceblobstore"))
    key = v1.json()["azureStorageSection"]["accountKey"]  # the v1 default (includeSecret=true) shows it
    stores = client.walk(arm(client, base + "/datastores"), V2)[0]
    assert key
    assert key not in str(stores)
    assert _get(client, base + "/datastores/workspaceblobstore")["properties"]["credentials"] == {
        "credentialsType": "AccountKey",
        "secrets": {"secretsType": "AccountKey"},
    }
    assert all(
        "credentials" not in c["properties"] for c in client.walk(arm(client, base + "/connections"), V2)[0]
    )


def test_v2_calls_share_the_arm_read_bucket(client: Client, sim: Simulator) -> None:
    sim.set_rate_limit(read_burst=4, read_rate=0.01)
    v1 = client.get(arm(client, ws_path(*R1) + "/computes"), ARM_VERSION)
    answers = [client.get(arm(client, ws_path(*R1) + "/jobs"), V2) for _ in range(4)]
    remaining = [int(r.headers["x-ms-ratelimit-remaining-subscription-reads"]) for r in (v1, *answers)]
    assert remaining == [3, 2, 1, 0, 0]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]


def test_workspaces_show_their_kind_at_the_new_api_version(make_client: Callable[[Tenant], Client]) -> None:
    client = make_client(demo_tenant(foundry=True))
    sub = R1[0]
    url = arm(client, f"/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/workspaces")
    kinds = {w["name"]: w.get("kind") for w in client.walk(url, V2)[0]}
    assert kinds == {"mlw-research-01": "Default", "mlw-research-02": "Default", "mlw-prod-01": "Default"} | {
        "hub-churn": "Hub",
        "proj-churn": "Project",
    }
    assert all("kind" not in w for w in client.walk(url, ARM_VERSION)[0])
    project = _get(
        client,
        f"/subscriptions/{sub}/resourceGroups/rg-foundry/providers/Microsoft.MachineLearningServices"
        "/workspaces/proj-churn",
    )
    assert project["properties"]["hubResourceId"].endswith("/workspaces/hub-churn")
    assert "proj-churn" in str(client.sim.findable_v2("alice")["jobs"])


def test_the_large_tenant_has_no_v2_objects_unless_asked(make_client: Callable[[Tenant], Client]) -> None:
    small = {
        "workspaces": 2,
        "experiments_per_workspace": 1,
        "runs_per_experiment": 2,
        "models_per_workspace": 4,
    }
    plain = large_tenant(people=8, **small)
    assert not any(ids for f, ids in v2.truth(plain, "alice").items() if f not in v2.VIEW_FAMILIES)
    client = make_client(large_tenant(people=8, v2_jobs_per_workspace=10, **small))
    bad = [f"{f}: {p}" for f, r, _ in served(client) for p in identity_keys_at(r) if not allowed(f, p)]
    assert bad == []
    assert sum(len(v2.truth(client.sim.tenant, k)["jobs"]) for k in client.sim.tenant.principals) == 20


def test_every_contract_row_cites_a_source_and_names_only_identity_keys() -> None:
    assert set(V2_CONTRACT) == set(v2.V2_FAMILIES)
    for family, row in V2_CONTRACT.items():
        assert row.family == family
        assert all((row.sources, row.creator, row.rule)), family
        assert all(
            len(s) > 30 and ("openapi.json" in s or "examples" in s or "test/" in s or "azure/ai/ml" in s)
            for s in row.sources
        ), family
        assert all(
            p.replace("[]", "").split(".")[-1] in V2_IDENTITY_KEYS or p.endswith("mlflow.user")
            for p in row.identity
        ), family
    assert V2_CONTRACT["connections"].identity == ("systemData",)  # always null (REC)
    assert V2_CONTRACT["child_jobs"].identity == ()
