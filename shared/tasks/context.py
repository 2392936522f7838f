"""What every task kind stands on: the task's context (its URLs, counters, checkpoint and lease), the
exceptions that end an invocation early, task ids and spawning, and the paging of one endpoint family's list.

Every task checkpoints as it pages (cursor, staged blocks, counts) and resumes from there when its message is
delivered again; it yields before its time budget ends and when throttled, re-enqueueing itself with a
visibility delay, so no worker sleeps on a long wait (shared/tasks/dispatch.py runs one invocation).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.aml.catalog import ENDPOINTS, FAMILIES, Endpoint
from shared.aml.client import AmlError, CallStats, with_query
from shared.aml.scrub import scrub
from shared.core import settings as names
from shared.core.matching import Matcher
from shared.core.model import DsrRequest, Task, WorkspaceRef
from shared.core.outbound import validate_region
from shared.evidence.package import OutputWriter
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError

CHECKPOINT_SECONDS = 5.0  # between pages; see TaskContext.save_soon


class YieldNowError(Exception):
    """The invocation's time budget is spent: save and continue in a fresh message."""


class LeaseLostError(Exception):
    """Another invocation took the task over (our lease expired): stop without writing."""


class WaitError(Exception):
    """Come back later (a long-running operation, a verification retry): re-enqueue with a delay."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"wait {delay:.0f}s")
        self.delay = delay


def short_hash(text: str) -> str:
    return hashlib.sha256(text.lower().encode()).hexdigest()[:12]


def workspace_task_id(ws: WorkspaceRef) -> str:
    return "ws-" + short_hash(ws.arm_id)


@dataclass
class TaskContext:
    """One invocation of one task: the request, the task row (its checkpoint), the time it must yield by, who
    the subject is (matcher) and where its kept records go (writer)."""

    rt: Runtime
    request: DsrRequest
    task: Task
    deadline: float
    matcher: Matcher
    writer: OutputWriter
    stats: CallStats = field(default_factory=CallStats)
    saved_at: float = field(default_factory=time.monotonic)
    began: float = field(default_factory=time.monotonic)  # this invocation's start, for telemetry

    # -- URLs -----------------------------------------------------------------------------------------------
    def base(self, service: str) -> str:
        ws = self.task.workspace
        if service == "arm":
            return self.rt.settings.arm_base_url
        assert ws is not None, "a data-plane call needs a workspace"
        if ws.hosts.get(service):
            return ws.hosts[service].rstrip("/")
        return self.rt.settings.service_base(service).replace("{location}", validate_region(ws.location))

    def url(self, endpoint: Endpoint, extra: dict[str, str] | None = None, **values: str) -> str:
        ws = self.task.workspace
        fill = {**(ws.placeholders() if ws else {}), **values}
        version = self.rt.settings.arm_v2_api_version if endpoint.v2 else endpoint.api_version
        params = {"api-version": version} if version else {}
        params.update(endpoint.query)
        params.update(extra or {})
        return with_query(self.base(endpoint.service) + endpoint.render(**fill), params)

    # -- progress -------------------------------------------------------------------------------------------
    def count(self, key: str, n: int = 1) -> None:
        self.task.stats[key] = self.task.stats.get(key, 0) + n

    def save(self) -> None:
        """Persist the checkpoint (staging the buffered records it counts first); lose the task if someone else
        holds it now."""
        for key, value in self.stats.as_dict().items():
            self.task.stats[key] = self.task.stats.get(key, 0) + value
        self.stats = CallStats()
        self.writer.flush(self.task)
        try:
            self.rt.store.update_task(self.task)
        except ConcurrencyError as exc:
            raise LeaseLostError(self.task.task_id) from exc
        self.saved_at = time.monotonic()

    def save_soon(self) -> None:
        """Save between pages at most every CHECKPOINT_SECONDS instead of after every page: resuming from an
        older checkpoint only redoes a little more work (records it had not counted are staged again under
        their own block ids, see package.OutputWriter), while a task writes its row and its blocks a few times
        instead of once per page."""
        if time.monotonic() - self.saved_at >= CHECKPOINT_SECONDS:
            self.save()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise YieldNowError

    def spawn(self, tasks: list[Task]) -> None:
        spawn(self.rt, tasks)

    def keep(self, endpoint: Endpoint, record: dict[str, Any], reason: str) -> dict[str, Any]:
        clean, redacted = scrub(record)
        ws = self.task.workspace
        kept = {
            "endpoint": endpoint.id,
            "workspace": ws.arm_id if ws else None,
            "matchedBy": reason,
            "record": clean,
        }
        if redacted:  # where credentials were taken out, so a reader knows the record is not whole
            self.count("redacted", len(redacted))
            kept["redacted"] = redacted
        return kept

    def detail(self, family_name: str, item: dict[str, Any], **values: str) -> dict[str, Any]:
        """The kept record's own read (E4, E7, E12, ...), or the list item when it has gone meanwhile."""
        family = FAMILIES[family_name]
        if family.detail is None:
            return item
        key = item.get(family.id_field)
        if not isinstance(key, str) or not key:
            return item
        endpoint = ENDPOINTS[family.detail]
        try:
            return self.rt.aml.get_json(
                self.url(endpoint, self.extra_params(family_name), **{family.detail_param: key, **values}),
                stats=self.stats,
            )
        except AmlError as exc:
            if exc.status == 404:
                self.count("vanished")
                return item
            raise

    @staticmethod
    def extra_params(family_name: str) -> dict[str, str]:
        return {"includeSecret": "false"} if family_name == "datastores" else {}


