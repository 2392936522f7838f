"""The walk down to the workspaces: a `scope` task lists the workspaces of a subscription (S1) or resource
group (E1) and spawns a `workspace` task each; a `workspace` task reads the workspace (E2) and its discovery
document, exports the workspace record when it is the subject's, and spawns one task per workspace family, v1
and v2 (or one `erase` task, for an erasure that does not export first). Hub and project workspaces (AI Foundry
`kind: Hub | Project`) are workspaces of the same resource type: the walk finds them like any other.
"""

from __future__ import annotations

from typing import Any

from shared.aml.catalog import DISCOVERY_KEYS, ENDPOINTS, V2_TASK_KINDS, WORKSPACE_FAMILIES
from shared.aml.client import AmlError
from shared.core.model import Task, WorkspaceRef
from shared.core.outbound import DisallowedUrlError, validate_region
from shared.evidence.package import task_folder
from shared.tasks.context import TaskContext, workspace_task_id


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
            for family in (*WORKSPACE_FAMILIES, *V2_TASK_KINDS)
        ]
    ctx.spawn(children)
