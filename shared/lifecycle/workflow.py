"""The request's life: accept, plan, (tasks run), finalize, and the status anyone can poll."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import uuid
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from azure.core.exceptions import ResourceNotFoundError

from shared.aml import identity
from shared.aml.catalog import (
    ARM_API_VERSION,
    ENDPOINTS,
    FAMILY_TITLES,
    NOT_COVERED,
    NOT_ERASABLE,
    NOT_MATCHABLE,
)
from shared.aml.client import AmlError, ThrottledError
from shared.core import settings as names
from shared.core.errors import ConflictError, ForbiddenError, NotFoundError, ValidationFailedError
from shared.core.matching import Subject
from shared.core.model import TERMINAL_REQUEST, DsrRequest, Task, WorkspaceRef, iso, new_request_id, utcnow
from shared.core.principal import ENTRA_APP, ENTRA_USER, ROLE_APPROVE, SYSTEM, Principal
from shared.evidence import audit, package_zip
from shared.evidence.package import OutputWriter, json_document
from shared.lifecycle import callbacks, deadlines
from shared.lifecycle.submission import RESOURCE_GROUP_ID, WORKSPACE_ID, SubmitIn
from shared.runtime import Runtime
from shared.storage.store import MAX_QUEUE_DELAY_SECONDS, ConcurrencyError
from shared.tasks.context import short_hash, spawn, workspace_task_id
from shared.tasks.workspace_delete import gone_outcome

log = logging.getLogger(__name__)


def _workspace_of(arm_id: str) -> WorkspaceRef:
    match = WORKSPACE_ID.match(arm_id)
    assert match is not None
    return WorkspaceRef(match["sub"], match["rg"], match["ws"])


# -- accept ---------------------------------------------------------------------------------------------------
def submit(
    rt: Runtime, body: SubmitIn, idempotency_key: str | None, principal: Principal = SYSTEM
) -> tuple[DsrRequest, bool]:
    """Store a validated request; enqueue its planning, or hold it for approval. Returns (request, replayed)."""
    if body.deleteWorkspace is not None and not rt.settings.allow_workspace_deletion:
        raise ForbiddenError("workspace deletion is disabled (setting DSR_ALLOW_WORKSPACE_DELETION)")
    callback_url = None
    if body.callbackUrl:
        try:
            callback_url = callbacks.check_url(rt.settings, body.callbackUrl)
        except ValueError as exc:
            raise ValidationFailedError(
                "the callback URL is not accepted",
                errors=[{"field": "callbackUrl", "message": str(exc)}],
            ) from None
    request_id = new_request_id()
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
        dry_run=body.dryRun,
        delete_workspace=body.deleteWorkspace.model_dump() if body.deleteWorkspace else None,
        submitted_by=principal.as_dict(),
        callback_url=callback_url,
    )
    if needs_approval(rt, request):
        request.status = "awaiting_approval"
    if not store_and_start(rt, request):
        existing = rt.store.get_request(request_id)
        assert existing is not None
        return existing, True
    stored = rt.store.get_request(request.id)
    return (stored or request), False


def store_and_start(rt: Runtime, request: DsrRequest) -> bool:
    """Store a new request, index its subject, and enqueue its planning (now, or at `not_before`). False when
    a request with this id exists already (a retried submission)."""
    from azure.core.exceptions import ResourceExistsError

    try:
        rt.store.create_request(request)
    except ResourceExistsError:
        return False
    audit.record(
        rt,
        request.id,
        request.submitted_by or "offboarding",
        audit.SUBMITTED,
        None,
        {
            "type": request.type,
            "status": request.status,
            "dryRun": request.dry_run,
            "source": request.source,
            "deleteWorkspace": bool(request.delete_workspace),
            "scope": request.scope,
        },
    )
    if request.subject is not None:
        rt.store.index_subject(request, [rt.pseudonym(i) for i in request.subject.identifiers()])
    if request.status == "accepted":
        rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id})
    elif request.status == "awaiting_approval":
        deadlines.announce(rt, request, "awaiting_approval")
    elif request.status == "scheduled" and schedule(rt, request):
        request.links["planEnqueued"] = True
        with contextlib.suppress(ConcurrencyError):
            rt.store.update_request(request)
    log.info(
        "request %s %s (%s%s, from %s)",
        request.id,
        request.status,
        request.type,
        ", dry run" if request.dry_run else "",
        request.source,
    )
    return True


def schedule(rt: Runtime, request: DsrRequest) -> bool:
    """Enqueue a scheduled request's planning, delayed until `not_before`, when that is within the queue's
    7-day visibility limit; a later start is picked up by the scheduler timer. Returns whether it enqueued."""
    assert request.not_before is not None
    delay = (request.not_before - utcnow()).total_seconds()
    if delay > MAX_QUEUE_DELAY_SECONDS:
        return False
    rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id}, delay_seconds=max(0, delay) + 1)
    return True


def release_scheduled(rt: Runtime) -> int:
    """Timer: enqueue the scheduled requests whose start has come within the queue's delay limit (once)."""
    count = 0
    for request in rt.store.requests_with_status("scheduled"):
        if request.links.get("planEnqueued") or not request.not_before:
            continue
        if schedule(rt, request):
            request.links["planEnqueued"] = True
            with contextlib.suppress(ConcurrencyError):
                rt.store.update_request(request)
            count += 1
    return count


