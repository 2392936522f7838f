"""Part 6, the cost model on paper: API calls per request as a function of what the workspaces hold (read off
the task kinds in shared/tasks/), checked against the calls the benchmark's export really made, then applied to a tenant of
10,000 workspaces in 50 subscriptions.

Calls of one export, with p the page size and k_f the subject's records in family f (every count per
workspace, summed over the workspaces in scope):

    scope       ceil(W_sub / p)                        S1 (or E1) per subscription (resource group)
    workspace   2                                      E2 and its discovery document
    families    sum over computes, experiments, notification tasks, datastores, models, assets, images and
                services of ceil(N_f / p)              the 8 lists (E3, E5, E11, E13, E15, E17, E19, E21)
              + k_computes + k_tasks + k_datastores + k_models + k_assets + k_images + k_services
                                                       one detail read per kept record (E4, E12, E14, E16-E22)
    runs        sum over EVERY experiment x of ceil(R_x / p) + k_runs(x)          E6, E7
              + for experiments with a kept run: ceil(M_x / p) + k_metrics(x)       E8, E9
              + sum over kept runs r of ceil(A_r / p)                               E10
    pipelines   every pipeline object named by a pipeline run (anyone's), plus the modules and data sources
                of those graphs                        E23-E27, one read each
    v2          sum over the 11 v2 lists (jobs, 5 asset kinds' containers, online and batch endpoints, schedules,
                connections, v2 datastores) of ceil(N / p)                    V1, V3, ..., V35 (ARM)
              + for every container or endpoint, ceil(versions or deployments / p)
              + for each of the subject's pipeline jobs, ceil(R_x / p) of its experiment + one read per child
                                                       run history lists child jobs (E6), V2 reads each
    rules       2 x (ceil(X / p) + sum over x of ceil(R_x / p)) + ceil(N_models / p)
                                                       the notification-task and asset tasks list the subject's
                                                       runs (E5, E6), the image task her models (E15): the
                                                       contract names no creator on those families

k_f counts what the contract lets the product attribute to the subject (state.reachable_in), not the owner
annotation.

The floor, for a workspace where the subject has nothing: 2 + 8 + 11 + X calls (X experiments, lists of one
page): listing every experiment's runs is what searching a workspace costs, because the subject's runs can
sit in anyone's experiment. Everything else grows with what the subject has.
"""

from __future__ import annotations

import math
from typing import Any

from devtools.amlsim import v2
from devtools.amlsim.state import Tenant, WorkspaceData, reachable_in

FAMILY_LISTS = ("computes", "experiments", "tasks", "datastores", "models", "assets", "images", "services")
DETAILED = ("computes", "tasks", "datastores", "models", "assets", "images", "services")
# The v2 lists one export reads per workspace, and the nested lists read per container or endpoint.
V2_LISTS = ("jobs", *(f"{a}_containers" for a in v2.ASSETS), "online_endpoints", "batch_endpoints")
V2_LISTS += ("schedules", "connections", "datastores")
V2_NESTED = {f"{a}_containers": f"{a}_versions" for a in v2.ASSETS} | {
    "online_endpoints": "online_deployments",
    "batch_endpoints": "batch_deployments",
}
PIPELINE_PROPS = {"azureml.graphId": "graph", "azureml.pipelineTemplateId": "template"}


def pages(n: int, page: int) -> int:
    """Calls to read a list of n items (an empty list still takes one call)."""
    return max(1, math.ceil(n / page))


def predict_calls(tenant: Tenant, subject: str, page: int) -> dict[str, int]:
    """The formula above, evaluated on a simulated tenant from its ground truth (the owner annotation)."""
    out = {
        "scope": 0,
        "workspace": 0,
        "lists": 0,
        "details": 0,
        "runs": 0,
        "pipelines": 0,
        "rules": 0,
        "v2": 0,
    }
    subs: dict[str, int] = {}
    principal = tenant.principals[subject]
    for ws in tenant.workspaces.values():
        mine = {family: set(ids) for family, ids in reachable_in(ws, principal).items()}
        history_lists = pages(len(ws.experiments), page) + sum(pages(len(r), page) for r in ws.runs.values())
        out["rules"] += 2 * history_lists + pages(len(ws.models), page)
        subs[ws.subscription_id] = subs.get(ws.subscription_id, 0) + 1
        out["workspace"] += 2
        out["v2"] += v2_calls(tenant, ws, subject, page)
        for family in FAMILY_LISTS:
            out["lists"] += pages(len(ws.collection(family)), page)
        for family in DETAILED:
            out["details"] += len(mine[family])
        refs: set[tuple[str, str]] = set()
        for name in ws.experiment_names:
            runs = list(ws.runs.get(name, []))
            kept = [r for r in runs if r.id in mine["runs"]]
            out["runs"] += pages(len(runs), page) + len(kept)
            if kept:
                ids = {r.id for r in kept}
                metrics = list(ws.metrics.get(name, []))
                out["runs"] += pages(len(metrics), page) + sum(1 for m in metrics if m.body()["runId"] in ids)
                out["runs"] += sum(pages(len(ws.artifacts.get(r.id, [])), page) for r in kept)
            for run in runs:
                body = run.body()
                props = body.get("properties") or {}
                if props.get("azureml.runsource") != "azureml.PipelineRun":
                    continue
                if body.get("experimentId"):
                    refs.add(("experiment", body["experimentId"]))
                refs.update((kind, props[p]) for p, kind in PIPELINE_PROPS.items() if props.get(p))
        children: set[tuple[str, str]] = set()
        for kind, oid in refs:
            if kind != "graph":
                continue
            graph = ws.pipeline["pipeline_graphs"].get(oid)
            if graph is None:
                continue
            body = graph.body()
            children.update(
                ("module", n["moduleId"]) for n in body.get("moduleNodes") or [] if n.get("moduleId")
            )
            children.update(
                ("datasource", n["dataSourceId"])
                for n in body.get("datasetNodes") or []
                if n.get("dataSourceId")
            )
        out["pipelines"] += len(refs | children)
    out["scope"] = sum(pages(n, page) for n in subs.values())
    out["total"] = sum(out.values())
    return out


