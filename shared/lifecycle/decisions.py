"""What people decide about a request: approve, reject or cancel it (who, when, why), and retry the failed
tasks of one that ended with errors."""

from __future__ import annotations

import logging

from shared.core import settings as names
from shared.core.errors import ConflictError, ForbiddenError, NotFoundError
from shared.core.model import TERMINAL_REQUEST, DsrRequest, iso, utcnow
from shared.core.principal import ENTRA_APP, ENTRA_USER, ROLE_APPROVE, Principal
from shared.evidence import audit
from shared.lifecycle import deadlines
from shared.lifecycle.changes import TrailEntry, change_request, save
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError
from shared.tasks.context import spawn

log = logging.getLogger(__name__)

DECIDED = {"approve": "approved", "reject": "rejected", "cancel": "cancelled"}
STATUS_AFTER = {"approve": "accepted", "reject": "rejected", "cancel": "cancelled"}
AUDIT_ACTION = {"approve": audit.APPROVED, "reject": audit.REJECTED, "cancel": audit.CANCELLED}


def decide(rt: Runtime, request_id: str, action: str, principal: Principal, reason: str | None) -> DsrRequest:
    """approve / reject / cancel, recorded with who and when."""

    def apply(request: DsrRequest) -> TrailEntry:
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
            if principal.is_recorded_as(submitter):
                raise ForbiddenError("the submitter of a workspace deletion cannot approve it")
        previous = request.status
        request.decision = {
            "action": DECIDED[action],
            "by": principal.as_dict(),
            "at": iso(utcnow()),
            "reason": reason,
            "statusBefore": previous,
        }
        request.status = STATUS_AFTER[action]  # type: ignore[assignment]
        request.updated_at = utcnow()
        if action == "reject" or (action == "cancel" and previous == "awaiting_approval"):
            request.completed_at = request.updated_at
        return TrailEntry(principal, AUDIT_ACTION[action], reason, {"from": previous, "to": request.status})

    try:
        request, _ = change_request(rt, request_id, apply)
    except ConcurrencyError:
        raise ConflictError("the request kept changing; try again") from None
    previous = (request.decision or {}).get("statusBefore")
    if action == "approve":
        rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id})
    if action == "cancel" and previous in ("accepted", "running"):
        # Tasks not yet started will find the request cancelled and stop; running ones finish their item.
        # Finalize then records what already happened (the erasure record lists every DELETE sent).
        rt.storage.send(names.FINALIZE_QUEUE, {"requestId": request.id}, delay_seconds=1)
    if request.status in ("rejected", "cancelled"):
        deadlines.announce(rt, request, request.status)
    log.info("request %s %s by %s", request.id, DECIDED[action], principal.source)
    return request


def _submitter_or_approver(principal: Principal, request: DsrRequest, what: str) -> None:
    """A caller with only DSR.Submit acts on its own requests; DSR.Approve acts on any. (Function-key and Easy
    Auth callers carry no app roles: the API admits them only while Entra tokens are not required.)"""
    if principal.source not in (ENTRA_USER, ENTRA_APP) or ROLE_APPROVE in principal.roles:
        return
    if not principal.is_recorded_as((request.submitted_by or {}).get("id")):
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
    save(rt, request, TrailEntry(principal, "retried", details={"to": "running", "tasks": len(failed)}))
    if failed:
        spawn(rt, failed)
    else:
        rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id})
    log.info("request %s: %d failed task(s) re-enqueued", request.id, len(failed))
    return request
