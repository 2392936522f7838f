"""The v2 (ARM) families in an export, on the whole local stack: the package holds, per v2 family, exactly what
the simulator's contract attributes to the person (`reachable_v2`), never an application's objects, and, when
systemData names creators by display name only, exactly what the rules that do not depend on createdBy find."""

from __future__ import annotations

import json

import pytest

from devtools.amlsim import demo_tenant
from devtools.demo import container_client
from devtools.package_check import contract_expectation, expected_export, read_package

from .test_export import export_body, run_export

V2 = "v2:"


@pytest.fixture
def reseed(sim):
    """Lets a test seed the simulator with another demo build; the seeded tenant is back afterwards."""
    yield sim.reset
    sim.reset(demo_tenant())


def _records(stack, manifest: dict, family: str) -> list[dict]:
    lines = []
    for entry in manifest["files"]:
        if entry["family"] == family:
            data = container_client(stack).get_blob_client(entry["path"]).download_blob().readall()
            lines += [json.loads(line) for line in data.splitlines() if line.strip()]
    return lines


def test_alice_export_holds_her_v2_objects_by_the_contract_and_no_applications(stack, sim):
    # Given the demo tenant (systemData.createdBy holds UPNs, e-mails, UPNs in another case; an application's
    # objects and a display-name-only job in between), when alice's export runs
    view = run_export(stack, export_body(sim))
    assert view["status"] == "completed", view["errors"]
    report = read_package(container_client(stack), view["id"])
    # Then every v1 and v2 family equals what the contract attributes to her
    assert report.compare(expected_export(sim, "alice")) == {}
    reachable, findable = sim.reachable_v2("alice"), sim.findable_v2("alice")
    exported = {f.removeprefix(V2): {i.lower() for i in ids} for f, ids in report.ids.items()}
    for family in ("jobs", "model_versions", "data_versions", "online_endpoints", "batch_deployments"):
        assert reachable[family], family  # the demo gives her objects in each of these
    assert all({i.lower() for i in findable[f]} <= exported.get(f, set()) for f in findable)
    # And her version in bob's container is there, bob's container is not; bob's deployment on her endpoint is not
    versions, containers = exported["model_versions"], exported["model_containers"]
    assert any(i.endswith("/models/fraud-model/versions/2") for i in versions)
    assert not any(i.endswith("/models/fraud-model") for i in containers)
    assert not any(
        i.endswith("/onlineendpoints/shared-ep/deployments/main") for i in exported["online_deployments"]
    )
    # And the archived job and the disabled schedule are hers too; the display-name-only job is not found
    assert any(i.endswith("/jobs/r1-train-old") for i in exported["jobs"])
    assert any(i.endswith("/schedules/weekly-churn-report") for i in exported["schedules"])
    assert not any(i.endswith("/jobs/r1-spark-features") for i in exported["jobs"])
    # And the compute instance the application made and assigned to her is hers (assignedUser.objectId)
    assert any(i.endswith("/computes/ci-p1-03") for i in exported["computes"])
    # And no application's v2 object is in her package, nor any connection
    # (the compute instance above is the application's too: it made it; it is assigned to her, and hers)
    application = {i.lower() for f, ids in sim.truth_v2("automation").items() if f != "computes" for i in ids}
    assert application
    assert not application & set().union(*exported.values())
    assert "connections" not in exported
    # And each v2 record says why: systemData.createdBy (identity), or a compute's assigned user
    reasons = {line["matchedBy"] for line in _records(stack, report.manifest, "jobs")}
    assert reasons == {"systemData.createdBy"}
    # And nothing any list answered carried a secret: no listSecrets call was made
    assert not [e for e in sim.log if "listsecrets" in e["path"].lower()]
    assert not [e for e in sim.log if e["method"] == "POST" and "management" in e["host"]]
    # And the status has a plain-titled progress entry for each v2 task kind
    titles = {name: entry["title"] for name, entry in view["progress"].items()}
    assert titles["jobs"] == "Jobs"
    assert titles["online_endpoints"] == "Online endpoints"
    assert titles["model_assets"] == "Registered models (v2)"


