"""An export from intake to package, through the local Functions host, against Azurite and the simulator."""

from __future__ import annotations

import json
import re
import time
from collections import Counter

import pytest
import requests
from azure.data.tables import TableClient
from azure.identity import ManagedIdentityCredential
from azure.storage.queue import QueueClient

from devtools.demo import container_client, status, submit, wait
from devtools.package_check import TRUTH_FAMILY, expected_export, read_package
from devtools.stack import APP_CLIENT_ID
from shared.core.outbound import AllowList
from shared.core.settings import DEFAULT_ALLOWED_HOSTS, Settings
from shared.runtime import Runtime

PERSON = "alice"


def subject_of(sim, key):
    person = sim.tenant.people[key]
    return {"objectId": person.object_id, "userPrincipalName": person.upn, "email": person.email}


def all_subscriptions(sim):
    return sorted({ws.subscription_id for ws in sim.tenant.workspaces.values()})


def export_body(sim, key=PERSON, **over):
    body = {
        "type": "export",
        "subject": subject_of(sim, key),
        "scope": {"subscriptions": all_subscriptions(sim)},
    }
    body.update(over)
    return body


def run_export(stack, body, key=None):
    response = submit(stack, body, idempotency_key=key)
    assert response.status_code == 202, response.text
    return wait(stack, response.headers["Location"], timeout=240)


def test_export_equals_ground_truth_and_tokens_stay_on_azure_hosts(stack, sim):
    # Given the demo tenant, when an export for the demo person runs across both subscriptions
    view = run_export(stack, export_body(sim))
    # Then it completes, and the package holds exactly what the published contract lets a faithful product
    # attribute to that person (sim.reachable: identity fields, then the rules), each file hashing as listed
    assert view["status"] == "completed", view["errors"]
    report = read_package(container_client(stack), view["id"])
    assert report.compare(expected_export(sim, PERSON)) == {}
    # And everything of hers the contract lets it find is there; what it cannot find (truth - findable) is not
    # empty, and the manifest names each of those families as not matchable by the contract
    truth, findable = sim.truth(PERSON), sim.findable(PERSON)
    exported = {family: {i.lower() for i in ids} for family, ids in report.ids.items()}
    assert all({i.lower() for i in findable[f]} <= exported.get(f, set()) for f in findable)
    gap = {f for f in truth if set(truth[f]) - set(findable[f])}
    assert {"workspaces", "datastores", "models"} <= gap
    not_matchable = {TRUTH_FAMILY[n["family"]] for n in report.manifest["notMatchable"]}
    assert gap - {"models"} <= not_matchable  # models: the display-name-only rule, listed under runs
    assert any("display name only" in n["what"] for n in report.manifest["notMatchable"])
    # And each record of a family with no creator field says which rule tied it to her
    rules = {
        "experiments": "the subject's runs are in it",
        "images": "packaging the subject's model",
        "assets": "asset of the subject's run",
        "notifications": "notification task of the subject's run",
    }
    for family, phrase in rules.items():
        lines = [json.loads(line) for line in _file_lines(stack, report.manifest, family)]
        assert lines, family
        assert all(phrase in line["matchedBy"] for line in lines), family
    assert "datastores" not in {f["family"] for f in report.manifest["files"]}  # nothing ties one to her
    assert report.hash_mismatches == []
    assert report.duplicates == []
    assert sum(report.records.values()) >= 40
    manifest = report.manifest
    assert manifest["request"]["id"] == view["id"]
    assert {f["family"] for f in manifest["files"]} >= {"runs", "metrics", "artifacts", "models", "pipelines"}
    assert {n["what"] for n in manifest["notCovered"]} >= {"Telemetry records of user interactions"}
    # And every call carried a valid token, to a simulated Azure host the public allow-list accepts
    log = [e for e in sim.log if not e["path"].startswith("/_sim")]
    public = AllowList(DEFAULT_ALLOWED_HOSTS.split(","))
    assert {e["auth"] for e in log} == {"valid"}
    assert all(public.allows(f"https://{e['host']}/") for e in log), {e["host"] for e in log}
    # And lists were paged to the end over three or more pages, in each paging style
    follow_ups = Counter()
    for e in log:
        token = next(
            (
                k
                for k in ("$skipToken", "$skip", "$continuationtoken", "continuationToken")
                if k in e["query"]
            ),
            None,
        )
        if token:
            follow_ups[(token, e["host"].split(".", 1)[-1], e["path"])] += 1
    longest = {}
    for (token, host, _path), count in follow_ups.items():
        longest[(token, host)] = max(longest.get((token, host), 0), count)
    # ARM: the computes and v2 lists at 2026-07-01, whose nextLink carries $skip (the workspace lists fit a page)
    assert longest[("$skip", "azure.com")] >= 2
    assert max(c for (t, _h), c in longest.items() if t == "$skipToken" and _h != "azure.com") >= 2  # models
    assert longest[("$continuationtoken", "api.azureml.ms")] >= 2  # run history, after discovery
    # And a run's artifacts were listed through its dataContainerId (dcid.<runId>), never the bare run id,
    # which names no container (the service answers an empty list there)
    assert report.records["artifacts"] == len(sim.truth(PERSON)["artifacts"]) == 56
    containers = [
        e["path"].rsplit("/", 1)[-1] for e in log if "/artifacts/origins/ExperimentRun/" in e["path"]
    ]
    assert containers
    assert all(c.startswith("dcid.") for c in containers), containers
    alice_runs = set(sim.truth(PERSON)["runs"])
    assert {c.removeprefix("dcid.") for c in containers} == alice_runs
    # And datastores were read without their secrets
    datastore_calls = [e for e in log if "/datastores" in e["path"] and "/datastore/v1.0/" in e["path"]]
    assert datastore_calls
    assert all(e["query"].get("includeSecret") == "false" for e in datastore_calls)