# -- plan -----------------------------------------------------------------------------------------------------
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
            rt.store.update_request(request)
        except ConcurrencyError:
            return "contended"
        audit.record(
            rt,
            request.id,
            "workflow.plan",
            audit.STATUS_CHANGED,
            None,
            {"from": "scheduled", "to": request.status},
        )
        if request.status == "awaiting_approval":
            deadlines.announce(rt, request, "awaiting_approval")
    if request.status not in ("accepted", "running"):
        return request.status  # awaiting approval, or ended: nothing to plan
    if request.subject is not None and request.identity is None:
        resolved = _resolve_subject(rt, request)
        if isinstance(resolved, str):
            return resolved
        request = resolved
    roots: list[Task] = []
    if request.delete_workspace and not request.delete_workspace.get("exportFirst"):
        roots.append(_workspace_delete_task(request))
        if request.stage != "delete":
            request.stage = "delete"
    for arm_id in [] if roots else request.scope.get("workspaces", []):
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
        try:
            rt.store.update_request(request)
            audit.record(
                rt,
                request.id,
                "workflow.plan",
                audit.STATUS_CHANGED,
                None,
                {"from": "accepted", "to": "running"},
            )
        except ConcurrencyError:
            pass
    spawn(rt, roots)
    return "planned"


def _resolve_subject(rt: Runtime, request: DsrRequest) -> DsrRequest | str:
    """Resolve the subject through Microsoft Graph once and store the outcome on the request (shared/aml/identity.py).
    Returns the request to plan, or why planning waits ("throttled": re-enqueued)."""

    assert request.subject is not None
    original = request.subject
    try:
        subject, record = identity.resolve(rt.settings, rt.graph, original)
    except ThrottledError as exc:
        rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id}, delay_seconds=exc.retry_after)
        return "throttled"
    for _ in range(5):
        request.subject, request.identity = subject, record
        request.updated_at = utcnow()
        try:
            rt.store.update_request(request)
            break
        except ConcurrencyError:
            # Another delivery, or a decision, changed the row: keep its resolution when it made one.
            latest = rt.store.get_request(request.id)
            if latest is None or latest.status not in ("accepted", "running"):
                return latest.status if latest else "unknown"
            request = latest
            if request.identity is not None:
                return request
    else:
        raise ConcurrencyError(f"request {request.id} kept changing while its subject was resolved")
    added = subject.identifiers() - original.identifiers()
    if added:
        rt.store.index_subject(request, [rt.pseudonym(i) for i in added])
    audit.record(
        rt,
        request.id,
        "workflow.plan",
        "subject-resolved",
        None,
        {
            "graph": record["graph"].get("outcome"),
            "sources": sorted({f"{i['kind']}:{i['source']}" for i in record["identifiers"]}),
            "missing": [m["kind"] for m in record["missing"]],
        },
    )
    return request


# -- finalize -------------------------------------------------------------------------------------------------
# How long a finalize's claim on writing the package holds: host.json's functionTimeout, which no invocation
# outlives. Several finishers may enqueue finalize at once; only the claimant writes the package, the others
# come back when the claim ends (by then the request has ended and they drop out, unless the claimant died).
FINALIZE_CLAIM_SECONDS = 600