def test_no_persons_export_holds_an_applications_v2_objects(stack, sim):
    application = {i.lower() for ids in sim.truth_v2("automation").values() for i in ids}
    assert application
    view = run_export(stack, export_body(sim, "bob"))
    assert view["status"] == "completed", view["errors"]
    report = read_package(container_client(stack), view["id"])
    assert report.compare(expected_export(sim, "bob")) == {}
    exported = {i.lower() for family, ids in report.ids.items() if family.startswith(V2) for i in ids}
    assert exported  # bob has v2 objects
    assert not exported & application


def test_a_subject_known_only_by_object_id_is_matched_on_v2_through_graph(stack, sim):
    alice = sim.tenant.people["alice"]
    body = export_body(sim, subject={"objectId": alice.object_id})
    view = run_export(stack, body)
    assert view["status"] == "completed", view["errors"]
    report = read_package(container_client(stack), view["id"])
    # Graph resolved her UPN and mail: systemData.createdBy is compared with them
    assert report.compare(expected_export(sim, "alice")) == {}
    assert report.ids[V2 + "jobs"]


def _rule_expectation(sim, person: str) -> dict[str, list[str]]:
    """What the rules that do not depend on createdBy find for `person`, from the simulator's state: her jobs
    that are her runs in run history, their child jobs, the model/data versions those jobs produced; the compute
    instances that name her object id."""
    runs = set(sim.reachable(person)["runs"])
    reachable = sim.reachable_v2(person)
    found = {family: [] for family in reachable}
    found["computes"] = reachable["computes"]
    for ws in sim.tenant.workspaces.values():
        if ws.v2 is None:
            continue
        jobs = {r.id for r in ws.v2.collections["jobs"] if r.id.removeprefix("jobs/") in runs}
        found["jobs"] += [f"{ws.arm_id}/{j}" for j in jobs]
        found["child_jobs"] += [
            f"{ws.arm_id}/{r.id}" for r in ws.v2.collections["child_jobs"] if r.parent in jobs
        ]
        for family in ("model_versions", "data_versions"):
            for r in ws.v2.collections[family]:
                if f"jobs/{r.body()['properties'].get('jobName')}" in jobs:
                    found[family].append(f"{ws.arm_id}/{r.id}")
    return found


def test_display_name_creators_export_only_what_the_rules_find_and_say_so(stack, sim, reseed):
    # Given the demo tenant as recorded: systemData.createdBy holds display names, and every job is also a run
    reseed(demo_tenant(v2_created_by="name", jobs_in_run_history=True))
    view = run_export(stack, export_body(sim))
    assert view["status"] == "completed", view["errors"]
    report = read_package(container_client(stack), view["id"])
    # Then the package holds exactly what run history, the job's outputs and object ids tie to her
    expected = contract_expectation(sim.reachable("alice"), _rule_expectation(sim, "alice"))
    assert expected[V2 + "jobs"]
    assert expected[V2 + "child_jobs"]
    assert expected[V2 + "model_versions"]
    assert report.compare(expected) == {}
    # Among them the job whose systemData named only her display name, found through run history
    assert any(i.lower().endswith("/jobs/r1-spark-features") for i in report.ids[V2 + "jobs"])
    reasons = {line["matchedBy"].split(" ")[0] for line in _records(stack, report.manifest, "jobs")}
    assert reasons == {"the"}  # "the subject's run ... in run history": no record matched by a display name
    # And the manifest names the v2 families it could not match by identity
    undecided = {
        n["family"] for n in report.manifest["notMatchable"] if "not matched by identity" in n["what"]
    }
    assert {
        "model_containers",
        "online_endpoints",
        "online_deployments",
        "schedules",
        "v2_datastores",
    } <= undecided
    assert "jobs" in undecided  # bob's and carol's jobs name display names too, and are not her runs


def test_hub_and_project_workspaces_are_walked_like_any_workspace(stack, sim, reseed):
    # Given an AI Foundry hub (the application's) and alice's project in a resource group of their own
    reseed(demo_tenant(foundry=True))
    view = run_export(stack, export_body(sim))
    assert view["status"] == "completed", view["errors"]
    report = read_package(container_client(stack), view["id"])
    # Then the scope walk found both, and her project's jobs and model are in the package with the rest
    assert report.compare(expected_export(sim, "alice")) == {}
    project = [i for i in report.ids[V2 + "jobs"] if "/workspaces/proj-churn/" in i.lower()]
    assert [p.rsplit("/", 1)[-1] for p in project] == ["proj-finetune-churn"]
    assert any("/workspaces/proj-churn/" in i.lower() for i in report.ids[V2 + "model_versions"])
