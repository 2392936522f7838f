"""Completion: when a request has no open task, finalize runs its next stage (pipeline objects, then an
erasure or a workspace deletion after the archive), or writes erasure-record.json, manifest.json and
package.zip and ends the request. Several finalizes may run at once: one claims the package, the others wait."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from shared.core import settings as names
from shared.core.model import TERMINAL_REQUEST, DsrRequest, Task, WorkspaceRef, utcnow
from shared.evidence import audit, package_zip, signing
from shared.evidence.manifest import build_erasure_record, build_manifest
from shared.evidence.package import OutputWriter, json_document
from shared.lifecycle import deadlines
from shared.lifecycle.planning import workspace_delete_task
from shared.lifecycle.submission import workspace_of
from shared.lifecycle.workspace_checks import follow_workspace_erasures
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError
from shared.tasks.context import spawn, workspace_task_id
from shared.tasks.workspace_delete import gone_outcome

log = logging.getLogger(__name__)

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
        return [workspace_delete_task(request)]
    if request.stage != "done":
        request.stage = "done"
        return []
    return None


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
        add(workspace_of(item["workspace"]), "refs", item["kind"], item["id"], "listed by the requester")
    return [
        Task(request.id, f"{key}-pipelines", "pipelines", workspace=ws, params=params)
        for key, (ws, params) in sorted(refs.items())
        if ws.location  # a workspace that could not be read has no hosts: its failure is already reported
    ]


def _complete(rt: Runtime, request: DsrRequest, tasks: list[Task]) -> str:
    """Write the erasure record (an erasure), the manifest and the package, and end the request. Both documents
    carry the head of the request's audit chain (`auditChain`: seq and MAC of its last entry so far), anchored
    with them outside the table; when packages are signed, the package holds their signatures."""
    writer = OutputWriter(rt.storage.container)
    record_info = None
    record: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    chain_head = audit.trail(rt).head(request.id)
    if request.type == "erasure":
        record = {**build_erasure_record(rt, request, tasks), "auditChain": chain_head}
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
    manifest = {**build_manifest(request, tasks, record_info), "auditChain": chain_head}
    info = writer.write_json(f"{request.id}/manifest.json", manifest)
    documents = {package_zip.MANIFEST_NAME: json_document(manifest)}
    if request.type == "erasure":
        documents[package_zip.ERASURE_RECORD_NAME] = json_document(record)

    package = package_zip.write_package(
        rt.storage.container,
        request.id,
        manifest,
        documents[package_zip.MANIFEST_NAME],
        documents.get(package_zip.ERASURE_RECORD_NAME),
        staged=staged_entries(tasks),
        signatures=signing.signed_documents(rt, documents),
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
        follow_workspace_erasures(request, record)
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


def staged_entries(tasks: list[Task]) -> dict[str, dict[str, Any]]:
    """The package entries the tasks staged, by file path (see OutputWriter and package_zip.stage_entry)."""
    return {
        info["path"]: info["zip"]
        for task in tasks
        for info in task.outputs.values()
        if isinstance(info, dict) and info.get("zip") and info.get("path")
    }
