"""The families whose contract names no creator, tied to the subject by rule: an experiment by the subject's
runs in it, a notification task or an asset by its run, an image by the models it packages. The export keeps
their records by these rules, and the erasure deletes by them, stricter for images (erasure.erase_reason);
devtools/amlsim/contract.py cites the contract, docs/azure-fidelity.md explains each rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.aml.catalog import ENDPOINTS
from shared.tasks.context import TaskContext, list_all


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


def subject_run_ids(ctx: TaskContext) -> frozenset[str]:
    """The run ids of the subject's runs in this workspace (E5, then E6 per experiment; lists only), cached in
    the task's checkpoint once complete."""
    cached = ctx.task.checkpoint.get("subjectRuns")
    if cached is None:
        found: list[str] = []
        e5, e6 = ENDPOINTS["E5"], ENDPOINTS["E6"]
        for experiment in list_all(ctx, e5, ctx.url(e5)):
            name = experiment.get("name")
            if not isinstance(name, str) or not name:
                continue
            for run in list_all(ctx, e6, ctx.url(e6, experimentName=name)):
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
            str(m["id"]) for m in list_all(ctx, e15, ctx.url(e15)) if m.get("id") and ctx.matcher.reason(m)
        )
    return frozenset(cached)