def spawn(rt: Runtime, tasks: list[Task]) -> None:
    """Create the task rows that are missing and enqueue every still-queued one (duplicates are harmless)."""
    if not tasks:
        return
    rt.store.create_tasks(tasks)
    for task in tasks:
        rt.storage.send(names.WORK_QUEUE, {"requestId": task.request_id, "taskId": task.task_id})


# -- paging ---------------------------------------------------------------------------------------------------
def page_family(
    ctx: TaskContext,
    family_name: str,
    output: str,
    path: str,
    *,
    cursor_key: str = "next",
    list_values: dict[str, str] | None = None,
    keep: Callable[[dict[str, Any]], str | None] | None = None,
    detail_values: dict[str, str] | None = None,
    on_page: Callable[[list[dict[str, Any]]], None] | None = None,
    on_kept: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Page one list to its end from the checkpointed cursor, staging the kept records page by page."""
    family = FAMILIES[family_name]
    endpoint = ENDPOINTS[family.list]
    checkpoint = ctx.task.checkpoint
    if checkpoint.get(cursor_key + ":done"):
        return
    cursor = checkpoint.get(cursor_key) or ctx.url(
        endpoint, ctx.extra_params(family_name), **(list_values or {})
    )
    decide = keep or ctx.matcher.reason
    while cursor:
        page = ctx.rt.aml.page(cursor, continuation_param=endpoint.continuation_param, stats=ctx.stats)
        kept: list[dict[str, Any]] = []
        for item in page.items:
            reason = decide(item)
            if reason is None:
                continue
            record = (
                summary(family_name, item)
                if ctx.request.dry_run
                else ctx.detail(family_name, item, **(detail_values or {}))
            )
            kept.append(ctx.keep(ENDPOINTS[family.detail] if family.detail else endpoint, record, reason))
            if on_kept:
                on_kept(item if ctx.request.dry_run else record)
        if on_page:
            on_page(page.items)
        ctx.writer.stage(ctx.task, output, path, kept)
        ctx.count("pages")
        ctx.count("seen", len(page.items))
        ctx.count("kept", len(kept))
        cursor = page.next_url
        checkpoint[cursor_key] = cursor
        if cursor is None:
            checkpoint[cursor_key + ":done"] = True
        ctx.save_soon()
        ctx.check_time()


def summary(family_name: str, item: dict[str, Any]) -> dict[str, Any]:
    """What a dry run lists for a record: its identifiers, not its content."""
    family = FAMILIES[family_name]
    keys = (family.id_field, "id", "name", "runId", "artifactId", "metricId", "experimentId")
    return {key: item[key] for key in keys if key in item and isinstance(item[key], str | int)}


def list_all(ctx: TaskContext, endpoint: Endpoint, url: str) -> list[dict[str, Any]]:
    """Every item of a list, paged to its end in one go (no checkpoint: for the short lists a rule reads)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = url
    while cursor:
        page = ctx.rt.aml.page(cursor, continuation_param=endpoint.continuation_param, stats=ctx.stats)
        items.extend(page.items)
        cursor = page.next_url
    return items