def finalize(rt: Runtime, request_id: str) -> str:
    """When no task is open: run the next stage (pipeline objects, then a workspace deletion), else write the
    erasure record and the manifest and end the request. Idempotent; every status change is ETag-guarded."""
    owner = uuid.uuid4().hex
    for _ in range(10):
        request = rt.store.get_request(request_id)
        if request is None:
            return "unknown"
        if request.manifest_path or (request.status in TERMINAL_REQUEST and request.status != "cancelled"):
            return "duplicate"
        if rt.store.has_open_tasks(request_id):
            return "waiting"
        tasks = list(rt.store.list_tasks(request_id))
        try:
            if request.status != "cancelled":
                next_tasks = _next_stage(request, tasks)
                if next_tasks is not None:
                    # Create the next stage's tasks before the stage change is stored: a concurrent finalize
                    # then finds them open and waits, instead of completing the request without them.
                    if next_tasks:
                        spawn(rt, next_tasks)
                    request.updated_at = utcnow()
                    rt.store.update_request(request)
                    if next_tasks:
                        return request.stage
                    continue
            now, until = utcnow(), request.finalize_until
            if until is not None and until > now and request.finalize_owner != owner:
                # Another finalize is writing the package: come back when its claim ends (a no-op by then,
                # unless it died on the way).
                delay = (until - now).total_seconds() + 1
                rt.storage.send(names.FINALIZE_QUEUE, {"requestId": request_id}, delay_seconds=delay)
                return "claimed"
            request.finalize_owner = owner
            request.finalize_until = now + dt.timedelta(seconds=FINALIZE_CLAIM_SECONDS)
            # ETag-guarded: of the finalizes that read this row, one claims it.
            rt.store.update_request(request)
            return _complete(rt, request, tasks)
        except ConcurrencyError:
            continue
    raise RuntimeError(f"finalize of {request_id} kept losing the race")


def _next_stage(request: DsrRequest, tasks: list[Task]) -> list[Task] | None:
    """Advance request.stage; return the tasks of the new stage ([] when it has none), or None when done."""
    if request.stage == "collect":
        request.stage = "pipelines"
        return _pipeline_tasks(request, tasks)
    erase_after_archive = request.export_first and request.subject is not None
    if request.stage == "pipelines" and (erase_after_archive or request.delete_workspace):
        if any(t.status == "failed" for t in tasks):
            # Never erase what could not be archived first.
            request.stage = "done"
            family, reason = (
                ("erase", "nothing erased: the archive before erasure had failures")
                if erase_after_archive
                else ("workspace", "workspace not deleted: its export before deletion had failures")
            )
            request.errors.append({"task": None, "family": family, "reason": reason})
            return []
        if erase_after_archive:
            request.stage = "erase"
            return [
                Task(request.id, f"{t.task_id}-erase", "erase", workspace=t.workspace)
                for t in tasks
                if t.kind == "workspace" and t.status == "done" and t.workspace and t.workspace.location
            ]
        request.stage = "delete"
        return [_workspace_delete_task(request)]
    if request.stage != "done":
        request.stage = "done"
        return []
    return None


def _workspace_delete_task(request: DsrRequest) -> Task:
    ws = _workspace_of(request.scope["workspaces"][0])
    return Task(request.id, f"{workspace_task_id(ws)}-delete", "workspace-delete", workspace=ws)


def _complete(rt: Runtime, request: DsrRequest, tasks: list[Task]) -> str:
    writer = OutputWriter(rt.storage.container)
    record_info = None
    record: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    if request.type == "erasure":
        record = build_erasure_record(rt, request, tasks)
        record_info = writer.write_json(f"{request.id}/erasure-record.json", record)
        problems = [
            {
                "task": None,
                "family": item["family"],
                "workspace": item["workspace"],
                "reason": f"{item['id']}: {item['outcome']}",
            }
            for item in record["items"]
            if item["outcome"] not in ("deleted", "already gone", "would delete")
            and not gone_outcome(item["outcome"])
        ]
    manifest = build_manifest(request, tasks, record_info)
    info = writer.write_json(f"{request.id}/manifest.json", manifest)

    package = package_zip.write_package(
        rt.storage.container,
        request.id,
        manifest,
        json_document(manifest),
        json_document(record) if request.type == "erasure" else None,
        staged=staged_entries(tasks),
    )
    failed = [t for t in tasks if t.status == "failed"]
    errors = [
        {
            "task": t.task_id,
            "family": t.kind,
            "workspace": t.workspace.arm_id if t.workspace else None,
            "reason": t.error,
        }
        for t in failed
    ]
    request.errors = (
        [e for e in request.errors if e.get("task") is None and e not in problems] + errors + problems
    )
    if request.status != "cancelled":
        request.status = "completed_with_errors" if request.errors else "completed"
    if request.type == "erasure" and not request.dry_run:
        _follow_workspace_erasures(request, record)
    request.manifest_path = info["path"]
    request.package_path = package["path"]
    request.completed_at = request.updated_at = utcnow()
    rt.store.update_request(request)
    if request.status != "cancelled":  # a cancellation was announced when it was decided
        deadlines.announce(rt, request, request.status)
    audit.record(
        rt,
        request.id,
        "workflow.finalize",
        audit.STATUS_CHANGED,
        None,
        {
            "to": request.status,
            "tasks": len(tasks),
            "failedTasks": len(failed),
            "manifest": request.manifest_path,
            "manifestSha256": info["sha256"],
            "package": {"path": package["path"], "bytes": package["bytes"]},
        },
    )
    log.info("request %s %s: %d tasks, %d failed", request.id, request.status, len(tasks), len(failed))
    return request.status


