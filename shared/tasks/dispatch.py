"""One queue message of the work queue, one invocation of one task: `execute` leases the task, runs the
handler of its kind, and requeues it (yielded, waiting, throttled, retrying) or finishes it; the last task of
a request to finish asks for finalize.

Task kinds:
  scope       list the workspaces of a subscription (S1) or resource group (E1); spawn a `workspace` task each
              (shared/tasks/scope.py)
  workspace   read the workspace (E2) and its discovery document; spawn one task per workspace family
  <family>    computes, experiments, notifications, datastores, models, assets, images, services: page the
              family's list, keep the subject's records, read each kept record's detail; `experiments` also
              spawns one `runs` task per experiment (shared/tasks/families.py)
  jobs, <kind>_assets, <kind>_endpoints, schedules, connections, v2_datastores
              the v2 (ARM) families of one workspace: page each list, keep the subject's records by identity or
              rule (shared/tasks/v2_families.py, shared/tasks/v2_rules.py)
  runs        one experiment: its runs (E6, E7), their metrics (E8, E9) and artifacts (E10); notes the pipeline
              object ids its runs point to
  pipelines   one workspace: fetch the pipeline objects (E23-E27) found in runs or listed by the requester
              (shared/tasks/pipelines.py)
  erase       one workspace: delete the subject's services, images, models, assets (shared/tasks/erasure.py)
  workspace-delete  delete a whole workspace (D1) (shared/tasks/workspace_delete.py)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable

from shared.aml.catalog import V2_TASK_KINDS, WORKSPACE_FAMILIES
from shared.aml.client import AmlError, ThrottledError
from shared.core import settings as names
from shared.core import telemetry
from shared.core.matching import Matcher
from shared.core.model import TERMINAL_REQUEST, utcnow
from shared.core.outbound import DisallowedUrlError
from shared.evidence import package_zip
from shared.evidence.package import OutputWriter
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError
from shared.tasks.context import LeaseLostError, TaskContext, WaitError, YieldNowError
from shared.tasks.erasure import run_erase
from shared.tasks.families import run_family, run_runs
from shared.tasks.pipelines import run_pipelines
from shared.tasks.scope import run_scope, run_workspace
from shared.tasks.v2_families import run_v2
from shared.tasks.workspace_delete import run_workspace_delete

log = logging.getLogger(__name__)

MAX_TRANSIENT_ATTEMPTS = 5
LEASE_GRACE_SECONDS = 60

HANDLERS: dict[str, Callable[[TaskContext], None]] = {
    "scope": run_scope,
    "workspace": run_workspace,
    "runs": run_runs,
    "pipelines": run_pipelines,
    "erase": run_erase,
    "workspace-delete": run_workspace_delete,
    **{family: run_family for family in WORKSPACE_FAMILIES},
    **{kind: run_v2 for kind in V2_TASK_KINDS},
}


def execute(rt: Runtime, request_id: str, task_id: str) -> str:
    """Run (or resume) one task for one queue message. Returns what happened, for logs and tests."""
    store = rt.store
    request = store.get_request(request_id)
    task = store.get_task(request_id, task_id)
    if request is None or task is None:
        log.warning("work message for unknown task %s/%s dropped", request_id, task_id)
        return "unknown"
    if request.status == "cancelled" and task.status == "queued":
        task.status = "skipped"
        task.finished_at = utcnow()
        with contextlib.suppress(ConcurrencyError):
            store.update_task(task)
        _finalize_if_last(rt, request_id)
        return "skipped"
    if request.status in TERMINAL_REQUEST:
        return "duplicate"
    if task.status in ("done", "failed"):
        # A re-delivery after the task finished: the first delivery may have stopped before it enqueued
        # finalize, so check again (finalize is idempotent).
        _finalize_if_last(rt, request_id)
        return "duplicate"
    now = utcnow()
    if task.lease_until and task.lease_until > now and task.status == "running":
        delay = (task.lease_until - now).total_seconds() + 1
        rt.storage.send(names.WORK_QUEUE, {"requestId": request_id, "taskId": task_id}, delay_seconds=delay)
        return "leased"
    budget = rt.settings.task_time_budget_seconds
    task.status = "running"
    task.lease_owner = uuid.uuid4().hex
    task.lease_until = now + dt.timedelta(seconds=budget + min(LEASE_GRACE_SECONDS, max(budget, 5)))
    task.started_at = task.started_at or now
    try:
        store.update_task(task)
    except ConcurrencyError:
        rt.storage.send(names.WORK_QUEUE, {"requestId": request_id, "taskId": task_id}, delay_seconds=5)
        return "contended"
    ctx = TaskContext(
        rt,
        request,
        task,
        deadline=time.monotonic() + budget,
        matcher=Matcher(request.subject, rt.settings.match_fields),
        writer=OutputWriter(rt.storage.container, package_time=package_zip.zip_time(request.received_at)),
    )
    handler = HANDLERS.get(task.kind)
    try:
        if handler is None:
            raise ValueError(f"unknown task kind {task.kind!r}")
        handler(ctx)
    except LeaseLostError:
        log.warning("task %s/%s: lease lost, another invocation continues", request_id, task_id)
        return "lease-lost"
    except YieldNowError:
        return _requeue(ctx, 0, "yielded")
    except WaitError as exc:
        return _requeue(ctx, exc.delay, "waiting")
    except PermissionError as exc:
        return _finish(ctx, "failed", f"refused: {exc}")
    except ThrottledError as exc:
        ctx.count("throttledRequeues")
        return _requeue(ctx, exc.retry_after, "throttled")
    except AmlError as exc:
        transient = exc.status == 0 or exc.status >= 500 or exc.code == "InvalidJson"
        ctx.count("attempts")
        if transient and ctx.task.stats.get("attempts", 0) < MAX_TRANSIENT_ATTEMPTS:
            return _requeue(ctx, 15 * 2 ** ctx.task.stats["attempts"], "retrying")
        return _finish(ctx, "failed", f"{exc}")
    except DisallowedUrlError as exc:
        return _finish(ctx, "failed", f"refused to follow an outbound URL: {exc}")
    except ValueError as exc:
        return _finish(ctx, "failed", f"invalid input: {exc}")
    ctx.writer.commit_all(ctx.task)
    return _finish(ctx, "done", None)


def _requeue(ctx: TaskContext, delay: float, outcome: str) -> str:
    ctx.task.lease_until = None
    ctx.task.lease_owner = None
    ctx.task.status = "queued"
    try:
        ctx.save()
    except LeaseLostError:
        return "lease-lost"
    telemetry.task_finished(ctx.task.kind, "yielded", time.monotonic() - ctx.began)
    ctx.rt.storage.send(
        names.WORK_QUEUE, {"requestId": ctx.task.request_id, "taskId": ctx.task.task_id}, delay_seconds=delay
    )
    return outcome


def _finish(ctx: TaskContext, status: str, error: str | None) -> str:
    task = ctx.task
    task.status = status  # type: ignore[assignment]
    task.error = error
    task.finished_at = utcnow()
    task.lease_owner = None
    task.lease_until = None
    try:
        ctx.save()
    except LeaseLostError:
        return "lease-lost"
    telemetry.task_finished(task.kind, status, time.monotonic() - ctx.began)
    if error:
        log.warning("task %s/%s (%s) failed: %s", task.request_id, task.task_id, task.kind, error)
    _finalize_if_last(ctx.rt, task.request_id)
    return status


def _finalize_if_last(rt: Runtime, request_id: str) -> None:
    if not rt.store.has_open_tasks(request_id):
        rt.storage.send(names.FINALIZE_QUEUE, {"requestId": request_id})
