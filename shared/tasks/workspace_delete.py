"""A whole workspace's deletion (D1), one `workspace-delete` task: purge or soft delete, the long-running
operation polled by delayed messages, then the workspace must answer 404. The record says `purged` or
`soft-deleted, recoverable until <date>`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.aml.catalog import (
    ENDPOINTS,
    FORCE_TO_PURGE_SINCE,
    SOFT_DELETE_RETENTION_DAYS,
    supports_force_to_purge,
)
from shared.aml.client import AmlError
from shared.core import settings as names
from shared.core.model import WorkspaceRef, iso, utcnow
from shared.core.transport import parse_retry_after
from shared.evidence import audit
from shared.evidence.package import task_folder
from shared.tasks.context import TaskContext, WaitError
from shared.tasks.erasure import verify_gone


def workspace_delete_params(settings: names.Settings) -> tuple[dict[str, str], str | None]:
    """D1's query (api-version, forceToPurge) from the settings, and why no purge is asked for (None if it is)."""
    version = settings.arm_workspace_delete_api_version
    params = {"api-version": version}
    if not settings.workspace_purge:
        return params, f"soft delete chosen (setting {names.WORKSPACE_PURGE}=false)"
    if not supports_force_to_purge(version):
        return params, (
            f"api-version {version} has no forceToPurge (first in {FORCE_TO_PURGE_SINCE}): "
            f"set {names.ARM_WORKSPACE_DELETE_API_VERSION}"
        )
    return {**params, "forceToPurge": "true"}, None


def workspace_outcome(entry: dict[str, Any], verified_at: dt.datetime) -> str:
    """After the workspace answered 404: `purged` when the DELETE asked for it, else soft-deleted with the latest
    moment its data may still be recovered (the soft delete took effect at or before the 404 was read, and the
    retention is at most SOFT_DELETE_RETENTION_DAYS)."""
    if entry.get("forceToPurge"):
        entry["recoverableUntil"] = None
        return "purged"
    until = iso(verified_at.replace(microsecond=0) + dt.timedelta(days=SOFT_DELETE_RETENTION_DAYS))
    entry["recoverableUntil"] = until
    return f"soft-deleted, recoverable until {until}"


def run_workspace_delete(ctx: TaskContext) -> None:
    """Delete a whole workspace (D1): ARM answers 200, 202 or 204; a 202 is polled through Azure-AsyncOperation
    (or Location) by delayed messages honouring Retry-After; then the workspace must answer 404.

    The DELETE purges (forceToPurge=true at DSR_ARM_WORKSPACE_DELETE_API_VERSION) unless DSR_WORKSPACE_PURGE is
    false; the record says `purged` or `soft-deleted, recoverable until <date>`. At most one DELETE is sent per
    task: the checkpoint says `sending` before it goes, and a re-delivered message that finds `sending` reads the
    workspace instead of sending it again."""
    if not ctx.rt.settings.allow_workspace_deletion:
        raise PermissionError("workspace deletion is disabled by DSR_ALLOW_WORKSPACE_DELETION")
    ws = ctx.task.workspace
    assert ws is not None
    checkpoint = ctx.task.checkpoint
    params, no_purge = workspace_delete_params(ctx.rt.settings)
    entry: dict[str, Any] = checkpoint.setdefault("entry", _new_entry(ws, params, no_purge))
    phase = checkpoint.setdefault("phase", "delete")
    if ctx.request.dry_run:
        ctx.rt.aml.get_json(ctx.url(ENDPOINTS["E2"]), stats=ctx.stats)  # it exists and we may read it
        entry["outcome"] = "would delete"
        phase = "record"
    if phase == "sending":
        phase = _after_unknown_answer(ctx, entry)
    if phase == "await-gone":
        phase = _await_gone(ctx)
    if phase == "delete":
        phase = _send_delete(ctx, entry, params)
    if phase == "poll":
        phase = _poll_operation(ctx, entry)
    if phase == "verify":
        entry["verification"] = verify_gone(ctx, ctx.url(ENDPOINTS["E2"]))
        gone = entry["verification"]["status"] == 404
        entry["outcome"] = workspace_outcome(entry, utcnow()) if gone else "still visible"
        phase = checkpoint["phase"] = "record"
    if phase == "record":
        ctx.writer.stage(ctx.task, "erasure", f"{task_folder(ctx.task)}/erasure.jsonl", [entry])
        outcome = str(entry["outcome"])
        ctx.count(outcome.split(",")[0] if gone_outcome(outcome) else "not-deleted")


def _new_entry(ws: WorkspaceRef, params: dict[str, str], no_purge: str | None) -> dict[str, Any]:
    """The workspace's erasure record before anything was sent."""
    return {
        "family": "workspace",
        "endpoint": "D1",
        "workspace": ws.arm_id,
        "id": ws.arm_id,
        "name": ws.name,
        "matchedBy": "named and approved",
        "apiVersion": params["api-version"],
        "forceToPurge": "forceToPurge" in params,
        "noPurgeReason": no_purge,
        "delete": None,
        "operation": None,
        "verification": None,
    }


