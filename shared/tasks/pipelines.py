"""Stage 2 of an export, one `pipelines` task per workspace: fetch the pipeline objects (E23-E27) by the ids
the runs tasks found in runs or the requester listed; a graph adds its modules and data sources to the work
list. An object is exported when it is the subject's, or names no creator and the subject's own run points to
it; someone else's object is only counted, never named.
"""

from __future__ import annotations

from typing import Any

from shared.aml.catalog import ENDPOINTS, PIPELINE_KINDS
from shared.aml.client import AmlError
from shared.evidence.package import task_folder
from shared.tasks.context import TaskContext

OTHERS_GRAPH = "a graph of another person"


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
