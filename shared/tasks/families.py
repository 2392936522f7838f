"""The export of a workspace's endpoint families: a family task (computes, experiments, notifications,
datastores, models, assets, images, services) pages the family's list, keeps the subject's records (by identity
or by the family's rule, shared/tasks/rules.py) and reads each kept record's detail; `experiments` also spawns
one `runs` task per experiment. A `runs` task exports one experiment: its runs (E6, E7), their metrics (E8, E9)
and artifacts (E10), the experiment record when the subject's runs are in it, and notes the pipeline object ids
its runs point to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.aml.catalog import ENDPOINTS
from shared.core.model import Task
from shared.evidence.package import task_folder
from shared.storage.clients import safe_segment
from shared.tasks.context import TaskContext, page_family, short_hash, summary, workspace_task_id
from shared.tasks.rules import rule_for

PIPELINE_PROPERTY_KINDS = {"azureml.graphId": "graph", "azureml.pipelineTemplateId": "template"}
OTHERS_RUN = "a pipeline run of another person"


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


def run_runs(ctx: TaskContext) -> None:
    experiment = ctx.task.params["experimentName"]
    folder = f"{task_folder(ctx.task)}/experiments/{safe_segment(experiment)}"
    checkpoint = ctx.task.checkpoint
    run_ids: list[str] = checkpoint.setdefault("runIds", [])
    export_runs(ctx, folder, experiment, run_ids)
    if not run_ids:
        return
    if ctx.matcher.subject is not None and not checkpoint.get("experimentWritten"):
        export_experiment(ctx, folder, experiment, run_ids)
    export_metrics(ctx, folder, experiment, set(run_ids))
    export_artifacts(ctx, folder, run_ids)


def export_runs(ctx: TaskContext, folder: str, experiment: str, run_ids: list[str]) -> None:
    """Page the experiment's runs, keeping the subject's (their ids into `run_ids`, their artifact containers
    into the checkpoint) and noting the pipeline object ids every run points to."""
    # Pipeline objects have no list call: their ids are found in runs. The subject's own runs point to objects
    # that are exported; every other pipeline run is read too, because the subject's module or data source can
    # sit in someone else's pipeline (such an object is exported only when it names the subject).
    own: dict[str, dict[str, str]] = ctx.task.found.setdefault("pipelines", {})
    seen: dict[str, dict[str, str]] = ctx.task.found.setdefault("pipelinesSeen", {})
    containers: dict[str, str] = ctx.task.checkpoint.setdefault("containers", {})

    def on_run(run: dict[str, Any]) -> None:
        run_id = str(run.get("runId", ""))
        if run_id and run_id not in run_ids:
            run_ids.append(run_id)
        container = run.get("dataContainerId")
        if run_id and isinstance(container, str) and container:
            containers[run_id] = container
        note_pipeline_refs(run, own)

    def on_page(items: list[dict[str, Any]]) -> None:
        for item in items:
            note_pipeline_refs(item, seen, own_run=False)

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


def note_pipeline_refs(run: dict[str, Any], into: dict[str, dict[str, str]], own_run: bool = True) -> None:
    """Note the pipeline objects a pipeline run points to (experiment, graph, template), with where each id was
    found."""
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


def export_experiment(ctx: TaskContext, folder: str, experiment: str, run_ids: list[str]) -> None:
    """The experiment's record, kept because the subject's runs are in it (the contract gives an experiment no
    creator)."""
    item = ctx.task.params.get("experiment") or {
        "experimentId": ctx.task.params.get("experimentId"),
        "name": experiment,
    }
    record = summary("experiments", item) if ctx.request.dry_run else item
    reason = f"the subject's runs are in it ({len(run_ids)} kept, first {run_ids[0]}; no creator field)"
    ctx.writer.stage(
        ctx.task, "experiments", f"{folder}/experiment.jsonl", [ctx.keep(ENDPOINTS["E5"], record, reason)]
    )
    ctx.task.checkpoint["experimentWritten"] = True
    ctx.count("kept")
    # No save of its own: a save stages every buffered file as blocks (runs.jsonl too), which finalize
    # must then read back; the flag and the record are persisted together at the task's next save.
    ctx.save_soon()


def export_metrics(ctx: TaskContext, folder: str, experiment: str, kept_runs: set[str]) -> None:
    """Page the experiment's metrics, keeping those of the kept runs."""

    def metric_of_kept_run(metric: dict[str, Any]) -> str | None:
        return f"metric of run {metric.get('runId')}" if metric.get("runId") in kept_runs else None

    names_ = {"experimentName": experiment}
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


def export_artifacts(ctx: TaskContext, folder: str, run_ids: list[str]) -> None:
    """List each kept run's artifacts (E10) in its container, run after run from the checkpointed one."""
    checkpoint = ctx.task.checkpoint
    containers: dict[str, str] = checkpoint.setdefault("containers", {})
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
