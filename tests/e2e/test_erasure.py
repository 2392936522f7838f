"""Erasure through the local host: exactly the subject's objects go, proven gone; nothing else changes."""

from __future__ import annotations

import base64
import json
from urllib.parse import unquote

import pytest
import requests

from devtools.amlsim.fixture import demo_tenant
from devtools.demo import container_client, status, submit, wait

PERSON = "alice"
DELETABLE = ("services", "images", "models", "assets")


@pytest.fixture
def fresh(sim):
    """The demo tenant as seeded (erasure tests change it), default LRO behaviour."""
    sim.reset(demo_tenant())
    sim.set_lro(polls_in_progress=2, outcome="Succeeded", retry_after=1, initial_status=202)
    sim.clear_log()
    return sim


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
            assert item["delete"]["status"] == 200
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
    # Every object refused with 409 is still used by a surviving object; every deleted one was used by none
    after = sim.snapshot()["workspaces"]
    users: dict[str, set[str]] = {}
    for ws in after:
        for svc in ws["families"]["services"]:
            users.setdefault(svc["body"].get("imageId"), set()).add(svc["id"])
        for img in ws["families"]["images"]:
            for model_id in img["body"].get("modelIds") or []:
                users.setdefault(model_id, set()).add(img["id"])
    conflicts = {last_segment(e) for e in sim.log if e["status"] == 409}
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
    assert (
        status(stack, f"{stack.api_url}/v1/requests/{done['id']}")["status"]
        == done["status"]
        == "completed_with_errors"
    )


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
    assert (item["endpoint"], item["outcome"], item["delete"]["status"]) == ("D1", "deleted", 202)
    assert item["operation"]["status"] == "Succeeded"
    assert item["operation"]["polls"] >= 4
    assert item["verification"]["status"] == 404
    assert all(ws["id"] != arm_id for ws in sim.snapshot()["workspaces"])
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
    assert record_of(stack, done)["items"][0]["outcome"] == "deleted"


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