# -- the later check of a workspace erasure ---------------------------------------------------------------------
# A purged and a soft-deleted workspace both answer 404: no operation of the published contract lists, reads or
# recovers a soft-deleted workspace (azure-rest-api-specs, stable/2025-12-01/workspaceRP.json; the portal's
# "Recently deleted" view does [learn.microsoft.com/azure/machine-learning/concept-soft-delete]). What a later
# check can observe is whether the workspace answers again (recovered, or re-created under the name). It records
# each observation with its time on the request (links.workspaceErasure) and in the audit trail, and ends: for a
# purge, at the first check that still sees 404; for a soft delete, at the first check after recoverableUntil
# (the service then purges it; that, too, is not observable); at once when the workspace answers again.
# erasure-record.json itself is not rewritten: its sha-256 is pinned in the manifest and the package.
WORKSPACE_RECHECK_HOURS = 24
WORKSPACE_CHECKED = "workspace-checked"


def _follow_workspace_erasures(request: DsrRequest, record: dict[str, Any]) -> None:

    due = iso(utcnow() + dt.timedelta(hours=WORKSPACE_RECHECK_HOURS))
    follow = request.links.setdefault("workspaceErasure", {})
    for item in record.get("items", []):
        if item.get("family") != "workspace" or not gone_outcome(str(item.get("outcome"))):
            continue
        follow.setdefault(
            item["workspace"],
            {
                "outcome": item["outcome"],
                "forceToPurge": bool(item.get("forceToPurge")),
                "recoverableUntil": item.get("recoverableUntil"),
                "verifiedAt": (item.get("verification") or {}).get("at"),
                "checks": [],
                "nextCheckAt": due,
                "final": False,
            },
        )
    if not follow:
        request.links.pop("workspaceErasure", None)


def _observe_workspace(rt: Runtime, arm_id: str) -> dict[str, Any]:

    ws = _workspace_of(arm_id)
    url = rt.settings.arm_base_url + ENDPOINTS["E2"].render(**ws.placeholders())
    at = iso(utcnow())
    try:
        body = rt.aml.get_json(url, params={"api-version": ARM_API_VERSION})
    except AmlError as exc:
        return {"at": at, "status": exc.status, "code": exc.code}
    state = (body.get("properties") or {}).get("provisioningState")
    return {"at": at, "status": 200, "provisioningState": state}


def recheck_workspace_erasures(rt: Runtime, now: dt.datetime | None = None) -> dict[str, int]:
    """Timer: read each erased workspace again when its check is due; record what was seen (see above).
    At-least-once safe: a check is a read; a run that loses the race to save only adds one more observation."""
    now = now or utcnow()
    counts = {"checked": 0, "visible": 0, "final": 0}
    for status in sorted(TERMINAL_REQUEST):
        for request in rt.store.requests_with_status(status):
            follow = request.links.get("workspaceErasure") or {}
            due = [
                (arm_id, state)
                for arm_id, state in sorted(follow.items())
                if not state.get("final") and dt.datetime.fromisoformat(state["nextCheckAt"]) <= now
            ]
            for arm_id, state in due:
                seen = _observe_workspace(rt, arm_id)
                counts["checked"] += 1
                state["checks"] = [*state.get("checks", []), seen][-20:]
                until = state.get("recoverableUntil")
                if seen["status"] == 200:
                    state["outcome"] = (
                        f"visible again at {seen['at']}: the workspace was recovered or re-created after the "
                        "erasure; its data must be erased again"
                    )
                    state["final"] = True
                    counts["visible"] += 1
                    request.errors.append(
                        {"task": None, "family": "workspace", "workspace": arm_id, "reason": state["outcome"]}
                    )
                elif seen["status"] == 404 and state.get("forceToPurge"):
                    state["confirmedAt"] = seen["at"]
                    state["note"] = (
                        "still 404 after the purge; the API shows nothing more (a purged and a soft-deleted "
                        "workspace answer alike)"
                    )
                    state["final"] = True
                elif seen["status"] == 404 and until and dt.datetime.fromisoformat(until) <= now:
                    state["outcome"] = (
                        f"soft-deleted; its retention ended {until}, when Azure ML purges it (not observable: "
                        f"404 before and after; last seen 404 at {seen['at']})"
                    )
                    state["final"] = True
                if state.get("final"):
                    counts["final"] += 1
                else:
                    later = now + dt.timedelta(hours=WORKSPACE_RECHECK_HOURS)
                    if until and seen["status"] == 404:
                        later = min(later, dt.datetime.fromisoformat(until) + dt.timedelta(minutes=1))
                    state["nextCheckAt"] = iso(later)
                audit.record(
                    rt,
                    request.id,
                    "workflow.workspace-check",
                    WORKSPACE_CHECKED,
                    None,
                    {"workspace": arm_id, **seen, "outcome": state["outcome"], "final": state["final"]},
                )
            if due:
                request.updated_at = utcnow()
                with contextlib.suppress(ConcurrencyError):
                    rt.store.update_request(request)
    if counts["checked"]:
        log.info("workspace erasure checks: %s", counts)
    return counts


