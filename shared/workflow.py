"""The request's life: accept, plan, (tasks run), finalize, and the status anyone can poll."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from collections import defaultdict
from typing import Any

from shared import settings as names
from shared.catalog import FAMILIES, NOT_COVERED
from shared.errors import ConflictError
from shared.matching import Subject
from shared.model import TERMINAL_REQUEST, DsrRequest, Task, WorkspaceRef, iso, utcnow
from shared.package import OutputWriter
from shared.requests_api import RESOURCE_GROUP_ID, WORKSPACE_ID, SubmitIn
from shared.runtime import Runtime
from shared.storage import ConcurrencyError
from shared.tasks import short_hash, spawn, workspace_task_id

log = logging.getLogger(__name__)

FAMILY_TITLES = {
    "scope": "Workspace discovery",
    "workspace": "Workspaces",
    "pipelines": "Pipeline objects",
    **{name: f.title for name, f in FAMILIES.items()},
}


def _workspace_of(arm_id: str) -> WorkspaceRef:
    match = WORKSPACE_ID.match(arm_id)
    assert match is not None
    return WorkspaceRef(match["sub"], match["rg"], match["ws"])


# -- accept ---------------------------------------------------------------------------------------------------
def submit(rt: Runtime, body: SubmitIn, idempotency_key: str | None) -> tuple[DsrRequest, bool]:
    """Store a validated request and enqueue its planning. Returns (request, replayed)."""
    request_id = str(uuid.uuid4())
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True)
    if idempotency_key:
        key_hash = hashlib.sha256(f"{idempotency_key}\n{canonical}".encode()).hexdigest()
        key_only = hashlib.sha256(idempotency_key.encode()).hexdigest()
        owner = rt.store.claim_idempotency_key(key_only, f"{request_id}|{key_hash}")
        owner_id, _, owner_hash = owner.partition("|")
        if owner_id != request_id:
            if owner_hash != key_hash:
                raise ConflictError("this Idempotency-Key was already used with a different request body")
            existing = rt.store.get_request(owner_id)
            if existing is not None:
                return existing, True
            request_id = owner_id  # the first attempt claimed the key and stopped before storing: finish it
    subject = (
        Subject(body.subject.objectId, body.subject.userPrincipalName, body.subject.email)
        if body.subject
        else None
    )
    request = DsrRequest(
        id=request_id,
        type=body.type,
        subject=subject,
        scope=body.scope.model_dump(),
        received_at=utcnow(),
        reference=body.reference,
        idempotency_key=hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        if idempotency_key
        else None,
        pipeline_ids=[p.model_dump() for p in body.pipelineIds],
    )
    try:
        rt.store.create_request(request)
    except Exception as exc:
        from azure.core.exceptions import ResourceExistsError

        if not isinstance(exc, ResourceExistsError):
            raise
        existing = rt.store.get_request(request_id)
        assert existing is not None
        return existing, True
    rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id})
    log.info("request %s accepted (%s)", request.id, request.type)
    stored = rt.store.get_request(request.id)
    return (stored or request), False


# -- plan -----------------------------------------------------------------------------------------------------
def plan(rt: Runtime, request_id: str) -> str:
    """Turn the request's scope into root tasks (idempotent: deterministic task ids)."""
    request = rt.store.get_request(request_id)
    if request is None:
        log.warning("plan message for unknown request %s dropped", request_id)
        return "unknown"
    if request.status in TERMINAL_REQUEST:
        return "duplicate"
    roots: list[Task] = []
    for arm_id in request.scope.get("workspaces", []):
        ws = _workspace_of(arm_id)
        roots.append(
            Task(request.id, workspace_task_id(ws), "workspace", workspace=ws, params={"via": "request"})
        )
    for rg_id in request.scope.get("resourceGroups", []):
        match = RESOURCE_GROUP_ID.match(rg_id)
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
    if request.status == "accepted":
        request.status = "running"
        request.updated_at = utcnow()
        # Another delivery of this message may have got there first; spawning again is harmless.
        with contextlib.suppress(ConcurrencyError):
            rt.store.update_request(request)
    spawn(rt, roots)
    return "planned"


# -- finalize -------------------------------------------------------------------------------------------------
def finalize(rt: Runtime, request_id: str) -> str:
    """When no task is open: run the pipeline stage if needed, then write the manifest and end the request."""
    for _ in range(5):
        request = rt.store.get_request(request_id)
        if request is None:
            return "unknown"
        if request.status in TERMINAL_REQUEST:
            return "duplicate"
        if rt.store.has_open_tasks(request_id):
            return "waiting"
        tasks = list(rt.store.list_tasks(request_id))
        try:
            if request.stage == "collect":
                pipeline_tasks = _pipeline_tasks(request, tasks)
                request.stage = "pipelines" if pipeline_tasks else "done"
                request.updated_at = utcnow()
                rt.store.update_request(request)
                if pipeline_tasks:
                    spawn(rt, pipeline_tasks)
                    return "pipelines"
            manifest = build_manifest(request, tasks)
            info = OutputWriter(rt.storage.container).write_json(f"{request.id}/manifest.json", manifest)
            failed = [t for t in tasks if t.status == "failed"]
            request.status = "completed_with_errors" if failed else "completed"
            request.errors = [
                {
                    "task": t.task_id,
                    "family": t.kind,
                    "workspace": t.workspace.arm_id if t.workspace else None,
                    "reason": t.error,
                }
                for t in failed
            ]
            request.manifest_path = info["path"]
            request.completed_at = request.updated_at = utcnow()
            rt.store.update_request(request)
            log.info(
                "request %s %s: %d tasks, %d failed", request.id, request.status, len(tasks), len(failed)
            )
            return request.status
        except ConcurrencyError:
            continue
    raise RuntimeError(f"finalize of {request_id} kept losing the race")


