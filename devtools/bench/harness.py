"""What every benchmark part needs: the local stack with extra hosts, an export submitted through the HTTP API
and timed, the simulator's request log for the calls it made, and the CPU and memory of each process.

Timing: an export's wall time runs from just before its `POST /api/v1/requests` to the `completedAt` the product
writes on the request row (the same machine's clock). The harness watches the request row in Table storage
(one cheap read every half second) instead of polling `GET /api/v1/requests/{id}`, whose progress view reads
every task row and would load the host it measures; one GET at the end checks the status through the API.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devtools import processes
from devtools.stack import ROOT, HostProcess, LocalStack, _drain

TERMINAL = {"completed", "completed_with_errors", "failed", "rejected", "cancelled"}
# Threads for the host's sync functions (the Python worker's PYTHON_THREADPOOL_THREAD_COUNT; its default on
# 2 cores is min(32, cores + 4) = 6, too few for calls that mostly wait on the network).
THREADS = "32"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


# -- processes ------------------------------------------------------------------------------------------------
def peak_rss_mb(pid: int) -> float:
    """The process's resident-set high-water mark (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def cpu_seconds(pid: int) -> float:
    import psutil  # requirements-bench.txt: the harness's logic is tested without it

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


@dataclass
class CpuMeter:
    """CPU seconds used by named processes between start() and stop()."""

    pids: dict[str, int]
    before: dict[str, float] = field(default_factory=dict)
    used: dict[str, float] = field(default_factory=dict)

    def start(self) -> CpuMeter:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.used = {name: round(cpu_seconds(pid) - self.before[name], 2) for name, pid in self.pids.items()}
        return self.used


class RssSampler:
    """Samples one process's RSS (MiB) every `interval` seconds in a thread, with a value it is given (for
    example records written so far) as the x of each sample."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                rss = self.proc.memory_info().rss / 2**20
            except Exception:  # the process is gone
                return
            self.samples.append((round(time.monotonic() - self._t0, 2), round(rss, 1)))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def stack_pids(stack: LocalStack) -> dict[str, int]:
    """The processes of the stack: the bench itself (it runs the simulator), Azurite, each host."""
    assert stack.azurite is not None
    assert stack.azurite.proc is not None
    pids = {"bench + simulator": os.getpid(), "azurite": stack.azurite.proc.pid}
    for i, host in enumerate(stack.host_processes):
        pids[f"host {i + 1}"] = host.proc.pid
    return pids


# -- hosts ----------------------------------------------------------------------------------------------------
def start_host(stack: LocalStack, *args: str, **settings: str) -> HostProcess:
    """One more Functions host with `settings` on top of the stack's, and extra command-line `args` (e.g.
    `--no-queues`); stack.start_host without args does the same."""
    if not args:
        return stack.start_host(**settings)
    env = {**os.environ, **stack.settings, **settings, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "devtools.funchost", "--app", "function_app:app", "--root", str(ROOT)]
    proc = processes.spawn(
        [*command, "--port", "0", *args],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"the local Functions host did not start:\n{err[-4000:]}")
    host = HostProcess(proc, json.loads(line)["http_url"])
    threading.Thread(target=_drain, args=(proc, host.log), daemon=True).start()
    stack.host_processes.append(host)
    return host


@contextmanager
def hosts(stack: LocalStack, count: int, *args: str, **settings: str) -> Iterator[list[HostProcess]]:
    """`count` fresh host processes for the duration of the block (each with its own memory high-water)."""
    for host in list(stack.host_processes):
        stack.stop_host(host)
    started = [start_host(stack, *args, **settings) for _ in range(count)]
    try:
        yield started
    finally:
        for host in started:
            if host in stack.host_processes:
                stack.stop_host(host)


# -- exports --------------------------------------------------------------------------------------------------
def export_body(stack: LocalStack, person_key: str, scope: dict[str, list[str]]) -> dict[str, Any]:
    assert stack.simulator is not None
    person = stack.simulator.tenant.people[person_key]
    return {
        "type": "export",
        "subject": {"objectId": person.object_id, "userPrincipalName": person.upn, "email": person.email},
        "scope": scope,
        "reference": "BENCH",
    }


@dataclass
class ExportRun:
    request_id: str
    status: str
    wall_s: float
    calls: int
    statuses: dict[int, int]
    first_call: float
    last_call: float
    tasks: int
    errors: list[Any]

    @property
    def throttled(self) -> int:
        return self.statuses.get(429, 0)

    @property
    def call_rate(self) -> float:
        return self.calls / self.wall_s if self.wall_s else 0.0


def _epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def run_export(
    stack: LocalStack, body: dict[str, Any], *, timeout: float = 900, progress: bool = True
) -> ExportRun:
    """Submit `body` through the first host's HTTP API and wait for the request to end."""
    from shared.core.settings import Settings
    from shared.runtime import Runtime

    sim = stack.simulator
    assert sim is not None
    store = Runtime.create(Settings.from_env({**os.environ, **stack.settings})).store
    headers = {"x-functions-key": stack.function_key, "Content-Type": "application/json"}
    seq = sim.log_seq
    submitted = time.time()
    response = requests.post(f"{stack.api_url}/v1/requests", json=body, headers=headers, timeout=60)
    if response.status_code != 202:
        raise RuntimeError(f"submit answered {response.status_code}: {response.text[:500]}")
    request_id = response.json()["id"]
    deadline = time.monotonic() + timeout
    last_note = time.monotonic()
    while True:
        request = store.get_request(request_id)
        if request is not None and request.status in TERMINAL and request.completed_at is not None:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"request {request_id} not done after {timeout:.0f}s")
        if progress and time.monotonic() - last_note > 15:
            log(f"  ... {time.time() - submitted:.0f}s, {sim.log_seq - seq} API calls so far")
            last_note = time.monotonic()
        time.sleep(0.5)
    wall = _epoch(request.completed_at) - submitted
    view = requests.get(response.headers["Location"], headers=headers, timeout=60).json()
    entries = [e for e in sim.log_since(seq) if not e["path"].startswith("/_sim")]
    statuses = Counter(int(e["status"] or 0) for e in entries)
    return ExportRun(
        request_id=request_id,
        status=view["status"],
        wall_s=round(wall, 2),
        calls=len(entries),
        statuses=dict(statuses),
        first_call=entries[0]["time"] if entries else submitted,
        last_call=entries[-1]["time"] if entries else submitted,
        tasks=sum(p.get("tasks", 0) for p in view.get("progress", {}).values()),
        errors=view.get("errors", []),
    )


def package_ids(stack: LocalStack, request_id: str) -> tuple[dict[str, set[str]], dict[str, Any]]:
    """{truth family: ids} of an export package, and what the check found (hash mismatches, duplicates)."""
    from devtools.demo import container_client
    from devtools.package_check import read_package

    report = read_package(container_client(stack), request_id)
    checks = {
        "files": len(report.manifest["files"]),
        "hash_mismatches": len(report.hash_mismatches),
        "duplicates": len(report.duplicates),
    }
    return {family: set(ids) for family, ids in report.ids.items()}, checks


def compare_ids(left: dict[str, set[str]], right: dict[str, set[str]]) -> dict[str, dict[str, int]]:
    """Per family, how many ids only one side has ({} when the sets are equal; ids compared case-blind)."""
    out: dict[str, dict[str, int]] = {}
    for family in sorted(set(left) | set(right)):
        a = {i.lower() for i in left.get(family, set())}
        b = {i.lower() for i in right.get(family, set())}
        if a != b:
            out[family] = {"only_left": len(a - b), "only_right": len(b - a)}
    return out
