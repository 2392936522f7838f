"""Part 2, against the ceiling: the simulator enforces ARM's token buckets and the product's limiter knows them.

ARM's numbers are used as they are (reads: a bucket of 250, refilled at 25 a second, per principal,
subscription and host): nothing is scaled. The tenant is two workspaces in two subscriptions and two regions,
so the export drains two data-plane buckets at once (and touches the two ARM buckets a little). The hosts'
limiters share each bucket through Table storage (shared/aml/budget.py), so 1, 2 and 4 hosts are run with ARM's
numbers. Two configurations without the shared budget (`DSR_RATE_SHARED=false`) are run for comparison: 2 hosts
that each hold the whole budget (as every instance did before), and 2 hosts that each hold half of it (what
dividing the budget by the number of live instances gives, at best: both hosts are alive throughout). Before
each run the shared rows are deleted, as the simulator's buckets are reset to full.

For each bucket, over the time between its first and its last call:
- `fraction` = calls admitted / (burst + rate x window): the share of what the bucket would admit in that time
  that the export used (1.0 = not one call left on the table);
- `steady_rate` = calls per second after the first `burst` calls (from then on only the refill admits calls)
  to the last call, against the refill rate.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path
from typing import Any

from devtools.amlsim import large_tenant
from devtools.bench import harness
from devtools.bench.harness import log
from devtools.stack import LocalStack

BURST = 250
RATE = 25.0
LATENCY_MS = 20
TENANT: dict[str, Any] = {
    "workspaces": 2,
    "regions": 2,
    "experiments_per_workspace": 24,
    "subject_share": 0.25,
}
# (host processes, the limiters share the buckets through Table storage, how many ways each process's budget is
# split): 1, 2 and 4 hosts sharing ARM's numbers; 2 hosts that each hold the whole budget; 2 with half each.
CONFIGS = ((1, True, 1), (2, True, 1), (4, True, 1), (2, False, 1), (2, False, 2))


def reset_budget(stack: LocalStack) -> None:
    """Delete the shared buckets' rows (the next lease starts a full bucket, as the simulator's are)."""
    from azure.core.exceptions import ResourceNotFoundError

    table = _budget_table(stack)
    try:
        for row in list(table.list_entities(select=["PartitionKey", "RowKey"])):
            table.delete_entity(row["PartitionKey"], row["RowKey"])
    except ResourceNotFoundError:  # no lease yet: no table
        pass


def budget_rows(stack: LocalStack) -> list[dict[str, Any]]:
    """Per shared bucket: host, kind and how many leases (Table round trips that took tokens) it took."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        rows = list(_budget_table(stack).list_entities())
    except ResourceNotFoundError:
        return []
    return sorted(
        (
            {
                "host": r["Host"],
                "subscription": r["Subscription"][:8],
                "kind": r["Kind"],
                "leases": r["Leases"],
            }
            for r in rows
        ),
        key=lambda r: (r["host"], r["subscription"]),
    )


def requeues(stack: LocalStack, request_id: str) -> dict[str, int]:
    """How often the request's tasks were re-enqueued because they were throttled (a wait longer than a worker
    sleeps) or hit a transient failure."""
    import json

    counts = {"throttled": 0, "transient": 0}
    for row in _runtime(stack).store.requests.query_entities(
        "PartitionKey eq @request", parameters={"request": request_id}, select=["Stats"]
    ):
        stats = json.loads(row.get("Stats") or "{}")
        counts["throttled"] += int(stats.get("throttledRequeues", 0))
        counts["transient"] += int(stats.get("attempts", 0))
    return counts


def _budget_table(stack: LocalStack) -> Any:
    from shared.core import settings as names

    return _runtime(stack).storage.table(names.BUDGET_TABLE)


def _runtime(stack: LocalStack) -> Any:
    import os

    from shared.core.settings import Settings
    from shared.runtime import Runtime

    return Runtime.create(Settings.from_env({**os.environ, **stack.settings}))


