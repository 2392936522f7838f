"""One task: page one endpoint family in one workspace, keep the subject's records, write them to Blob.

Task kinds:
  scope       list the workspaces of a subscription (S1) or resource group (E1); spawn a `workspace` task each
  workspace   read the workspace (E2) and its discovery document; spawn one task per workspace family
  <family>    computes, experiments, notifications, datastores, models, assets, images, services: page the
              family's list, keep the subject's records, read each kept record's detail; `experiments` also
              spawns one `runs` task per experiment
  runs        one experiment: its runs (E6, E7), their metrics (E8, E9) and artifacts (E10); notes the pipeline
              object ids its runs point to
  pipelines   one workspace: fetch the pipeline objects (E23-E27) found in runs or listed by the requester

Every task checkpoints after each page (cursor, staged blocks, counts) and resumes from there when its
message is delivered again; it yields before its time budget ends and when throttled, re-enqueueing itself
with a visibility delay, so no worker sleeps on a long wait.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from shared.aml.catalog import (
    DISCOVERY_KEYS,
    ENDPOINTS,
    FAMILIES,
    FORCE_TO_PURGE_SINCE,
    MODELS,
    PIPELINE_KINDS,
    SOFT_DELETE_RETENTION_DAYS,
    WORKSPACE_FAMILIES,
    Endpoint,
    supports_force_to_purge,
)
from shared.aml.client import AmlError, CallStats, ThrottledError, error_fields, safe_url, with_query
from shared.aml.scrub import scrub
from shared.core import settings as names
from shared.core import telemetry
from shared.core.matching import Matcher
from shared.core.model import TERMINAL_REQUEST, DsrRequest, Task, WorkspaceRef, iso, utcnow
from shared.core.outbound import DisallowedUrlError, validate_region
from shared.core.transport import parse_retry_after
from shared.evidence import audit, package_zip
from shared.evidence.package import OutputWriter, task_folder
from shared.runtime import Runtime
from shared.storage.clients import safe_segment
from shared.storage.store import ConcurrencyError

log = logging.getLogger(__name__)

MAX_TRANSIENT_ATTEMPTS = 5
CHECKPOINT_SECONDS = 5.0  # between pages; see TaskContext.save_soon
LEASE_GRACE_SECONDS = 60


class YieldNowError(Exception):
    """The invocation's time budget is spent: save and continue in a fresh message."""


class LeaseLostError(Exception):
    """Another invocation took the task over (our lease expired): stop without writing."""


def short_hash(text: str) -> str:
    return hashlib.sha256(text.lower().encode()).hexdigest()[:12]


def workspace_task_id(ws: WorkspaceRef) -> str:
    return "ws-" + short_hash(ws.arm_id)


@dataclass
class TaskContext:
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
        params = {"api-version": endpoint.api_version} if endpoint.api_version else {}
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


# -- handlers -------------------------------------------------------------------------------------------------
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


def run_scope(ctx: TaskContext) -> None:
    params = ctx.task.params
    endpoint = ENDPOINTS["E1" if params.get("resourceGroup") else "S1"]
    values = {"subscriptionId": params["subscriptionId"]}
    if params.get("resourceGroup"):
        values["resourceGroupName"] = params["resourceGroup"]
    if ctx.task.checkpoint.get("next:done"):
        return  # the last page was listed before a yield or crash: never start the walk over
    cursor = ctx.task.checkpoint.get("next") or ctx.url(endpoint, **values)
    while cursor:
        page = ctx.rt.aml.page(cursor, stats=ctx.stats)
        children = []
        for item in page.items:
            ws = workspace_from_arm(item)
            if ws is not None:
                children.append(
                    Task(
                        ctx.request.id,
                        workspace_task_id(ws),
                        "workspace",
                        workspace=ws,
                        params={"via": endpoint.id},
                    )
                )
        ctx.spawn(children)
        ctx.count("pages")
        ctx.count("seen", len(page.items))
        cursor = page.next_url
        ctx.task.checkpoint["next"] = cursor
        ctx.task.checkpoint["next:done"] = cursor is None
        ctx.save()
        ctx.check_time()


def workspace_from_arm(item: dict[str, Any]) -> WorkspaceRef | None:
    parts = str(item.get("id", "")).split("/")
    lowered = [p.lower() for p in parts]
    try:
        sub = parts[lowered.index("subscriptions") + 1]
        rg = parts[lowered.index("resourcegroups") + 1]
        name = parts[lowered.index("workspaces") + 1]
    except (ValueError, IndexError):
        return None
    return WorkspaceRef(sub, rg, name, str(item.get("location", "")).replace(" ", "").lower())


