"""Ids the Azure ML side hands back are held to the requester's rule before a URL is built from them.

The simulator answers hostile ids (a pipeline graph id in a run's properties, a model id in a list, a nextLink)
that would not stay one path segment: `..` (requests collapses it, so the call, with the app's token, would go
to another path) or `../Modules/...`. The app refuses each before anything is sent (Endpoint.render and the
allow-list, shared/core/outbound.py), no request with such a path reaches any host, and the task records the
refusal naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.amlsim.fixture import demo_tenant
from devtools.amlsim.state import Tenant, WorkspaceData
from tests.security.conftest import Api, subject_of
from tests.security.idp import OFFICER, OFFICER_2

WORKSPACE = "mlw-research-02"
HOSTILE_GRAPH = "../Modules/hostile-target"


def _workspace(tenant: Tenant) -> WorkspaceData:
    return next(ws for ws in tenant.workspaces.values() if ws.name == WORKSPACE)


def _hostile_tenant() -> Tenant:
    """The demo tenant, with alice's pipeline run in WORKSPACE pointing to HOSTILE_GRAPH and her first model
    there listed with the id '..'."""
    tenant = demo_tenant()
    ws = _workspace(tenant)
    run = next(
        r
        for r in ws.records("runs")
        if r.owner == "alice" and "azureml.graphId" in (r.body().get("properties") or {})
    )
    run.body()["properties"]["azureml.graphId"] = HOSTILE_GRAPH
    model = next(r for r in ws.records("models") if r.owner == "alice")
    model.body()["id"] = ".."
    return tenant


@pytest.fixture
def hostile(secure_stack: Any) -> Iterator[Any]:
    sim = secure_stack.simulator
    sim.reset(_hostile_tenant())
    sim.clear_log()
    yield sim
    sim.set_hostile_links(False)
    sim.reset(demo_tenant())


def _request(api: Api, sim: Any, kind: str) -> dict[str, Any]:
    body = {
        "type": kind,
        "subject": subject_of(sim),
        "scope": {"workspaces": [_workspace(sim.tenant).arm_id]},
    }
    submitted = api.call("POST", "v1/requests", OFFICER, body=body)
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["id"]
    if kind == "erasure":
        assert api.call("POST", f"v1/requests/{request_id}:approve", OFFICER_2).status_code == 200
    return api.wait(request_id)


def _collapsed(sim: Any, path: str) -> bool:
    """Whether `path` is where a hostile id leads once the HTTP library has collapsed its dot segments: the
    graph id's target, or the workspace's own model-management scope (a model id '..')."""
    scope = f"/workspaces/{_workspace(sim.tenant).name}"
    data_plane_scope = path.startswith(("/modelmanagement/", "/api/")) and path.rstrip("/.").endswith(scope)
    return "hostile-target" in path or "/.." in path or data_plane_scope


def _reasons(view: dict[str, Any]) -> str:
    return " | ".join(str(e["reason"]) for e in view["errors"])


def test_hostile_ids_of_an_export_reach_no_host(api: Api, hostile: Any) -> None:
    view = _request(api, hostile, "export")
    assert view["status"] == "completed_with_errors"
    reasons = _reasons(view)
    assert f"E24 graphId {HOSTILE_GRAPH!r} cannot be a URL path segment" in reasons, reasons
    assert "E16 id '..' cannot be a URL path segment (dot segment)" in reasons, reasons
    paths = [e["path"] for e in hostile.log if not e["path"].startswith("/_sim")]
    assert paths, "the export called the simulator"
    assert [p for p in paths if _collapsed(hostile, p)] == []
    # the other families went on: alice's runs in the workspace were read one by one (E7)
    assert any("/runs/" in p for p in paths)


def test_a_hostile_model_id_is_never_deleted(api: Api, hostile: Any) -> None:
    view = _request(api, hostile, "erasure")
    assert view["status"] == "completed_with_errors"
    assert "id '..' cannot be a URL path segment (dot segment)" in _reasons(view), _reasons(view)
    calls = [(e["method"], e["path"]) for e in hostile.log if not e["path"].startswith("/_sim")]
    assert [p for _, p in calls if _collapsed(hostile, p)] == []
    deletes = [p for m, p in calls if m == "DELETE"]
    # no DELETE went anywhere but to one named object (the task stopped at the hostile id, before its DELETE)
    assert all(p.rsplit("/", 2)[-2] in ("models", "services", "images", "assets") for p in deletes), deletes


def test_a_next_link_with_a_dot_segment_is_not_followed(api: Api, hostile: Any) -> None:
    hostile.reset(demo_tenant())
    # A nextLink that names the simulator's own host, with a dot segment requests would collapse
    hostile.set_hostile_links(True, base=f"{hostile.base_url}/elsewhere/..", kinds=["nextLink"])
    view = _request(api, hostile, "export")
    assert view["status"] == "completed_with_errors"
    assert "URL path has a dot segment" in _reasons(view), _reasons(view)
    page_tokens = ("$skipToken", "$skiptoken", "$continuationtoken", "continuationToken")
    followed = [e for e in hostile.log if any(t in (e.get("query") or {}) for t in page_tokens)]
    assert followed == []
