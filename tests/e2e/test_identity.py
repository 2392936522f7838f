"""A subject named by one identifier only, resolved through (simulated) Microsoft Graph before planning, on the
whole local stack: the package equals the person's ground truth, and the status says where each identifier came
from."""

from __future__ import annotations

import json

from devtools.demo import container_client
from devtools.package_check import expected_export, read_package

from .test_export import all_subscriptions, run_export


def _sources(view: dict) -> dict[str, str]:
    return {i["kind"]: i["source"] for i in view["identity"]["identifiers"] if i["kind"] != "otherMails"}


def _matched_by(stack, request_id: str) -> set[str]:
    report = read_package(container_client(stack), request_id)
    reasons: set[str] = set()
    for entry in report.manifest["files"]:
        data = container_client(stack).get_blob_client(entry["path"]).download_blob().readall()
        reasons |= {json.loads(line)["matchedBy"] for line in data.splitlines() if line.strip()}
    return reasons


def test_upn_only_export_finds_the_records_that_name_only_the_object_id(stack, sim):
    alice = sim.tenant.people["alice"]
    body = {
        "type": "export",
        "subject": {"userPrincipalName": alice.upn},
        "scope": {"subscriptions": all_subscriptions(sim)},
    }
    view = run_export(stack, body)
    assert view["status"] == "completed", view["errors"]
    # Then the package is exactly what the contract attributes to alice, among them the older run-history
    # records that carry only createdBy.userObjectId, and the compute instances that name only her object id
    # (ARM 2019-11-01 has no systemData): both need the object id Graph resolved
    report = read_package(container_client(stack), view["id"])
    assert report.compare(expected_export(sim, "alice")) == {}
    assert {"createdBy.userObjectId", "properties.properties.createdBy.userId"} <= _matched_by(
        stack, view["id"]
    )
    # And the status and the manifest say where each identifier came from
    assert _sources(view) == {"userPrincipalName": "request", "objectId": "graph", "email": "graph"}
    assert view["identity"]["graph"]["outcome"] == "resolved"
    assert view["identity"]["missing"] == []
    assert report.manifest["request"]["identity"]["identifiers"] == view["identity"]["identifiers"]
    assert report.manifest["request"]["subject"]["objectId"] == alice.object_id
    # And Graph was asked once, with a Graph token, before any Azure ML call
    log = [e for e in sim.log if not e["path"].startswith("/_sim")]
    graph = [e for e in log if e["host"] == "graph.microsoft.com"]
    assert [(e["path"], e["auth"], e["status"]) for e in graph] == [
        (f"/v1.0/users/{alice.upn}", "valid", 200)
    ]
    assert log[0]["host"] == "graph.microsoft.com"


def test_a_person_deleted_from_entra_is_resolved_through_deleted_items(stack, sim):
    erin = sim.tenant.people["erin"]
    sim.graph.soft_delete("erin")
    try:
        body = {
            "type": "export",
            "subject": {"email": erin.email},
            "scope": {"subscriptions": all_subscriptions(sim)},
        }
        view = run_export(stack, body)
    finally:
        sim.graph.restore("erin")
    assert view["status"] == "completed", view["errors"]
    assert report_equal(stack, view["id"], expected_export(sim, "erin"))
    assert _sources(view) == {
        "email": "request",
        "objectId": "graph-deleted-items",
        "userPrincipalName": "graph-deleted-items",
    }
    assert view["identity"]["graph"]["outcome"] == "resolved from deleted items"


def report_equal(stack, request_id: str, truth: dict) -> bool:
    differences = read_package(container_client(stack), request_id).compare(truth)
    assert differences == {}
    return True