def run_workspace(ctx: TaskContext) -> None:
    ws = ctx.task.workspace
    assert ws is not None
    e2 = ENDPOINTS["E2"]
    body = ctx.rt.aml.get_json(ctx.url(e2), stats=ctx.stats)
    location = validate_region(str(body.get("location", "")).replace(" ", "").lower())
    hosts: dict[str, str] = {}
    discovery_url = (body.get("properties") or {}).get("discoveryUrl")
    if ctx.rt.settings.use_discovery and discovery_url:
        try:
            document = ctx.rt.aml.get_json(discovery_url, stats=ctx.stats)
            for service, key in DISCOVERY_KEYS.items():
                base = document.get(key)
                if isinstance(base, str) and ctx.rt.aml.allow_list.allows(base):
                    hosts[service] = base.rstrip("/")
                elif base:
                    ctx.task.found.setdefault("discoveryRefused", []).append(key)
        except (AmlError, DisallowedUrlError) as exc:
            ctx.task.found["discoveryError"] = str(exc)
    resolved = WorkspaceRef(ws.subscription_id, ws.resource_group, ws.name, location, hosts)
    ctx.task.workspace = resolved
    reason = ctx.matcher.reason(body)
    if reason:
        ctx.writer.stage(
            ctx.task, "workspace", f"{task_folder(ctx.task)}/workspace.jsonl", [ctx.keep(e2, body, reason)]
        )
    ctx.count("seen")
    ctx.count("kept", 1 if reason else 0)
    if ctx.request.type == "erasure" and ctx.request.subject is not None and not ctx.request.export_first:
        children = [Task(ctx.request.id, f"{workspace_task_id(resolved)}-erase", "erase", workspace=resolved)]
    else:
        children = [
            Task(ctx.request.id, f"{workspace_task_id(resolved)}-{family}", family, workspace=resolved)
            for family in WORKSPACE_FAMILIES
        ]
    ctx.spawn(children)


def run_family(ctx: TaskContext) -> None:
    family = ctx.task.kind
    path = f"{task_folder(ctx.task)}/{family}.jsonl"
    on_page = None
    if family == "experiments":

        def on_page(items: list[dict[str, Any]]) -> None:
            ws = ctx.task.workspace
            assert ws is not None
            children = []
            for item in items:
                name = item.get("name")
                if isinstance(name, str) and name:
                    children.append(
                        Task(
                            ctx.request.id,
                            f"{workspace_task_id(ws)}-runs-{short_hash(name)}",
                            "runs",
                            workspace=ws,
                            params={
                                "experimentName": name,
                                "experimentId": str(item.get("experimentId", "")),
                                "experiment": item,
                            },
                        )
                    )
            ctx.spawn(children)

    page_family(ctx, family, family, path, on_page=on_page, keep=rule_for(ctx, family))


# -- families whose contract names no creator: tied to the subject by rule ------------------------------------
# (devtools/amlsim/contract.py cites the contract; docs/azure-fidelity.md explains each rule)
def rule_for(ctx: TaskContext, family: str) -> Callable[[dict[str, Any]], str | None] | None:
    """The keep-decision of a family whose records name no creator, or None to use the identity matcher.

    experiments: kept by the runs task when the subject has a kept run in it (here: never);
    notifications: kept when the task's `runId` is one of the subject's runs in the workspace;
    assets: kept when the asset's `runid` is one of the subject's runs;
    images: kept when the image packages one of the subject's models (`modelIds`);
    datastores: no rule (the contract names no creator and nothing ties one to a person): never kept.
    A whole-workspace export (no subject) keeps every record, as before."""
    if ctx.matcher.subject is None:
        return None
    if family == "experiments":
        return lambda _item: None
    if family == "datastores":
        return lambda _item: None
    if family in ("notifications", "assets"):
        field_name = "runId" if family == "notifications" else "runid"
        what = "notification task" if family == "notifications" else "asset"

        def by_run(item: dict[str, Any]) -> str | None:
            if ctx.matcher.names_other(item):
                return None
            run_id = item.get(field_name)
            if isinstance(run_id, str) and run_id in subject_run_ids(ctx):
                return f"{what} of the subject's run {run_id} ({field_name}; the contract names no creator)"
            return None

        return by_run
    if family == "images":

        def by_model(item: dict[str, Any]) -> str | None:
            if ctx.matcher.names_other(item):
                return None
            models = subject_model_ids(ctx)
            mine = [m for m in item.get("modelIds") or [] if isinstance(m, str) and m in models]
            if mine:
                return f"image packaging the subject's model {', '.join(mine)} (modelIds; no creator field)"
            return None

        return by_model
    return None