def v2_calls(tenant: Tenant, ws: WorkspaceData, subject: str, page: int) -> int:
    """The v2 term of the formula for one workspace (its lists, nested lists, and the subject's child jobs)."""
    calls = 0
    for family in V2_LISTS:
        parents = list(v2.records(ws, family))
        calls += pages(len(parents), page)
        if family in V2_NESTED:
            calls += sum(pages(len(v2.children(ws, V2_NESTED[family], r.id)), page) for r in parents)
    principal = tenant.principals[subject]
    mine = set(v2.reachable_in(tenant, ws, principal)["jobs"])
    for job in v2.records(ws, "jobs"):
        props = job.body()["properties"]
        if f"{ws.arm_id}/{job.id}" in mine and props.get("jobType") == "Pipeline":
            runs = ws.runs.get(props["experimentName"]) or ()
            calls += pages(len(runs), page) + len(v2.children(ws, "child_jobs", job.id))
    return calls


def large_tenant_model(
    *,
    workspaces: int = 10_000,
    subscriptions: int = 50,
    regions_per_subscription: int = 1,
    experiments: int = 40,
    runs_per_experiment: int = 60,
    pipeline_objects: int = 20,
    subject_workspaces: int = 20,
    subject_calls_per_workspace: int = 2_700,
    page: int = 100,
    burst: int = 250,
    rate: float = 25.0,
    latency_s: float = 0.15,
    cpu_ms_per_call: float = 2.0,
    threads_per_instance: int = 32,
    partition_ops_per_s: float = 2_000.0,
    table_ops_per_task: float = 5.0,
) -> dict[str, Any]:
    """One export over 10,000 workspaces: calls, the time ARM-like limits allow, and the instances it takes.

    Assumptions (arguments): each workspace holds `experiments` experiments of `runs_per_experiment` runs, and
    its other families fit in one page; pipeline runs name `pipeline_objects` objects; the subject has records
    in `subject_workspaces` of them, where the export reads about `subject_calls_per_workspace` calls (the
    benchmark tenant's per-workspace figure). Buckets: one per (subscription, host); data-plane calls go to
    the region's host, so a subscription whose workspaces are in r regions has r data-plane buckets."""
    per_ws_floor = 2 + len(FAMILY_LISTS) + len(V2_LISTS) + experiments * pages(runs_per_experiment, page)
    per_ws_floor += pipeline_objects
    calls = workspaces * per_ws_floor + subject_workspaces * subject_calls_per_workspace
    calls += subscriptions * pages(workspaces // subscriptions, page)
    # E2, E3, the v2 lists, S1
    arm_calls = workspaces * (2 + len(V2_LISTS)) + subscriptions * pages(workspaces // subscriptions, page)
    data_calls = calls - arm_calls
    buckets = subscriptions * regions_per_subscription
    per_bucket = data_calls / buckets
    limit_s = max(0.0, per_bucket - burst) / rate
    aggregate_rate = calls / limit_s if limit_s else float("inf")
    in_flight = aggregate_rate * latency_s
    instances_concurrency = math.ceil(in_flight / threads_per_instance)
    instances_cpu = math.ceil(aggregate_rate * cpu_ms_per_call / 1000)
    tasks = workspaces * (1 + len(FAMILY_LISTS) + len(V2_LISTS) + experiments + 1) + subscriptions
    partition_s = tasks * table_ops_per_task / partition_ops_per_s
    instances = max(instances_concurrency, instances_cpu)
    wall_s = max(limit_s, partition_s)
    return {
        "calls": int(calls),
        "floor_per_workspace": per_ws_floor,
        "arm_calls": int(arm_calls),
        "data_plane_calls": int(data_calls),
        "buckets": buckets,
        "calls_per_bucket": int(per_bucket),
        "limit_minutes": round(limit_s / 60, 1),
        "aggregate_rate": round(aggregate_rate),
        "in_flight": round(in_flight),
        "instances_for_concurrency": instances_concurrency,
        "instances_for_cpu": instances_cpu,
        "instances": instances,
        "tasks": tasks,
        "partition_minutes": round(partition_s / 60, 1),
        "wall_minutes": round(wall_s / 60, 1),
        "instance_minutes": round(instances * wall_s / 60),
        "assumptions": {
            "workspaces": workspaces,
            "subscriptions": subscriptions,
            "regions_per_subscription": regions_per_subscription,
            "experiments": experiments,
            "runs_per_experiment": runs_per_experiment,
            "pipeline_objects": pipeline_objects,
            "subject_workspaces": subject_workspaces,
            "subject_calls_per_workspace": subject_calls_per_workspace,
            "page": page,
            "burst": burst,
            "rate": rate,
            "latency_s": latency_s,
            "cpu_ms_per_call": cpu_ms_per_call,
            "threads_per_instance": threads_per_instance,
            "partition_ops_per_s": partition_ops_per_s,
            "table_ops_per_task": table_ops_per_task,
        },
    }
