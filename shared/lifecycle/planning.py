"""Planning: a started request's scope becomes its root tasks (a workspace, a resource group or subscription
to walk, or a workspace deletion), once its subject is resolved through Microsoft Graph."""

from __future__ import annotations

import contextlib
import logging

from shared.aml import identity
from shared.aml.client import ThrottledError
from shared.core import settings as names
from shared.core.errors import NotFoundError
from shared.core.model import TERMINAL_REQUEST, DsrRequest, Task, utcnow
from shared.evidence import audit
from shared.lifecycle import deadlines
from shared.lifecycle.changes import TrailEntry, change_request, save
from shared.lifecycle.intake import needs_approval, schedule
from shared.lifecycle.submission import RESOURCE_GROUP_ID, workspace_of
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError
from shared.tasks.context import short_hash, spawn, workspace_task_id

log = logging.getLogger(__name__)


def plan(rt: Runtime, request_id: str) -> str:
    """Turn the request's scope into root tasks (idempotent: deterministic task ids)."""
    request = rt.store.get_request(request_id)
    if request is None:
        log.warning("plan message for unknown request %s dropped", request_id)
        return "unknown"
    if request.status in TERMINAL_REQUEST:
        return "duplicate"
    if request.status == "scheduled":
        if request.not_before and request.not_before > utcnow():
            schedule(rt, request)  # came early (a duplicate or a timer's copy): wait again
            return "scheduled"
        request.status = "awaiting_approval" if needs_approval(rt, request) else "accepted"
        request.updated_at = utcnow()
        try:
            save(rt, request, _status_changed("scheduled", request.status))
        except ConcurrencyError:
            return "contended"
        if request.status == "awaiting_approval":
            deadlines.announce(rt, request, "awaiting_approval")
    if request.status not in ("accepted", "running"):
        return request.status  # awaiting approval, or ended: nothing to plan
    if request.subject is not None and request.identity is None:
        resolved = _resolve_subject(rt, request)
        if isinstance(resolved, str):
            return resolved
        request = resolved
    roots = _root_tasks(request)
    if request.status == "accepted":
        request.status = "running"
        request.updated_at = utcnow()
        # Another delivery of this message may have got there first; spawning again is harmless.
        with contextlib.suppress(ConcurrencyError):
            save(rt, request, _status_changed("accepted", "running"))
    spawn(rt, roots)
    return "planned"


def _status_changed(before: str, after: str) -> TrailEntry:
    return TrailEntry("workflow.plan", audit.STATUS_CHANGED, details={"from": before, "to": after})


def _root_tasks(request: DsrRequest) -> list[Task]:
    """One root task per named workspace, resource group and subscription; a workspace deletion without an
    archive first is the only one (and moves the request to its `delete` stage)."""
    roots: list[Task] = []
    if request.delete_workspace and not request.delete_workspace.get("exportFirst"):
        roots.append(workspace_delete_task(request))
        if request.stage != "delete":
            request.stage = "delete"
    for arm_id in [] if roots else request.scope.get("workspaces", []):
        ws = workspace_of(arm_id)
        roots.append(
            Task(request.id, workspace_task_id(ws), "workspace", workspace=ws, params={"via": "request"})
        )
    for rg_id in request.scope.get("resourceGroups", []):
        match = RESOURCE_GROUP_ID.fullmatch(rg_id)
        assert match is not None
        roots.append(
            Task(
                request.id,
                "scope-" + short_hash(rg_id),
                "scope",
                params={"subscriptionId": match["sub"], "resourceGroup": match["rg"]},
            )
        )
    for sub in request.scope.get("subscriptions", []):
        roots.append(Task(request.id, "scope-" + short_hash(sub), "scope", params={"subscriptionId": sub}))
    return roots


def workspace_delete_task(request: DsrRequest) -> Task:
    """The task that deletes the request's one workspace (D1)."""
    ws = workspace_of(request.scope["workspaces"][0])
    return Task(request.id, f"{workspace_task_id(ws)}-delete", "workspace-delete", workspace=ws)


def _resolve_subject(rt: Runtime, request: DsrRequest) -> DsrRequest | str:
    """Resolve the subject through Microsoft Graph once and store the outcome on the request (shared/aml/identity.py).
    Returns the request to plan, or why planning waits ("throttled": re-enqueued) or stops (its status)."""
    assert request.subject is not None
    original = request.subject
    try:
        subject, record = identity.resolve(rt.settings, rt.graph, original)
    except ThrottledError as exc:
        rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id}, delay_seconds=exc.retry_after)
        return "throttled"

    def store_resolution(latest: DsrRequest) -> TrailEntry | None:
        # After a concurrent change (another delivery, or a decision): keep its resolution when it made one.
        if latest.status not in ("accepted", "running") or latest.identity is not None:
            return None
        latest.subject, latest.identity = subject, record
        latest.updated_at = utcnow()
        details = {
            "graph": record["graph"].get("outcome"),
            "sources": sorted({f"{i['kind']}:{i['source']}" for i in record["identifiers"]}),
            "missing": [m["kind"] for m in record["missing"]],
        }
        return TrailEntry("workflow.plan", "subject-resolved", details=details)

    try:
        request, resolved = change_request(rt, request, store_resolution)
    except NotFoundError:
        return "unknown"
    if resolved is None:
        return request if request.status in ("accepted", "running") else request.status
    added = subject.identifiers() - original.identifiers()
    if added:
        rt.store.index_subject(request, [rt.pseudonym(i) for i in added])
    return request