def build_erasure_record(rt: Runtime, request: DsrRequest, tasks: list[Task]) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for task in tasks:
        output = task.outputs.get("erasure")
        if output:
            data = rt.storage.container.get_blob_client(output["path"]).download_blob().readall()
            items.extend(json.loads(line) for line in data.splitlines() if line.strip())
    items.sort(key=lambda i: (str(i["workspace"]), ERASE_RANK.get(i["family"], 9), str(i["id"])))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in items:
        counts[item["family"]][item["outcome"]] += 1
    return {
        "request": {
            "id": request.id,
            "reference": request.reference,
            "subject": request.subject.as_dict() if request.subject else None,
            "identity": request.identity,
            "deleteWorkspace": request.delete_workspace,
            "dryRun": request.dry_run,
            "submittedBy": request.submitted_by,
            "decision": request.decision,
            "receivedAt": iso(request.received_at),
        },
        "generatedAt": iso(utcnow()),
        "items": items,
        "counts": {family: dict(c) for family, c in sorted(counts.items())},
        "failedTasks": [
            {"task": t.task_id, "workspace": t.workspace.arm_id if t.workspace else None, "reason": t.error}
            for t in tasks
            if t.status == "failed"
        ],
        "notErasable": list(NOT_ERASABLE),
    }


ERASE_RANK = {"services": 1, "images": 2, "models": 3, "assets": 4, "workspace": 5}


def _pipeline_tasks(request: DsrRequest, tasks: list[Task]) -> list[Task]:
    """One `pipelines` task per workspace whose runs point to pipeline objects (or where the requester listed
    some): `refs` from the subject's own runs and the requester, `seen` from everyone else's pipeline runs."""
    refs: dict[str, tuple[WorkspaceRef, dict[str, dict[str, dict[str, str]]]]] = {}
    resolved = {t.task_id: t.workspace for t in tasks if t.kind == "workspace" and t.workspace}

    def add(ws: WorkspaceRef, group: str, kind: str, oid: str, why: str) -> None:
        key = workspace_task_id(ws)
        entry = refs.setdefault(key, (resolved.get(key) or ws, {"refs": {}, "seen": {}}))
        entry[1][group].setdefault(kind, {}).setdefault(oid, why)

    for task in tasks:
        if task.kind == "runs" and task.workspace:
            for group, found in (("refs", "pipelines"), ("seen", "pipelinesSeen")):
                for kind, ids in task.found.get(found, {}).items():
                    for oid, why in ids.items():
                        add(task.workspace, group, kind, oid, why)
    for item in request.pipeline_ids:
        add(_workspace_of(item["workspace"]), "refs", item["kind"], item["id"], "listed by the requester")
    return [
        Task(request.id, f"{key}-pipelines", "pipelines", workspace=ws, params=params)
        for key, (ws, params) in sorted(refs.items())
        if ws.location  # a workspace that could not be read has no hosts: its failure is already reported
    ]


def staged_entries(tasks: list[Task]) -> dict[str, dict[str, Any]]:
    """The package entries the tasks staged, by file path (see OutputWriter and package_zip.stage_entry)."""
    return {
        info["path"]: info["zip"]
        for task in tasks
        for info in task.outputs.values()
        if isinstance(info, dict) and info.get("zip") and info.get("path")
    }


