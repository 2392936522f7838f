"""Failure surfacing and repair: a message the host gave up on (the poison queues) fails its task or its
request with the reason, instead of leaving it to hang; the sweep timer puts back work that lost its message."""

from __future__ import annotations

import logging

from shared.core import settings as names
from shared.core.errors import NotFoundError
from shared.core.model import TERMINAL_REQUEST, DsrRequest, utcnow
from shared.evidence import audit
from shared.lifecycle import deadlines
from shared.lifecycle.changes import TrailEntry, change_request
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError

log = logging.getLogger(__name__)


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

    def fail(request: DsrRequest) -> TrailEntry | None:
        if request.status in TERMINAL_REQUEST:
            return None
        request.status = "failed"
        request.errors.append(
            {
                "task": None,
                "family": step,
                "reason": f"the {step} step failed {dequeue_count or 'several'} times; its message is in the poison queue",
            }
        )
        request.completed_at = request.updated_at = utcnow()
        return TrailEntry(
            f"workflow.{step}", audit.STATUS_CHANGED, details={"to": "failed", "why": "poison queue"}
        )

    try:
        request, failed = change_request(rt, request_id, fail)
    except NotFoundError:
        return "ignored"
    except ConcurrencyError:
        return "contended"
    if failed is None:
        return "ignored"
    deadlines.announce(rt, request, "failed")
    log.error("request %s failed: its %s message was moved to the poison queue", request_id, step)
    return "failed"


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