def bucket_stats(entries: list[dict[str, Any]], burst: int, rate: float) -> list[dict[str, Any]]:
    """Per (subscription, host) bucket of reads: calls, 429s, window, fraction of the ceiling, steady rate.
    `entries` are simulator log entries (time, method, host, path, status)."""
    buckets: dict[tuple[str, str], list[dict[str, Any]]] = collections.defaultdict(list)
    for entry in entries:
        if entry["method"] not in ("GET", "HEAD") or entry["path"].startswith("/_sim"):
            continue
        path = entry["path"].lower()
        sub = path.split("/subscriptions/", 1)[1].split("/", 1)[0] if "/subscriptions/" in path else ""
        buckets[(sub, entry["host"])].append(entry)
    out = []
    for (sub, host), calls in sorted(buckets.items()):
        calls.sort(key=lambda e: e["time"])
        admitted = [e for e in calls if e["status"] != 429]
        throttled = len(calls) - len(admitted)
        window = calls[-1]["time"] - calls[0]["time"]
        ceiling = burst + rate * window
        # After the first `burst` calls only the refill admits more: their rate is the steady rate.
        steady = None
        if len(admitted) > burst and calls[-1]["time"] - admitted[burst - 1]["time"] > 5:
            spent = admitted[burst - 1]["time"]
            steady = (len(admitted) - burst) / (calls[-1]["time"] - spent)
        out.append(
            {
                "subscription": sub[:8],
                "host": host,
                "calls": len(calls),
                "admitted": len(admitted),
                "throttled": throttled,
                "window_s": round(window, 1),
                "fraction": round(len(admitted) / ceiling, 3) if ceiling else None,
                "steady_rate": round(steady, 2) if steady is not None else None,
            }
        )
    return out


def rate_series(entries: list[dict[str, Any]], start: float, host: str) -> list[tuple[int, int]]:
    """(second since start, admitted calls in that second) for one host, for the chart."""
    counts: collections.Counter[int] = collections.Counter()
    for e in entries:
        if e["host"] == host and e["status"] != 429 and not e["path"].startswith("/_sim"):
            counts[math.floor(e["time"] - start)] += 1
    return sorted(counts.items())


def run(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    log(
        f"Part 2: the simulator enforces ARM's buckets ({BURST} burst, {RATE:.0f}/s per subscription and host)"
    )
    tenant = large_tenant(**({**TENANT, "experiments_per_workspace": 4} if quick else TENANT))
    result: dict[str, Any] = {"burst": BURST, "rate": RATE, "runs": []}
    with LocalStack(tenant=tenant, page_size=100, latency_ms=LATENCY_MS, hosts=0) as stack:
        stack.apply_environment()
        sim = stack.simulator
        assert sim is not None
        subscriptions = sorted({ws.subscription_id for ws in tenant.workspaces.values()})
        body = harness.export_body(stack, "alice", {"subscriptions": subscriptions})
        for hosts, shared, split in CONFIGS:
            limiter = {
                "PYTHON_THREADPOOL_THREAD_COUNT": harness.THREADS,
                "DSR_RATE_READ_BURST": f"{BURST / split:g}",
                "DSR_RATE_READS_PER_SECOND": f"{RATE / split:g}",
                "DSR_RATE_SHARED": "true" if shared else "false",
            }
            reset_budget(stack)
            sim.set_rate_limit(enabled=True, read_burst=BURST, read_rate=RATE)  # full buckets for each run
            with harness.hosts(stack, hosts, **limiter):
                seq = sim.log_seq
                run = harness.run_export(stack, body)
            entries = [e for e in sim.log_since(seq) if not e["path"].startswith("/_sim")]
            buckets = bucket_stats(entries, BURST, RATE)
            # The buckets the export can drain: data plane, more calls than the burst (the discovery documents
            # and ARM's calls fit in their bursts and can never meet the ceiling).
            data_plane = [b for b in buckets if b["host"] != "management.azure.com" and b["calls"] > BURST]
            throttled = sum(b["throttled"] for b in buckets)
            calls = sum(b["calls"] for b in buckets)
            leases = budget_rows(stack) if shared else []
            summary = {
                "hosts": hosts,
                "shared": shared,
                "split": split,
                "limiter_rate": RATE / split,
                "limiter_burst": BURST / split,
                "status": run.status,
                "wall_s": run.wall_s,
                "calls": calls,
                "throttled": throttled,
                "throttled_share": round(throttled / calls, 4) if calls else 0.0,
                "fraction": min((b["fraction"] for b in data_plane), default=None),
                "steady_rate": min((b["steady_rate"] or 0.0 for b in data_plane), default=None),
                "buckets": buckets,
                "leases": leases,
                "requeued": requeues(stack, run.request_id),
                "series": {
                    b["host"]: rate_series(entries, entries[0]["time"], b["host"]) for b in data_plane
                },
            }
            result["runs"].append(summary)
            log(
                f"  {hosts} host(s), limiter {RATE / split:g}/s {'shared' if shared else 'each'}: "
                f"{run.status} in {run.wall_s:.1f}s, "
                f"{calls} calls, {throttled} answered 429, "
                f"data-plane buckets at {summary['fraction']} of their ceiling "
                f"(steady {summary['steady_rate']}/s of {RATE:.0f}/s)"
            )
        sim.set_rate_limit(enabled=False)
    return result