def build_manifest(
    request: DsrRequest, tasks: list[Task], erasure_record: dict[str, Any] | None = None
) -> dict[str, Any]:
    files = []
    families: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    pipelines = []
    withheld: dict[str, int] = defaultdict(int)
    for task in sorted(tasks, key=lambda t: t.task_id):
        family = families[task.kind]
        family["tasks"] += 1
        family["failed"] += task.status == "failed"
        for key in ("calls", "pages", "seen", "kept", "retries", "throttled", "redacted"):
            family[key] += int(task.stats.get(key, 0))
        for output, info in sorted(task.outputs.items()):
            if output == "erasure":
                continue  # folded into erasure-record.json
            files.append(
                {
                    "family": output,
                    "workspace": task.workspace.arm_id if task.workspace else None,
                    **{key: value for key, value in info.items() if key != "zip"},
                }
            )
        if task.kind == "pipelines":
            for kind, oid, why, *rest in task.checkpoint.get("fetched", []):
                # Another person's pipeline objects (and the runs that led to them) are counted, never named:
                # an id is listed only for what was exported or what the subject's own run names.
                named = rest[1] if len(rest) > 1 else "not exported" not in why and rest[:1] != ["other"]
                if not named:
                    withheld[kind] += 1
                    continue
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
            "identity": request.identity,
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
        "pipelineObjectsOfOthers": {
            "count": sum(withheld.values()),
            "byKind": dict(sorted(withheld.items())),
            "why": "Fetched because a pipeline run points to them (the subject's object can sit in someone "
            "else's pipeline); created by someone else or found only through someone else's runs, so neither "
            "exported nor named here.",
        },
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
        "erasureRecord": erasure_record,
        "dryRun": request.dry_run,
        "notCovered": list(NOT_COVERED),
        # What the published contract does not let the product attribute to the subject (by family).
        "notMatchable": list(NOT_MATCHABLE) if request.subject is not None else [],
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
        if request.type == "erasure":
            links["erasureRecord"] = f"{names.EXPORT_CONTAINER}/{request.id}/erasure-record.json"
    expires = package_expiry(rt, request)
    if request.package_path and expires and utcnow() < expires and not request.links.get("packagePurgedAt"):
        links["package"] = f"{base_url}/api/v1/requests/{request.id}/package"
    view = {
        "id": request.id,
        "type": request.type,
        "status": request.status,
        "dryRun": request.dry_run,
        "reference": request.reference,
        "deleteWorkspace": request.delete_workspace,
        "submittedBy": request.submitted_by,
        "decision": request.decision,
        "source": request.source,
        "notBefore": iso(request.not_before),
        "exportFirst": request.export_first,
        "archiveUntil": iso(request.archive_until),
        "related": request.links,
        "receivedAt": iso(request.received_at),
        "updatedAt": iso(request.updated_at),
        "completedAt": iso(request.completed_at),
        "dueAt": iso(request.due_at),
        "progress": {
            name: {"title": FAMILY_TITLES.get(name, name), **dict(entry)}
            for name, entry in sorted(progress.items())
        },
        "deadline": deadlines.deadline_view(request),
        "packageExpiresAt": iso(expires),
        "errors": request.errors,
        "links": links,
    }
    if request.identity is not None:
        view["identity"] = request.identity  # the identifiers used, their sources, the kinds still missing
    if request.callback_url:
        view["callback"] = {
            "url": urlsplit(request.callback_url)._replace(query="", fragment="").geturl(),
            "deliveries": callbacks.history(rt, request.id),
        }
    return view


def package_expiry(rt: Runtime, request: DsrRequest) -> dt.datetime | None:
    """When the package stops being served: retention days after the request ended (the purge timer and the
    storage lifecycle rule then delete it)."""
    if not request.package_path or not request.completed_at:
        return None
    return request.completed_at + dt.timedelta(days=rt.settings.package_retention_days)


# -- decisions ------------------------------------------------------------------------------------------------
def needs_approval(rt: Runtime, request: DsrRequest) -> bool:
    if request.type != "erasure" or request.dry_run:
        return False
    if request.delete_workspace:
        return True  # always, and by someone other than the submitter
    if request.source == "offboarding":
        return not rt.settings.offboarding_auto_approve
    return not rt.settings.auto_approve_erasure