def _pipeline_tasks(request: DsrRequest, tasks: list[Task]) -> list[Task]:
    refs: dict[str, tuple[WorkspaceRef, dict[str, dict[str, str]]]] = {}
    resolved = {t.task_id: t.workspace for t in tasks if t.kind == "workspace" and t.workspace}

    def add(ws: WorkspaceRef, kind: str, oid: str, why: str) -> None:
        key = workspace_task_id(ws)
        entry = refs.setdefault(key, (resolved.get(key) or ws, {}))
        entry[1].setdefault(kind, {}).setdefault(oid, why)

    for task in tasks:
        if task.kind == "runs" and task.workspace:
            for kind, ids in task.found.get("pipelines", {}).items():
                for oid, why in ids.items():
                    add(task.workspace, kind, oid, why)
    for item in request.pipeline_ids:
        add(_workspace_of(item["workspace"]), item["kind"], item["id"], "listed by the requester")
    return [
        Task(request.id, f"{key}-pipelines", "pipelines", workspace=ws, params={"refs": ids})
        for key, (ws, ids) in sorted(refs.items())
        if ws.location  # a workspace that could not be read has no hosts: its failure is already reported
    ]


def build_manifest(request: DsrRequest, tasks: list[Task]) -> dict[str, Any]:
    files = []
    families: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    pipelines = []
    for task in sorted(tasks, key=lambda t: t.task_id):
        family = families[task.kind]
        family["tasks"] += 1
        family["failed"] += task.status == "failed"
        for key in ("calls", "pages", "seen", "kept", "retries", "throttled", "redacted"):
            family[key] += int(task.stats.get(key, 0))
        for output, info in sorted(task.outputs.items()):
            files.append(
                {"family": output, "workspace": task.workspace.arm_id if task.workspace else None, **info}
            )
        if task.kind == "pipelines":
            for kind, oid, why in task.checkpoint.get("fetched", []):
                pipelines.append(
                    {
                        "workspace": task.workspace.arm_id if task.workspace else None,
                        "kind": kind,
                        "id": oid,
                        "why": why,
                    }
                )
    return {
        "request": {
            "id": request.id,
            "type": request.type,
            "reference": request.reference,
            "subject": request.subject.as_dict() if request.subject else None,
            "wholeWorkspace": request.subject is None,
            "scope": request.scope,
            "receivedAt": iso(request.received_at),
            "dueAt": iso(request.due_at),
        },
        "generatedAt": iso(utcnow()),
        "format": "JSON Lines: one object per line, {endpoint, workspace, matchedBy, record}",
        "files": sorted(files, key=lambda f: f["path"]),
        "families": {name: dict(counts) for name, counts in sorted(families.items())},
        "pipelineObjects": pipelines,
        "failedTasks": [
            {
                "task": t.task_id,
                "family": t.kind,
                "workspace": t.workspace.arm_id if t.workspace else None,
                "reason": t.error,
            }
            for t in tasks
            if t.status == "failed"
        ],
        "notCovered": list(NOT_COVERED),
    }


# -- status ---------------------------------------------------------------------------------------------------
def status_view(rt: Runtime, request: DsrRequest, base_url: str) -> dict[str, Any]:
    progress: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for task in rt.store.list_tasks(request.id):
        entry = progress[task.kind]
        entry["tasks"] += 1
        entry[task.status] += 1
        entry["recordsKept"] += int(task.stats.get("kept", 0))
        entry["recordsSeen"] += int(task.stats.get("seen", 0))
        entry["calls"] += int(task.stats.get("calls", 0))
    links = {"self": f"{base_url}/api/v1/requests/{request.id}"}
    if request.manifest_path:
        links["manifest"] = f"{names.EXPORT_CONTAINER}/{request.manifest_path}"
    return {
        "id": request.id,
        "type": request.type,
        "status": request.status,
        "reference": request.reference,
        "receivedAt": iso(request.received_at),
        "updatedAt": iso(request.updated_at),
        "completedAt": iso(request.completed_at),
        "dueAt": iso(request.due_at),
        "progress": {
            name: {"title": FAMILY_TITLES.get(name, name), **dict(entry)}
            for name, entry in sorted(progress.items())
        },
        "errors": request.errors,
        "links": links,
    }
