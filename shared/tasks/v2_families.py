"""The export of a workspace's v2 (ARM) families, one task per kind (catalog.V2_TASK_KINDS):

  jobs                 Jobs_List (archived too), kept by identity or run history (shared/tasks/v2_rules.py); then
                       the child jobs of the kept pipeline jobs, which no list names: run history lists them under
                       the pipeline's experiment (E6, parentRunId) and Jobs_Get reads each
  <kind>_assets        the containers of a registered asset kind (models, data, environments, components, code),
                       then the versions of EVERY container (the subject's version can sit in another person's
                       container)
  <kind>_endpoints     online or batch endpoints, then the deployments of every endpoint
  schedules, connections, v2_datastores   one list each (never a connection's or datastore's secrets)

A list item is the resource as its GET answers it, so the kept item is the exported record (no detail read);
every record goes through the scrubber (TaskContext.keep). Checkpoints: one cursor per list, the index of the
container or pipeline job reached.
"""

from __future__ import annotations

from typing import Any

from shared.aml.catalog import ENDPOINTS, V2_TASK_KINDS
from shared.aml.client import AmlError
from shared.evidence.package import task_folder
from shared.tasks.context import TaskContext, list_all, page_family
from shared.tasks.v2_rules import keep_rule


def run_v2(ctx: TaskContext) -> None:
    families = V2_TASK_KINDS[ctx.task.kind]
    if ctx.task.kind == "jobs":
        export_jobs(ctx)
    elif len(families) == 2:
        export_nested(ctx, *families)
    else:
        page_v2(ctx, families[0])


def page_v2(ctx: TaskContext, family: str, **values: Any) -> None:
    """Page one v2 list (cursor `family`, or `family:<container>` for a nested list) into `<family>.jsonl`."""
    container = values.get("container")
    page_family(
        ctx,
        family,
        family,
        f"{task_folder(ctx.task)}/{family}.jsonl",
        cursor_key=f"{family}:{container}" if container else family,
        list_values=values.get("list_values"),
        keep=keep_rule(ctx, family),
        on_page=values.get("on_page"),
        on_kept=values.get("on_kept"),
    )


def export_nested(ctx: TaskContext, parent: str, child: str) -> None:
    """Page the containers (or endpoints), noting every one's name, then the versions (or deployments) of each."""
    checkpoint = ctx.task.checkpoint
    names: list[str] = checkpoint.setdefault("containers", [])

    def note(items: list[dict[str, Any]]) -> None:
        known = set(names)
        names.extend(n for n in (i.get("name") for i in items) if isinstance(n, str) and n and n not in known)

    page_v2(ctx, parent, on_page=note)
    for index in range(checkpoint.get("containerIndex", 0), len(names)):
        name = names[index]
        page_v2(ctx, child, container=name, list_values={"container": name})
        checkpoint["containerIndex"] = index + 1
        checkpoint.pop(f"{child}:{name}", None)
        checkpoint.pop(f"{child}:{name}:done", None)
        ctx.save_soon()


def export_jobs(ctx: TaskContext) -> None:
    """Page the jobs, noting the kept pipeline jobs, then export their child jobs."""
    checkpoint = ctx.task.checkpoint
    pipelines: list[list[str]] = checkpoint.setdefault("pipelineJobs", [])

    def note(job: dict[str, Any]) -> None:
        props = job.get("properties") or {}
        name, experiment = job.get("name"), props.get("experimentName")
        if props.get("jobType") != "Pipeline" or not isinstance(name, str) or not isinstance(experiment, str):
            return
        if [name, experiment] not in pipelines:
            pipelines.append([name, experiment])

    page_v2(ctx, "jobs", on_kept=note)
    for index in range(checkpoint.get("pipelineIndex", 0), len(pipelines)):
        name, experiment = pipelines[index]
        export_child_jobs(ctx, name, experiment)
        checkpoint["pipelineIndex"] = index + 1
        ctx.save_soon()
        ctx.check_time()


def export_child_jobs(ctx: TaskContext, pipeline: str, experiment: str) -> None:
    """The children of one kept pipeline job: the runs of its experiment whose parentRunId is the pipeline
    (E6), each read as a job (V2; Jobs_Get answers a child with `properties: null`)."""
    e6, v2 = ENDPOINTS["E6"], ENDPOINTS["V2"]
    try:
        runs = list_all(ctx, e6, ctx.url(e6, experimentName=experiment))
    except AmlError as exc:
        if exc.status != 404:
            raise
        runs = []  # the experiment is not in run history: no child is listed anywhere
    ws = ctx.task.workspace
    assert ws is not None
    kept = []
    for run in runs:
        child = run.get("runId")
        if run.get("parentRunId") != pipeline or not isinstance(child, str) or not child:
            continue
        if ctx.request.dry_run:
            record: dict[str, Any] = {"id": f"{ws.arm_id}/jobs/{child}", "name": child}
        else:
            try:
                record = ctx.rt.aml.get_json(ctx.url(v2, name=child), stats=ctx.stats)
            except AmlError as exc:
                if exc.status != 404:
                    raise
                ctx.count("vanished")
                continue
        reason = (
            f"child job of the subject's pipeline job {pipeline} (run history: parentRunId of run {child})"
        )
        kept.append(ctx.keep(v2, record, reason))
    ctx.writer.stage(ctx.task, "child_jobs", f"{task_folder(ctx.task)}/child_jobs.jsonl", kept)
    ctx.count("kept", len(kept))
