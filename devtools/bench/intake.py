"""Part 5, intake: `POST /api/v1/requests` on the local host against Azurite at a fixed offered rate.

Open loop: request i is sent at start + i / rate whatever happened to the earlier ones (a pool of senders
keeps up), and its latency runs from that scheduled moment to the answer, so a slow answer cannot hide the
ones queued behind it. Every answer must be 202. The host serves HTTP only (`--no-queues --no-timers`): the
accepted requests' work would otherwise run on the same two cores and the figure would be the queue work's,
not the intake's.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from pathlib import Path
from typing import Any

import requests

from devtools.bench import harness
from devtools.bench.harness import log, percentile
from devtools.stack import LocalStack

RATE = 20.0
SECONDS = 30
WARMUP = 10  # requests before the measured ones (the first calls create tables, queues, token caches)


def offered_load(
    send: Any, rate: float, seconds: float, senders: int = 64
) -> tuple[list[float], list[str], float]:
    """Call `send()` (-> None or an error text) at `rate` per second for `seconds`; return the latencies of the
    successful calls (seconds from their scheduled start), the errors and the measured duration."""
    count = int(rate * seconds)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def one(i: int) -> None:
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        try:
            problem = send()
        except Exception as exc:  # a connection error is an error, not a crash of the benchmark
            problem = f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - due
        with lock:
            if problem is None:
                latencies.append(elapsed)
            else:
                errors.append(problem)

    with concurrent.futures.ThreadPoolExecutor(max_workers=senders) as pool:
        list(pool.map(one, range(count)))
    return latencies, errors, time.perf_counter() - start


def run(out_dir: Path, quick: bool = False) -> dict[str, Any]:
    seconds = 5 if quick else SECONDS
    log(f"Part 5: intake, POST /api/v1/requests at {RATE:.0f}/s for {seconds}s")
    with LocalStack(hosts=0) as stack:
        stack.apply_environment()
        assert stack.simulator is not None
        subscriptions = sorted({ws.subscription_id for ws in stack.simulator.tenant.workspaces.values()})
        body = harness.export_body(stack, "alice", {"subscriptions": subscriptions})
        with harness.hosts(stack, 1, "--no-queues", "--no-timers"):
            session = requests.Session()
            session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64))
            url = f"{stack.api_url}/v1/requests"
            headers = {"x-functions-key": stack.function_key, "Content-Type": "application/json"}

            def send() -> str | None:
                response = session.post(url, json=body, headers=headers, timeout=30)
                if response.status_code != 202:
                    return f"{response.status_code}: {response.text[:200]}"
                return None

            for _ in range(WARMUP):
                if send() is not None:
                    raise RuntimeError("intake warm-up failed")
            pids = {"host": stack.host_processes[0].proc.pid, "azurite": harness.stack_pids(stack)["azurite"]}
            meter = harness.CpuMeter(pids).start()
            latencies, errors, duration = offered_load(send, RATE, seconds)
            cpu = meter.stop()
    result = {
        "offered_rate": RATE,
        "seconds": seconds,
        "sent": len(latencies) + len(errors),
        "ok": len(latencies),
        "errors": len(errors),
        "error_examples": errors[:3],
        "throughput": round(len(latencies) / duration, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 99) * 1000, 1) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        "cpu_s": cpu,
        "latencies_ms": [round(x * 1000, 1) for x in latencies],
    }
    log(
        f"  {result['ok']}/{result['sent']} accepted, {result['throughput']}/s, p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms, errors {result['errors']}"
    )
    return result