def _walk(ctx: TaskContext, endpoint: Endpoint, url: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = url
    while cursor:
        page = ctx.rt.aml.page(cursor, continuation_param=endpoint.continuation_param, stats=ctx.stats)
        items.extend(page.items)
        cursor = page.next_url
    return items


def subject_run_ids(ctx: TaskContext) -> frozenset[str]:
    """The run ids of the subject's runs in this workspace (E5, then E6 per experiment; lists only), cached in
    the task's checkpoint once complete."""
    cached = ctx.task.checkpoint.get("subjectRuns")
    if cached is None:
        found: list[str] = []
        e5, e6 = ENDPOINTS["E5"], ENDPOINTS["E6"]
        for experiment in _walk(ctx, e5, ctx.url(e5)):
            name = experiment.get("name")
            if not isinstance(name, str) or not name:
                continue
            for run in _walk(ctx, e6, ctx.url(e6, experimentName=name)):
                run_id = run.get("runId")
                if isinstance(run_id, str) and run_id and ctx.matcher.reason(run):
                    found.append(run_id)
        cached = ctx.task.checkpoint["subjectRuns"] = sorted(set(found))
    return frozenset(cached)


def subject_model_ids(ctx: TaskContext) -> frozenset[str]:
    """The ids of the subject's models in this workspace (E15, matched by identity), cached in the checkpoint."""
    cached = ctx.task.checkpoint.get("subjectModels")
    if cached is None:
        e15 = ENDPOINTS["E15"]
        cached = ctx.task.checkpoint["subjectModels"] = sorted(
            str(m["id"]) for m in _walk(ctx, e15, ctx.url(e15)) if m.get("id") and ctx.matcher.reason(m)
        )
    return frozenset(cached)


PIPELINE_PROPERTY_KINDS = {"azureml.graphId": "graph", "azureml.pipelineTemplateId": "template"}
OTHERS_RUN = "a pipeline run of another person"
OTHERS_GRAPH = "a graph of another person"


def run_runs(ctx: TaskContext) -> None:
    experiment = ctx.task.params["experimentName"]
    folder = f"{task_folder(ctx.task)}/experiments/{safe_segment(experiment)}"
    checkpoint = ctx.task.checkpoint
    run_ids: list[str] = checkpoint.setdefault("runIds", [])
    # Pipeline objects have no list call: their ids are found in runs. The subject's own runs point to objects
    # that are exported; every other pipeline run is read too, because the subject's module or data source can
    # sit in someone else's pipeline (such an object is exported only when it names the subject).
    own: dict[str, dict[str, str]] = ctx.task.found.setdefault("pipelines", {})
    seen: dict[str, dict[str, str]] = ctx.task.found.setdefault("pipelinesSeen", {})

    def note_refs(run: dict[str, Any], into: dict[str, dict[str, str]], own_run: bool = True) -> None:
        properties = run.get("properties") or {}
        if properties.get("azureml.runsource") != "azureml.PipelineRun":
            return
        # Someone else's run is never named (its id would disclose that person's work): the reason says only
        # where the id was found.
        run_id = str(run.get("runId", "")) if own_run else None
        where = f"pipeline run {run_id}" if run_id else OTHERS_RUN
        if run.get("experimentId"):
            into.setdefault("experiment", {}).setdefault(str(run["experimentId"]), f"experimentId of {where}")
        for prop, kind in PIPELINE_PROPERTY_KINDS.items():
            if properties.get(prop):
                into.setdefault(kind, {}).setdefault(str(properties[prop]), f"{prop} of {where}")

    containers: dict[str, str] = checkpoint.setdefault("containers", {})

    def on_run(run: dict[str, Any]) -> None:
        run_id = str(run.get("runId", ""))
        if run_id and run_id not in run_ids:
            run_ids.append(run_id)
        container = run.get("dataContainerId")
        if run_id and isinstance(container, str) and container:
            containers[run_id] = container
        note_refs(run, own)

    def on_page(items: list[dict[str, Any]]) -> None:
        for item in items:
            note_refs(item, seen, own_run=False)

    names_ = {"experimentName": experiment}
    page_family(
        ctx,
        "runs",
        "runs",
        f"{folder}/runs.jsonl",
        cursor_key="runs",
        list_values=names_,
        on_page=on_page,
        detail_values=names_,
        on_kept=on_run,
    )
    if not run_ids:
        return
    if ctx.matcher.subject is not None and not checkpoint.get("experimentWritten"):
        # The contract gives an experiment no creator: it is the subject's because the subject's runs are in it.
        item = ctx.task.params.get("experiment") or {
            "experimentId": ctx.task.params.get("experimentId"),
            "name": experiment,
        }
        record = summary("experiments", item) if ctx.request.dry_run else item
        reason = f"the subject's runs are in it ({len(run_ids)} kept, first {run_ids[0]}; no creator field)"
        ctx.writer.stage(
            ctx.task, "experiments", f"{folder}/experiment.jsonl", [ctx.keep(ENDPOINTS["E5"], record, reason)]
        )
        checkpoint["experimentWritten"] = True
        ctx.count("kept")
        # No save of its own: a save stages every buffered file as blocks (runs.jsonl too), which finalize
        # must then read back; the flag and the record are persisted together at the task's next save.
        ctx.save_soon()
    kept_runs = set(run_ids)

    def metric_of_kept_run(metric: dict[str, Any]) -> str | None:
        return f"metric of run {metric.get('runId')}" if metric.get("runId") in kept_runs else None

    page_family(
        ctx,
        "metrics",
        "metrics",
        f"{folder}/metrics.jsonl",
        cursor_key="metrics",
        list_values=names_,
        detail_values=names_,
        keep=metric_of_kept_run,
    )
    start = checkpoint.get("artifactRun", 0)
    for index in range(start, len(run_ids)):
        run_id = run_ids[index]
        container, why = artifact_container(run_id, containers.get(run_id))
        page_family(
            ctx,
            "artifacts",
            "artifacts",
            f"{folder}/artifacts.jsonl",
            cursor_key=f"artifacts:{run_id}",
            list_values={"containerId": container},
            keep=_artifact_of(why),
        )
        checkpoint["artifactRun"] = index + 1
        checkpoint.pop(f"artifacts:{run_id}", None)
        checkpoint.pop(f"artifacts:{run_id}:done", None)
        ctx.save_soon()


def artifact_container(run_id: str, data_container_id: str | None) -> tuple[str, str]:
    """The artifact container of a run (E10) and the reason its artifacts are kept.

    A run's artifacts live in the container named by its `dataContainerId` (public run payloads show
    `"dataContainerId": "dcid.<runId>"`; blob names read `ExperimentRun/dcid.<runId>/...`); listing the bare run
    id finds nothing. azureml-core lists them through the run's data_container_id only (azureml/core/run.py,
    Run.get_file_names). A run without the field falls back to `dcid.<runId>`, and the reason says so."""
    if data_container_id:
        return data_container_id, f"artifact of run {run_id}"
    container = f"dcid.{run_id}"
    return container, (
        f"artifact of run {run_id} (the run names no dataContainerId: listed in {container}, the container "
        "the service assigns by default)"
    )


def _artifact_of(why: str) -> Callable[[dict[str, Any]], str | None]:
    def reason(_artifact: dict[str, Any]) -> str | None:
        return why

    return reason


def run_pipelines(ctx: TaskContext) -> None:
    """Fetch each pipeline object by id; a graph adds its modules and data sources to the work list."""
    checkpoint = ctx.task.checkpoint
    refs = ctx.task.params.get("refs", {})
    others = ctx.task.params.get("seen", {})
    pending: list[list[str]] = checkpoint.setdefault(
        "pending",
        sorted([kind, oid, why, "own"] for kind, ids in refs.items() for oid, why in ids.items())
        + sorted(
            [kind, oid, why, "other"]
            for kind, ids in others.items()
            for oid, why in ids.items()
            if oid not in refs.get(kind, {})
        ),
    )
    done: list[list[Any]] = checkpoint.setdefault("fetched", [])  # [kind, id, why, origin, named]
    seen_keys = {(e[0], e[1]) for e in done} | {(e[0], e[1]) for e in pending}
    path = f"{task_folder(ctx.task)}/pipelines.jsonl"
    while pending:
        kind, object_id, why, origin = pending[0]
        endpoint = ENDPOINTS[PIPELINE_KINDS[kind]]
        placeholder = endpoint.placeholders[-1]
        status = "fetched"
        try:
            record = ctx.rt.aml.get_json(ctx.url(endpoint, None, **{placeholder: object_id}), stats=ctx.stats)
        except AmlError as exc:
            if exc.status != 404:
                raise
            record, status = None, "not found"
        kept = False
        named = False  # named in the manifest only when exported, or when the subject's own run names it
        if record is not None:
            # Kept when the object is the subject's own; an object that names no creator at all is kept
            # because the subject's run points to it. Someone else's object is not exported (it would
            # disclose that person), but the manifest says it was found.
            reason = ctx.matcher.reason(record)
            if reason is None and origin == "own" and not ctx.matcher.names_anyone(record):
                reason = why
            if reason is not None:
                listed = {"id": record.get("id", object_id)} if ctx.request.dry_run else record
                ctx.writer.stage(
                    ctx.task, "pipelines", path, [ctx.keep(endpoint, listed, f"{reason}; {why}")]
                )
                kept = named = True
            else:
                status = "fetched; created by someone else, not exported"
            if kind == "graph":
                # A graph that is not the subject's is not named in the reasons of what it leads to.
                where = f"graph {object_id}" if kept else OTHERS_GRAPH
                for key, child_kind, field_name in (
                    ("moduleNodes", "module", "moduleId"),
                    ("datasetNodes", "datasource", "dataSourceId"),
                ):
                    for node in record.get(key) or []:
                        child = str(node.get(field_name) or "")
                        if child and (child_kind, child) not in seen_keys:
                            seen_keys.add((child_kind, child))
                            pending.append([child_kind, child, f"{field_name} in {where}", origin])
        elif origin == "own" and not why.endswith(OTHERS_GRAPH):
            named = True  # not found: its id is the one the subject's own run names
        done.append([kind, object_id, f"{why}; {status}", origin, named])
        pending.pop(0)
        ctx.count("seen")
        ctx.count("kept", 1 if kept else 0)
        ctx.save_soon()  # at most every CHECKPOINT_SECONDS, as page_family: a resume fetches a few objects again
        ctx.check_time()


# -- erasure --------------------------------------------------------------------------------------------------
class WaitError(Exception):
    """Come back later (a long-running operation, a verification retry): re-enqueue with a delay."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"wait {delay:.0f}s")
        self.delay = delay


ERASE_ORDER = tuple(sorted((f for f in FAMILIES.values() if f.delete), key=lambda f: f.delete_order))


def run_erase(ctx: TaskContext) -> None:
    """One workspace: for services, images, models, assets (dependents first), list and match the subject's
    objects, then delete each one and read it back until it answers 404. A dry run deletes nothing."""
    checkpoint = ctx.task.checkpoint
    path = f"{task_folder(ctx.task)}/erasure.jsonl"
    for family in ERASE_ORDER:
        items: list[dict[str, str]] = checkpoint.setdefault("items", {}).setdefault(family.name, [])

        def collect(
            item: dict[str, Any],
            found: list[dict[str, str]] = items,
            id_field: str = family.id_field,
            family_name: str = family.name,
        ) -> str | None:
            reason = erase_reason(ctx, family_name, item)
            key = item.get(id_field)
            if reason and isinstance(key, str) and key and all(i["id"] != key for i in found):
                found.append({"id": key, "name": str(item.get("name") or ""), "matchedBy": reason})
            return None  # nothing is written while collecting

        page_family(ctx, family.name, "erasure", path, cursor_key=f"list:{family.name}", keep=collect)
        done_key = f"erased:{family.name}"
        for index in range(checkpoint.get(done_key, 0), len(items)):
            entry = erase_one(ctx, family.name, items[index])
            ctx.writer.stage(ctx.task, "erasure", path, [entry])
            ctx.count("deleted" if entry["outcome"] in ("deleted", "already gone") else entry["outcome"])
            checkpoint[done_key] = index + 1
            ctx.save()
            ctx.check_time()


def erase_reason(ctx: TaskContext, family_name: str, item: dict[str, Any]) -> str | None:
    """Why an object is deleted in the subject's erasure, or None. Models and services: their createdBy names
    the subject's object id (shared/core/matching.py). Images and assets name no creator, so they are deleted by a
    stricter rule than the export's: an image only when EVERY model it packages is the subject's (an image that
    also packages someone else's model is left, and blocks nothing of hers it does not hold); an asset when its
    runid is the subject's run."""
    if ctx.matcher.subject is None:
        return ctx.matcher.reason(item)
    if family_name == "images":
        if ctx.matcher.names_other(item):
            return None
        model_ids = [m for m in item.get("modelIds") or [] if isinstance(m, str)]
        if model_ids and set(model_ids) <= subject_model_ids(ctx):
            return f"image packaging only the subject's models {', '.join(model_ids)} (modelIds; no creator field)"
        return None
    if family_name == "assets":
        rule = rule_for(ctx, "assets")
        return rule(item) if rule is not None else ctx.matcher.reason(item)
    return ctx.matcher.reason(item)


# A service DELETE may answer 202: the deletion runs as a model-management operation.
# - azure-rest-api-specs, specification/machinelearningservices/data-plane/Microsoft.MachineLearningServices/
#   preview/2019-09-30/modelManagement.json: `Services_Delete` answers 200, 202 or 204; `Operations_Get`
#   (GET .../workspaces/{workspace}/operations/{id}, no api-version) answers an `AsyncOperationStatus`
#   {id, operationType, state, createdTime, endTime, error (ModelErrorResponse), resourceLocation} whose `state`
#   is NotStarted | Running | Cancelled | Succeeded | Failed | TimedOut. The spec documents the
#   `Operation-Location` header on the service's other 202 answers; it names none on the delete's 202.
# - azureml-core 1.61 (azureml/core/webservice/webservice.py, Webservice.delete and
#   _wait_for_operation_to_complete): a delete's 202 must carry `Operation-Location`; the client takes its last
#   path segment as the operation id, polls `<model management URL of the workspace>/operations/{id}` every 5 s
#   until Succeeded, Failed, Cancelled or TimedOut, and reads `state` and `error` from the body.
# The product does the same without a sleeping worker: each poll is one queue message (WaitError, delayed by
# Retry-After when the service sends one, else 5 s); the operation URL is checkpointed, so a re-delivered
# message resumes polling and never sends a second DELETE. The service stays readable while its operation runs,
# so nothing is verified before the operation has ended: until then the item is `pending`. After
# OPERATION_MAX_POLLS polls still running, the item's outcome is `pending` with the operation URL recorded (the
# request then completes with errors; a retry of the request sends the DELETE again, which the service answers
# with the running operation).
MMS_OPERATION = Endpoint(
    "D5-operation", "a model-management operation", "modelmanagement", MODELS + "/operations/{operationId}"
)
OPERATION_RUNNING = frozenset({"NotStarted", "Running"})
OPERATION_ENDED = frozenset({"Succeeded", "Failed", "Cancelled", "TimedOut"})
OPERATION_MAX_POLLS = 40
OPERATION_POLL_SECONDS = 5.0  # azureml-core's interval, when the answer carries no Retry-After


def erase_one(ctx: TaskContext, family_name: str, item: dict[str, str]) -> dict[str, Any]:
    family = FAMILIES[family_name]
    assert family.delete is not None
    assert family.detail is not None
    delete, detail = ENDPOINTS[family.delete], ENDPOINTS[family.detail]
    ws = ctx.task.workspace
    inflight = ctx.task.checkpoint.get("operation")
    if inflight and (inflight["family"], inflight["id"]) == (family_name, item["id"]):
        return follow_operation(ctx, inflight, ctx.url(detail, None, **{family.detail_param: item["id"]}))
    entry: dict[str, Any] = {
        "family": family_name,
        "endpoint": delete.id,
        "workspace": ws.arm_id if ws else None,
        "id": item["id"],
        "name": item["name"],
        "matchedBy": item["matchedBy"],
        "delete": None,
        "operation": None,
        "verification": None,
    }
    if ctx.request.dry_run:
        entry["outcome"] = "would delete"
        return entry
    url = ctx.url(delete, None, **{family.detail_param: item["id"]})
    sent = {"endpoint": delete.id, "family": family_name, "workspace": entry["workspace"], "id": item["id"]}
    try:
        response = ctx.rt.aml.request("DELETE", url, stats=ctx.stats, ok=frozenset({200, 202, 204}))
        entry["delete"] = {"status": response.status_code, "at": iso(utcnow())}
        audit.record(
            ctx.rt,
            ctx.task.request_id,
            "tasks.erase",
            audit.DELETE_SENT,
            None,
            {**sent, "status": response.status_code},
        )
    except AmlError as exc:
        audit.record(
            ctx.rt,
            ctx.task.request_id,
            "tasks.erase",
            audit.DELETE_SENT,
            None,
            {**sent, "status": exc.status, "error": exc.code},
        )
        if exc.status != 409:
            raise
        entry["delete"] = {"status": 409, "at": iso(utcnow()), "error": exc.code, "message": exc.message}
        entry["outcome"] = (
            "blocked"  # still used by something that is not the subject's: reported, not forced
        )
        return entry
    if response.status_code == 202:
        return start_operation(ctx, family_name, item["id"], entry, response)  # WaitError unless refused
    entry["verification"] = verify_gone(ctx, ctx.url(detail, None, **{family.detail_param: item["id"]}))
    gone = entry["verification"]["status"] == 404
    entry["outcome"] = (
        ("deleted" if response.status_code != 204 else "already gone") if gone else "still visible"
    )
    return entry


def start_operation(
    ctx: TaskContext, family_name: str, object_id: str, entry: dict[str, Any], response: Any
) -> dict[str, Any]:
    """A DELETE answered 202: checkpoint the operation to poll, then come back after Retry-After (WaitError).

    An operation that cannot be followed (no Operation-Location, or one on a host off the allow-list, which is
    never contacted) leaves the item `pending` with the reason; the other items go on."""
    location = str(response.headers.get("Operation-Location") or "").strip()
    operation_id = unquote(location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]) if location else ""
    refused = None
    if not operation_id:
        refused = {"code": "NoOperationLocation", "message": "202 without an Operation-Location header"}
    elif "://" in location and not ctx.rt.aml.allow_list.allows(location):
        refused = {
            "code": "RefusedOperationLocation",
            "message": f"refused to follow an outbound URL: {safe_url(location)} is not on the allow-list",
        }
    if refused is not None:
        entry["operation"] = {"id": None, "url": None, "status": None, "polls": 0, "at": iso(utcnow())}
        entry["operation"]["error"] = refused
        entry["outcome"] = "pending"
        return entry
    # Polled on the workspace's own model-management host, as azureml-core does; request() checks the
    # allow-list again before the token goes out.
    url = ctx.url(MMS_OPERATION, None, operationId=operation_id)
    ctx.rt.aml.allow_list.check(url)
    entry["operation"] = {"id": operation_id, "url": safe_url(url), "status": None, "polls": 0, "at": None}
    ctx.task.checkpoint["operation"] = {"family": family_name, "id": object_id, "url": url, "entry": entry}
    ctx.save()
    raise WaitError(parse_retry_after(response.headers.get("Retry-After"), OPERATION_POLL_SECONDS))


def follow_operation(ctx: TaskContext, inflight: dict[str, Any], detail_url: str) -> dict[str, Any]:
    """One poll of a checkpointed operation: wait again while it runs (up to OPERATION_MAX_POLLS), then verify."""
    entry: dict[str, Any] = inflight["entry"]
    operation: dict[str, Any] = entry["operation"]
    response = ctx.rt.aml.request("GET", inflight["url"], stats=ctx.stats, ok=frozenset({200}))
    body = getattr(response, "parsed", None) or response.json()
    state = str(body.get("state") or "") if isinstance(body, dict) else ""
    operation.update(status=state or None, polls=int(operation.get("polls") or 0) + 1, at=iso(utcnow()))
    ctx.count("polls")
    if state not in OPERATION_ENDED:  # NotStarted, Running, or a state the spec does not name
        if operation["polls"] < OPERATION_MAX_POLLS:
            ctx.save()
            raise WaitError(parse_retry_after(response.headers.get("Retry-After"), OPERATION_POLL_SECONDS))
        # The bound: the object is not verified (it stays readable while its operation runs).
        entry["outcome"] = "pending"
    elif state == "Succeeded":
        entry["verification"] = verify_gone(ctx, detail_url)
        entry["outcome"] = "deleted" if entry["verification"]["status"] == 404 else "still visible"
    else:
        error = body.get("error")
        if error:
            code, message = error_fields(error, 0)
            operation["error"] = {"code": code, "message": message}
        entry["verification"] = verify_gone(ctx, detail_url)
        entry["outcome"] = f"operation {state.lower()}"
    ctx.task.checkpoint.pop("operation", None)
    return entry


def verify_gone(ctx: TaskContext, url: str) -> dict[str, Any]:
    """Read the object back until it answers 404, a few times with a short backoff; never silently passes."""
    attempts = ctx.rt.settings.delete_verify_attempts
    status = 0
    for attempt in range(1, attempts + 1):
        try:
            ctx.rt.aml.request("GET", url, stats=ctx.stats, ok=frozenset({200}))
            status = 200
        except AmlError as exc:
            if exc.status != 404:
                raise
            return {"status": 404, "at": iso(utcnow()), "attempts": attempt}
        if attempt < attempts:
            time.sleep(min(4.0, 0.25 * 2 ** (attempt - 1)))
    return {"status": status, "at": iso(utcnow()), "attempts": attempts}


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
    e2, d1 = ENDPOINTS["E2"], ENDPOINTS["D1"]
    path = f"{task_folder(ctx.task)}/erasure.jsonl"
    params, no_purge = workspace_delete_params(ctx.rt.settings)
    entry: dict[str, Any] = checkpoint.setdefault(
        "entry",
        {
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
        },
    )
    phase = checkpoint.setdefault("phase", "delete")
    if ctx.request.dry_run:
        ctx.rt.aml.get_json(ctx.url(e2), stats=ctx.stats)  # it exists and we may read it
        entry["outcome"] = "would delete"
        phase = "record"
    if phase == "sending":
        # A previous delivery may have sent the DELETE and lost its answer: look before sending another.
        try:
            body = ctx.rt.aml.get_json(ctx.url(e2), stats=ctx.stats)
            state = str((body.get("properties") or {}).get("provisioningState", ""))
        except AmlError as exc:
            if exc.status != 404:
                raise
            state = "gone"
        if state in ("gone", "Deleting"):
            entry["delete"] = {"status": None, "at": iso(utcnow()), "note": f"sent before; workspace {state}"}
            phase = checkpoint["phase"] = "await-gone" if state == "Deleting" else "verify"
            ctx.save()
        else:
            phase = checkpoint["phase"] = "delete"  # it never reached the service
    if phase == "await-gone":
        try:
            ctx.rt.aml.get_json(ctx.url(e2), stats=ctx.stats)
            ctx.count("polls")
            ctx.save()
            raise WaitError(10)
        except AmlError as exc:
            if exc.status != 404:
                raise
        phase = checkpoint["phase"] = "verify"
    if phase == "delete":
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
                raise AmlError(
                    202, "NoOperationUrl", "202 without Azure-AsyncOperation or Location", ctx.url(d1)
                )
            ctx.rt.aml.allow_list.check(monitor)
            checkpoint["monitor"] = {"url": monitor, "kind": "async" if async_url else "location"}
            phase = checkpoint["phase"] = "poll"
            ctx.save()
            raise WaitError(parse_retry_after(response.headers.get("Retry-After"), 10))
        phase = checkpoint["phase"] = "verify"
        ctx.save()
    if phase == "poll":
        monitor = checkpoint["monitor"]
        ok = frozenset({200, 202, 204}) if monitor["kind"] == "location" else frozenset({200})
        response = ctx.rt.aml.request("GET", monitor["url"], stats=ctx.stats, ok=ok)
        ctx.count("polls")
        wait = parse_retry_after(response.headers.get("Retry-After"), 10)
        if monitor["kind"] == "async":
            body = response.json()
            state = str(body.get("status", ""))
            if state in ("Succeeded", "Failed", "Canceled"):
                entry["operation"] = {
                    "status": state,
                    "at": iso(utcnow()),
                    "polls": ctx.task.stats.get("polls"),
                }
                if state != "Succeeded":
                    error = body.get("error") or {}
                    entry["operation"]["error"] = {"code": error.get("code"), "message": error.get("message")}
                    entry["outcome"] = f"operation {state.lower()}"
                    phase = checkpoint["phase"] = "record"
                else:
                    phase = checkpoint["phase"] = "verify"
            else:
                ctx.save()
                raise WaitError(wait)
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
    if phase == "verify":
        entry["verification"] = verify_gone(ctx, ctx.url(e2))
        gone = entry["verification"]["status"] == 404
        entry["outcome"] = workspace_outcome(entry, utcnow()) if gone else "still visible"
        phase = checkpoint["phase"] = "record"
    if phase == "record":
        ctx.writer.stage(ctx.task, "erasure", path, [entry])
        outcome = str(entry["outcome"])
        ctx.count(outcome.split(",")[0] if gone_outcome(outcome) else "not-deleted")


def gone_outcome(outcome: str) -> bool:
    """A workspace erasure outcome that means the workspace answered 404 (purged or soft-deleted)."""
    return outcome == "purged" or outcome.startswith("soft-deleted")


HANDLERS: dict[str, Callable[[TaskContext], None]] = {
    "scope": run_scope,
    "workspace": run_workspace,
    "runs": run_runs,
    "pipelines": run_pipelines,
    "erase": run_erase,
    "workspace-delete": run_workspace_delete,
    **{family: run_family for family in WORKSPACE_FAMILIES},
}


# -- one invocation -------------------------------------------------------------------------------------------
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
