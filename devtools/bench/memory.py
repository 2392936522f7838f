"""Part 4, memory: the peak RSS of the worker that exports one endpoint family of about 100 MB and about 1 GB.

The simulator's bulk tenant holds, per workspace, one run of the subject whose artifact list (E10) has as
many artifacts as wanted, made on demand. Each size is exported by a fresh host process (so its memory
high-water mark, VmHWM, is that export's alone); its RSS is also sampled every quarter second for the chart.
The package is checked by streaming it back: its sha-256 and line count against the manifest.

Simulator latency is 0 here (memory, not waiting, is measured) and the page size is 1,000 records (about
0.7 MB a page). Azurite keeps the packages in memory (2 GB by default in devtools/azurite.py: room for both).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from devtools.amlsim.fixture import bulk_tenant
from devtools.bench import harness
from devtools.bench.harness import log
from devtools.stack import LocalStack

SIZES_MB = (100, 1000)
PAGE_SIZE = 1000
BYTES_PER_RECORD = 724  # an E10 record of the bulk tenant in the package, with its newline (measured)


def records_for(target_mb: int) -> int:
    return int(target_mb * 10**6 / BYTES_PER_RECORD)


def verify(stack: LocalStack, request_id: str, family: str = "artifacts") -> dict[str, Any]:
    """Stream the family's file back: sha-256, bytes and lines against the manifest entry."""
    from devtools.demo import container_client

    container = container_client(stack)
    manifest = json.loads(container.get_blob_client(f"{request_id}/manifest.json").download_blob().readall())
    entries = [f for f in manifest["files"] if f["family"] == family]
    entry = max(entries, key=lambda f: f["bytes"])
    digest, size, lines = hashlib.sha256(), 0, 0
    for chunk in container.get_blob_client(entry["path"]).download_blob(max_concurrency=1).chunks():
        digest.update(chunk)
        size += len(chunk)
        lines += chunk.count(b"\n")
    return {
        "records": entry["records"],
        "bytes": entry["bytes"],
        "sha256_ok": digest.hexdigest() == entry["sha256"] and size == entry["bytes"],
        "lines_ok": lines == entry["records"],
    }


def run(out_dir: Path, quick: bool = False, sizes_mb: tuple[int, ...] = SIZES_MB) -> dict[str, Any]:
    if quick:
        sizes_mb = (5, 20)
    counts = [records_for(mb) for mb in sizes_mb]
    log(f"Part 4: bulk tenant with one family of {', '.join(f'{n:,}' for n in counts)} records")
    tenant = bulk_tenant(tuple(counts))
    stack = LocalStack(tenant=tenant, page_size=PAGE_SIZE, latency_ms=0, hosts=0)
    result: dict[str, Any] = {"page_size": PAGE_SIZE, "runs": []}
    with stack:
        assert stack.azurite is not None
        assert stack.simulator is not None
        room = stack.azurite.memory_limit_mb
        if sum(sizes_mb) * 1.2 > room:
            raise RuntimeError(
                f"Azurite keeps {room} MB in memory: too little for {sum(sizes_mb)} MB of exports"
            )
        stack.apply_environment()
        workspaces = sorted(stack.simulator.tenant.workspaces.values(), key=lambda w: w.name)
        for target, count, ws in zip(sizes_mb, counts, workspaces, strict=True):
            body = harness.export_body(stack, "alice", {"workspaces": [ws.arm_id]})
            with harness.hosts(stack, 1, PYTHON_THREADPOOL_THREAD_COUNT=harness.THREADS) as (host,):
                pid = host.proc.pid
                start_rss = harness.peak_rss_mb(pid)
                with harness.RssSampler(pid) as sampler:
                    started = time.monotonic()
                    export = harness.run_export(stack, body, timeout=1800)
                    wall = time.monotonic() - started
                peak = harness.peak_rss_mb(pid)
            check = verify(stack, export.request_id)
            mb = check["bytes"] / 10**6
            row = {
                "target_mb": target,
                "records": check["records"],
                "expected_records": count,
                "bytes": check["bytes"],
                "status": export.status,
                "wall_s": round(wall, 1),
                "mb_per_s": round(mb / wall, 1),
                "calls": export.calls,
                "rss_at_start_mb": round(start_rss, 1),
                "peak_rss_mb": round(peak, 1),
                "sha256_ok": check["sha256_ok"],
                "lines_ok": check["lines_ok"],
                "rss_samples": sampler.samples,
            }
            result["runs"].append(row)
            log(
                f"  {mb:,.0f} MB ({check['records']:,} records) in {wall:.0f}s ({row['mb_per_s']} MB/s): "
                f"host peak RSS {peak:.0f} MiB (at start {start_rss:.0f}); sha-256 and lines check: "
                f"{check['sha256_ok'] and check['lines_ok']}"
            )
    return result