def decide(rt: Runtime, request_id: str, action: str, principal: Principal, reason: str | None) -> DsrRequest:
    """approve / reject / cancel, recorded with who and when."""
    for _ in range(5):
        request = rt.store.get_request(request_id)
        if request is None:
            raise NotFoundError(f"no request with id {request_id}")
        if action in ("approve", "reject") and request.status != "awaiting_approval":
            raise ConflictError(f"the request is {request.status}, not awaiting approval")
        if action == "cancel" and request.status in TERMINAL_REQUEST:
            raise ConflictError(f"the request is already {request.status}")
        if action == "cancel":
            _submitter_or_approver(principal, request, "cancel")
        if action == "approve" and request.delete_workspace:
            if not rt.settings.allow_workspace_deletion:
                raise ForbiddenError("workspace deletion is disabled (setting DSR_ALLOW_WORKSPACE_DELETION)")
            submitter = (request.submitted_by or {}).get("id")
            if not principal.is_person:
                raise ForbiddenError("a workspace deletion must be approved by a signed-in person")
            if principal.id == submitter:
                raise ForbiddenError("the submitter of a workspace deletion cannot approve it")
        previous = request.status
        request.decision = {
            "action": {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}[action],
            "by": principal.as_dict(),
            "at": iso(utcnow()),
            "reason": reason,
            "statusBefore": previous,
        }
        request.status = {"approve": "accepted", "reject": "rejected", "cancel": "cancelled"}[action]  # type: ignore[assignment]
        request.updated_at = utcnow()
        if action == "reject" or (action == "cancel" and previous == "awaiting_approval"):
            request.completed_at = request.updated_at
        try:
            rt.store.update_request(request)
        except ConcurrencyError:
            continue
        audit.record(
            rt,
            request.id,
            principal,
            {"approve": audit.APPROVED, "reject": audit.REJECTED, "cancel": audit.CANCELLED}[action],
            reason,
            {"from": previous, "to": request.status},
        )
        if action == "approve":
            rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id})
        if action == "cancel" and previous in ("accepted", "running"):
            # Tasks not yet started will find the request cancelled and stop; running ones finish their item.
            # Finalize then records what already happened (the erasure record lists every DELETE sent).
            rt.storage.send(names.FINALIZE_QUEUE, {"requestId": request.id}, delay_seconds=1)
        if request.status in ("rejected", "cancelled"):
            deadlines.announce(rt, request, request.status)
        log.info("request %s %s by %s", request.id, request.decision["action"], principal.source)
        return request
    raise ConflictError("the request kept changing; try again")


# -- failure surfacing and repair -----------------------------------------------------------------------------
def task_poisoned(rt: Runtime, request_id: str, task_id: str, dequeue_count: int | None) -> str:
    """A work message the host gave up on: the task becomes `failed` with the reason, so its request ends
    `completed_with_errors` instead of hanging."""
    task = rt.store.get_task(request_id, task_id)
    if task is None or task.status in ("done", "failed", "skipped"):
        return "ignored"
    task.status = "failed"
    task.error = (
        f"the task failed {dequeue_count or 'several'} times in a row and its message was moved to the poison "
        "queue (see the host logs for the exception)"
    )
    task.finished_at = utcnow()
    task.lease_owner = None
    task.lease_until = None
    try:
        rt.store.update_task(task)
    except ConcurrencyError:
        return "contended"
    if not rt.store.has_open_tasks(request_id):
        rt.storage.send(names.FINALIZE_QUEUE, {"requestId": request_id})
    log.error("task %s/%s (%s) failed: moved to the poison queue", request_id, task_id, task.kind)
    return "failed"


def request_poisoned(rt: Runtime, request_id: str, step: str, dequeue_count: int | None) -> str:
    """A plan or finalize message the host gave up on: the request ends `failed`, saying why."""
    for _ in range(5):
        request = rt.store.get_request(request_id)
        if request is None or request.status in TERMINAL_REQUEST:
            return "ignored"
        request.status = "failed"
        request.errors.append(
            {
                "task": None,
                "family": step,
                "reason": f"the {step} step failed {dequeue_count or 'several'} times; its message is in the poison queue",
            }
        )
        request.completed_at = request.updated_at = utcnow()
        try:
            rt.store.update_request(request)
        except ConcurrencyError:
            continue
        audit.record(
            rt,
            request_id,
            f"workflow.{step}",
            audit.STATUS_CHANGED,
            None,
            {"to": "failed", "why": "poison queue"},
        )
        deadlines.announce(rt, request, "failed")
        log.error("request %s failed: its %s message was moved to the poison queue", request_id, step)
        return "failed"
    return "contended"


STUCK_AFTER_SECONDS = 600