def test_a_runs_task_writes_its_experiment_files_whole_in_one_invocation(stack, sim):
    # Given the demo tenant, when an export for the demo person runs
    view = run_export(stack, export_body(sim))
    assert view["status"] == "completed", view["errors"]
    rt = Runtime.create(Settings.from_env(), ManagedIdentityCredential(client_id=APP_CLIENT_ID))
    hers = [t for t in rt.store.list_tasks(view["id"]) if t.kind == "runs" and "runs" in t.outputs]
    # Then there is one runs task with files per experiment that holds her runs
    experiments = sorted(str(t.params["experimentId"]).lower() for t in hers)
    assert experiments == sorted(i.lower() for i in sim.reachable(PERSON)["experiments"])
    assert len(experiments) >= 2
    # And each wrote every file of its experiment folder (runs.jsonl, experiment.jsonl, metrics, artifacts)
    # whole, in the invocation that finished it: no block was staged (a save while its records were buffered
    # stages them as blocks, which finalize must read back), and each file's zip entry was staged with it
    for task in hers:
        assert {"runs", "experiments"} <= set(task.outputs), task.task_id
        staged = {name: out["sizes"] for name, out in task.checkpoint["outputs"].items() if out["sizes"]}
        assert staged == {}, task.task_id
        assert [name for name, out in task.outputs.items() if "zip" not in out] == [], task.task_id
        assert all(out["records"] >= 1 for out in task.outputs.values()), task.task_id


def test_faults_and_throttling_converge_to_the_same_package(stack, sim):
    for route, kind, extra in (
        (r"GET /[^/]+/history/v1\.0/.*/runs", "status", {"status": 429, "retry_after": 1}),
        (r"GET /[^/]+/modelmanagement/v1\.0/subscriptions/.*/(models|images)", "status", {"status": 500}),
        (r"GET /management\.azure\.com/.*/workspaces", "status", {"status": 503, "retry_after": 1}),
        (r"GET /[^/]+/artifact/", "reset", {}),
        (r"GET /[^/]+/history/v1\.0/.*/metrics", "truncate", {}),
    ):
        sim.inject_fault(route=route, kind=kind, probability=0.3, **extra)
    view = run_export(stack, export_body(sim))
    assert view["status"] == "completed", view["errors"]
    report = read_package(container_client(stack), view["id"])
    assert report.compare(expected_export(sim, PERSON)) == {}
    assert report.hash_mismatches == []
    faults = Counter(e["fault"] for e in sim.log if e["fault"])
    assert faults["status"] >= 3, faults
    assert faults["reset"] >= 1, faults
    assert faults["truncate"] >= 1, faults


def test_idempotency_key_returns_the_first_request(stack, sim):
    body = export_body(sim, key="bob", reference="TICKET-7")
    first = submit(stack, body, idempotency_key="ticket-7")
    again = submit(stack, body, idempotency_key="ticket-7")
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = submit(stack, export_body(sim, key="carol"), idempotency_key="ticket-7")
    assert other.status_code == 409
    assert other.headers["Content-Type"].startswith("application/problem+json")
    view = wait(stack, first.headers["Location"], timeout=240)
    assert view["status"] == "completed"