def _after_unknown_answer(ctx: TaskContext, entry: dict[str, Any]) -> str:
    """Phase `sending`: a previous delivery may have sent the DELETE and lost its answer, so read the workspace
    before sending another. Returns the next phase."""
    checkpoint = ctx.task.checkpoint
    try:
        body = ctx.rt.aml.get_json(ctx.url(ENDPOINTS["E2"]), stats=ctx.stats)
        state = str((body.get("properties") or {}).get("provisioningState", ""))
    except AmlError as exc:
        if exc.status != 404:
            raise
        state = "gone"
    if state in ("gone", "Deleting"):
        entry["delete"] = {"status": None, "at": iso(utcnow()), "note": f"sent before; workspace {state}"}
        phase = checkpoint["phase"] = "await-gone" if state == "Deleting" else "verify"
        ctx.save()
        return phase
    checkpoint["phase"] = "delete"  # it never reached the service
    return "delete"


def _await_gone(ctx: TaskContext) -> str:
    """Phase `await-gone`: wait (delayed messages) until the workspace a lost DELETE was deleting answers 404."""
    try:
        ctx.rt.aml.get_json(ctx.url(ENDPOINTS["E2"]), stats=ctx.stats)
        ctx.count("polls")
        ctx.save()
        raise WaitError(10)
    except AmlError as exc:
        if exc.status != 404:
            raise
    ctx.task.checkpoint["phase"] = "verify"
    return "verify"


def _send_delete(ctx: TaskContext, entry: dict[str, Any], params: dict[str, str]) -> str:
    """Phase `delete`: send the one DELETE (the checkpoint says `sending` first); a 202 checkpoints the operation
    to poll and waits (WaitError), any other answer goes on to `verify`."""
    ws = ctx.task.workspace
    assert ws is not None
    checkpoint = ctx.task.checkpoint
    d1 = ENDPOINTS["D1"]
    checkpoint["phase"] = "sending"
    ctx.save()
    response = ctx.rt.aml.request(
        "DELETE", ctx.url(d1, params), stats=ctx.stats, ok=frozenset({200, 202, 204})
    )
    entry["delete"] = {"status": response.status_code, "at": iso(utcnow())}
    audit.record(
        ctx.rt,
        ctx.task.request_id,
        "tasks.workspace-delete",
        audit.DELETE_SENT,
        None,
        {
            "endpoint": "D1",
            "workspace": ws.arm_id,
            "status": response.status_code,
            "apiVersion": params["api-version"],
            "forceToPurge": "forceToPurge" in params,
        },
    )
    if response.status_code == 202:
        async_url = response.headers.get("Azure-AsyncOperation")
        location = response.headers.get("Location")
        monitor = async_url or location
        if not monitor:
            raise AmlError(202, "NoOperationUrl", "202 without Azure-AsyncOperation or Location", ctx.url(d1))
        ctx.rt.aml.allow_list.check(monitor)
        checkpoint["monitor"] = {"url": monitor, "kind": "async" if async_url else "location"}
        checkpoint["phase"] = "poll"
        ctx.save()
        raise WaitError(parse_retry_after(response.headers.get("Retry-After"), 10))
    checkpoint["phase"] = "verify"
    ctx.save()
    return "verify"


def _poll_operation(ctx: TaskContext, entry: dict[str, Any]) -> str:
    """Phase `poll`: one poll of D1's operation (Azure-AsyncOperation or Location); waits again while it runs.
    Returns `verify` when it succeeded, `record` when it failed or was cancelled."""
    checkpoint = ctx.task.checkpoint
    monitor = checkpoint["monitor"]
    ok = frozenset({200, 202, 204}) if monitor["kind"] == "location" else frozenset({200})
    response = ctx.rt.aml.request("GET", monitor["url"], stats=ctx.stats, ok=ok)
    ctx.count("polls")
    wait = parse_retry_after(response.headers.get("Retry-After"), 10)
    if monitor["kind"] == "async":
        body = response.json()
        state = str(body.get("status", ""))
        if state not in ("Succeeded", "Failed", "Canceled"):
            ctx.save()
            raise WaitError(wait)
        entry["operation"] = {"status": state, "at": iso(utcnow()), "polls": ctx.task.stats.get("polls")}
        if state != "Succeeded":
            error = body.get("error") or {}
            entry["operation"]["error"] = {"code": error.get("code"), "message": error.get("message")}
            entry["outcome"] = f"operation {state.lower()}"
            phase = checkpoint["phase"] = "record"
        else:
            phase = checkpoint["phase"] = "verify"
    else:
        if response.status_code == 202:
            ctx.save()
            raise WaitError(wait)
        entry["operation"] = {
            "status": "Succeeded",
            "at": iso(utcnow()),
            "polls": ctx.task.stats.get("polls"),
        }
        phase = checkpoint["phase"] = "verify"
    ctx.save()
    return phase


def gone_outcome(outcome: str) -> bool:
    """A workspace erasure outcome that means the workspace answered 404 (purged or soft-deleted)."""
    return outcome == "purged" or outcome.startswith("soft-deleted")