def sweep(rt: Runtime) -> dict[str, int]:
    """Timer: find work that lost its message and put it back. Running tasks whose lease expired, queued tasks
    untouched for a while, requests with no open task that never finalized, accepted requests never planned.
    Every re-enqueue is harmless if the original message still exists (the steps are idempotent)."""
    now = utcnow()
    counts = {"tasks": 0, "finalize": 0, "plan": 0}
    for status in ("accepted", "running"):
        for request in rt.store.requests_with_status(status):
            idle = (now - (request.updated_at or request.received_at)).total_seconds()
            if status == "accepted":
                if idle > STUCK_AFTER_SECONDS:
                    rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id})
                    counts["plan"] += 1
                continue
            open_tasks = 0
            for task in rt.store.list_tasks(request.id):
                if task.status not in ("queued", "running"):
                    continue
                open_tasks += 1
                expired = task.status == "running" and task.lease_until is not None and task.lease_until < now
                untouched = (
                    task.status == "queued"
                    and task.modified_at is not None
                    and (now - task.modified_at).total_seconds() > STUCK_AFTER_SECONDS
                )
                if expired or untouched:
                    rt.storage.send(names.WORK_QUEUE, {"requestId": request.id, "taskId": task.task_id})
                    counts["tasks"] += 1
            if open_tasks == 0 and idle > 60:
                rt.storage.send(names.FINALIZE_QUEUE, {"requestId": request.id})
                counts["finalize"] += 1
    if any(counts.values()):
        log.warning("sweep re-enqueued %s", counts)
    return counts


def _submitter_or_approver(principal: Principal, request: DsrRequest, what: str) -> None:
    """A caller with only DSR.Submit acts on its own requests; DSR.Approve acts on any. (Function-key and Easy
    Auth callers carry no app roles: the API admits them only while Entra tokens are not required.)"""
    if principal.source not in (ENTRA_USER, ENTRA_APP) or ROLE_APPROVE in principal.roles:
        return
    if principal.id != (request.submitted_by or {}).get("id"):
        raise ForbiddenError(f"only the request's submitter or a {ROLE_APPROVE} holder may {what} it")


def retry(rt: Runtime, request_id: str, principal: Principal) -> DsrRequest:
    """Re-run only the failed tasks of an ended request (from their checkpoints)."""
    request = rt.store.get_request(request_id)
    if request is None:
        raise NotFoundError(f"no request with id {request_id}")
    _submitter_or_approver(principal, request, "retry")
    if request.status not in ("completed_with_errors", "failed"):
        raise ConflictError(
            f"only a request that ended with errors can be retried; this one is {request.status}"
        )
    failed = [t for t in rt.store.list_tasks(request_id) if t.status == "failed"]
    if not failed and request.status != "failed":
        raise ConflictError(
            "no task failed: the errors are items the service refused (see the erasure record)"
        )
    for task in failed:
        task.status = "queued"
        task.error = None
        task.finished_at = None
        task.stats.pop("attempts", None)
        rt.store.update_task(task)
    request.status = "running"
    request.errors = []
    request.manifest_path = None
    request.package_path = None
    request.completed_at = None
    request.finalize_owner = request.finalize_until = None
    request.updated_at = utcnow()
    request.decision = {
        **(request.decision or {}),
        "retried": {"by": principal.as_dict(), "at": iso(utcnow()), "tasks": len(failed)},
    }
    rt.store.update_request(request)
    audit.record(rt, request.id, principal, "retried", None, {"to": "running", "tasks": len(failed)})
    if failed:
        spawn(rt, failed)
    else:
        rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id})
    log.info("request %s: %d failed task(s) re-enqueued", request.id, len(failed))
    return request


def purge_expired_packages(rt: Runtime) -> int:
    """Timer: delete the package of every request that ended more than DSR_PACKAGE_RETENTION_DAYS ago (the
    lifecycle rule in infra does the same by blob age; this one also records it on the request and in the audit
    trail). Returns how many packages were purged."""
    cutoff = utcnow() - dt.timedelta(days=rt.settings.package_retention_days)
    purged = 0
    for status in sorted(TERMINAL_REQUEST):
        for request in rt.store.requests_with_status(status):
            if (
                request.links.get("packagePurgedAt")
                or not request.completed_at
                or request.completed_at > cutoff
            ):
                continue
            blobs = [b.name for b in rt.storage.container.list_blobs(name_starts_with=f"{request.id}/")]
            for name in blobs:
                with contextlib.suppress(ResourceNotFoundError):
                    rt.storage.container.delete_blob(name)
            request.links["packagePurgedAt"] = iso(utcnow())
            try:
                rt.store.update_request(request)
            except ConcurrencyError:
                continue
            audit.record(
                rt,
                request.id,
                "workflow.purge",
                "package-purged",
                None,
                {"files": len(blobs), "retentionDays": rt.settings.package_retention_days},
            )
            purged += 1
    if purged:
        log.info("purged %d expired export package(s)", purged)
    return purged