def _storage(stack):
    credential = ManagedIdentityCredential(client_id=APP_CLIENT_ID)
    table = TableClient(
        stack.settings["AzureWebJobsStorage__tableServiceUri"], "DsrRequests", credential=credential
    )
    queue = QueueClient(
        stack.settings["AzureWebJobsStorage__queueServiceUri"], "dsr-plan", credential=credential
    )
    return table, queue


@pytest.mark.parametrize(
    ("mutate", "status", "field"),
    [
        (lambda b: b.update(type="archive"), 422, "type"),
        (lambda b: b.update(extra=True), 422, "extra"),
        (lambda b: b["subject"].update(objectId="42"), 422, "subject.objectId"),
        (lambda b: b.update(scope={"workspaces": ["/subscriptions/../x"]}), 422, "scope.workspaces"),
        (lambda b: b.update(scope={}), 422, "scope"),
    ],
)
def test_bad_input_gets_problem_json_and_changes_nothing(stack, sim, mutate, status, field):
    table, queue = _storage(stack)
    before = len(list(table.query_entities("RowKey eq 'request'", select=["PartitionKey"])))
    body = export_body(sim)
    mutate(body)
    response = submit(stack, body)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["status"] == status
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    assert len(list(table.query_entities("RowKey eq 'request'", select=["PartitionKey"]))) == before
    assert queue.peek_messages(max_messages=32) == []


def test_wrong_content_type_and_broken_json_are_refused(stack):
    import requests

    url = f"{stack.api_url}/v1/requests"
    headers = {"x-functions-key": stack.function_key}
    text = requests.post(url, data="{}", headers={**headers, "Content-Type": "text/plain"}, timeout=10)
    assert (text.status_code, text.json()["title"]) == (415, "Content-Type must be application/json")
    broken = requests.post(url, data="{", headers={**headers, "Content-Type": "application/json"}, timeout=10)
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["detail"]
    nokey = requests.post(url, json={}, timeout=10)
    assert nokey.status_code == 401
    missing = requests.get(f"{url}/00000000-0000-4000-8000-000000000000", headers=headers, timeout=10)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("application/problem+json")


def test_unknown_workspace_ends_completed_with_errors_naming_it(stack, sim):
    sub = all_subscriptions(sim)[0]
    ghost = f"/subscriptions/{sub}/resourceGroups/rg-research/providers/Microsoft.MachineLearningServices/workspaces/ws-ghost"
    view = run_export(stack, export_body(sim, scope={"workspaces": [ghost]}))
    assert view["status"] == "completed_with_errors"
    assert len(view["errors"]) == 1
    assert view["errors"][0]["workspace"] == ghost
    assert "404" in view["errors"][0]["reason"]


def test_status_reports_progress_due_date_and_links(stack, sim):
    response = submit(stack, export_body(sim, key="bob"))
    view = wait(stack, response.headers["Location"], timeout=240)
    again = status(stack, response.headers["Location"])
    assert again["status"] == view["status"] == "completed"
    assert again["progress"]["runs"]["tasks"] == again["progress"]["runs"]["done"] >= 1
    assert again["progress"]["models"]["recordsKept"] == len(sim.reachable("bob")["models"]) >= 1
    received, due = again["receivedAt"], again["dueAt"]
    assert due[:4] >= received[:4]
    assert due != received
    assert again["links"]["manifest"].endswith(f"{view['id']}/manifest.json")
    assert json.dumps(again)  # plain JSON


def test_whole_workspace_export_waits_for_approval_then_keeps_every_record_of_that_workspace(stack, sim):
    # Given a whole-workspace export (everyone's records), it waits for approval like an erasure
    ws = sorted(sim.tenant.workspaces.values(), key=lambda w: w.arm_id)[0]
    body = {"type": "export", "wholeWorkspace": True, "scope": {"workspaces": [ws.arm_id]}}
    response = submit(stack, body)
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    assert response.json()["status"] == "awaiting_approval"
    sim.clear_log()
    time.sleep(2)
    assert (status(stack, location)["status"], [e for e in sim.log if e["method"] == "GET"]) == (
        "awaiting_approval",
        [],
    )
    # When it is approved, it runs
    approved = requests.post(
        f"{location}:approve", json={}, headers={"x-functions-key": stack.function_key}, timeout=30
    )
    assert approved.status_code == 200, approved.text
    view = wait(stack, location, timeout=240)
    assert view["status"] == "completed", view["errors"]
    report = read_package(container_client(stack), view["id"])
    snapshot_runs = sum(1 for _ in ws.records("runs"))
    assert len(report.ids["runs"]) == snapshot_runs > 0
    assert len(report.ids["models"]) == sum(1 for _ in ws.records("models"))


def test_export_dry_run_lists_the_same_records_without_reading_their_content(stack, sim):
    view = run_export(stack, export_body(sim, dryRun=True))
    assert (view["status"], view["dryRun"]) == ("completed", True)
    report = read_package(container_client(stack), view["id"])
    assert report.compare(expected_export(sim, PERSON)) == {}
    assert report.manifest["dryRun"] is True
    # No per-record detail read (E4, E7, E9, E12, E14, E16, ...): lists only
    detail = re.compile(r"/(computes|runs|metrics|tasks|datastores|models|assets|images|services)/[^/]+$")
    assert [e["path"] for e in sim.log if detail.search(e["path"])] == []
    runs = [json.loads(line) for line in _file_lines(stack, report.manifest, "runs")]
    assert runs
    assert all(set(r["record"]) <= {"runId", "id", "name", "experimentId"} for r in runs)


def _file_lines(stack, manifest, family):
    container = container_client(stack)
    for entry in manifest["files"]:
        if entry["family"] == family:
            yield from container.get_blob_client(entry["path"]).download_blob().readall().splitlines()


@pytest.mark.parametrize("person", ["bob", "carol", "dave", "erin", "asmith"])
def test_every_persons_export_equals_their_ground_truth(stack, sim, person):
    # carol's e-mail differs from her UPN, dave's records carry his UPN in another letter case, asmith is a
    # guest who shares alice's display name: none of that may add or lose a record
    view = run_export(stack, export_body(sim, key=person))
    assert view["status"] == "completed", view["errors"]
    report = read_package(container_client(stack), view["id"])
    assert report.compare(expected_export(sim, person)) == {}
    assert report.duplicates == []


PIPELINE_FAMILIES = (
    "pipeline_experiments",
    "pipeline_graphs",
    "pipeline_modules",
    "pipeline_templates",
    "pipeline_datasources",
)


def test_the_manifest_counts_other_peoples_pipeline_objects_without_naming_them_or_their_runs(stack, sim):
    # Given alice's export, which reads everyone's pipeline runs (her module can sit in someone else's pipeline)
    view = run_export(stack, export_body(sim))
    assert view["status"] == "completed", view["errors"]
    report = read_package(container_client(stack), view["id"])
    manifest = report.manifest
    text = json.dumps(manifest)
    # Then no other person's pipeline object id nor run id appears anywhere in the manifest
    # (an object that names no creator and sits in her own pipeline graph is exported with it: the contract
    # cannot tell it is someone else's, docs/azure-fidelity.md; so "other people's" = theirs AND not hers by rule)
    others = [key for key in sim.people if key != PERSON]
    hers = sim.reachable(PERSON)
    foreign = {
        (key, family, object_id)
        for key in others
        for family in (*PIPELINE_FAMILIES, "runs")
        for object_id in sim.truth(key)[family]
        if object_id not in hers[family]
    }
    assert {f for f in foreign if f[1] != "runs"}, (
        "the demo tenant should hold other people's pipeline objects"
    )
    assert [f for f in foreign if f[2] in text] == []
    # And the manifest says how many it fetched and did not name: every pipeline object read, minus those named
    withheld = manifest["pipelineObjectsOfOthers"]
    fetched = {
        (e["host"].split(".", 1)[0], e["path"].split("/providers/", 1)[1])
        for e in sim.log
        if e["method"] == "GET"
        and re.search(r"/(Experiments|Graphs|Modules|Templates|DataSources)/[^/]+$", e["path"])
    }
    assert (
        withheld["count"]
        == sum(withheld["byKind"].values())
        == len(fetched) - len(manifest["pipelineObjects"])
    )
    assert withheld["count"] >= 3
    assert withheld["why"]
    # And what it does name includes alice's own objects
    mine = {object_id for family in PIPELINE_FAMILIES for object_id in sim.truth(PERSON)[family]}
    assert {o["id"] for o in manifest["pipelineObjects"]} & mine
