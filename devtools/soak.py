"""Chaos soak: many concurrent requests while everything that can fail, fails; then check nothing was lost.

While exports, erasures and dry runs run through the local stack, the Azure ML simulator injects 429s,
500/503s, connection resets, cut-off JSON and slow answers; host processes are killed (SIGKILL) and replaced
at random moments; Azurite is restarted once (on disk, same ports). The sweeper timer is run through the host's
admin API, as an operator (or its schedule) would. Afterwards:

- every request reached a terminal state;
- every export equals the simulator's ground truth for its subject, record for record;
- every erasure deleted only what the contract attributes to its subject (Tenant.erasable: state before vs after);
- no side effect happened twice (no object got two successful DELETEs), and the dry run sent none.

`python -m devtools.soak` (`make soak`) runs the long version and writes its figures to docs/reliability.md;
tests/e2e/test_soak.py runs a short one in `make test`. Bounded: it stops by itself at its deadline.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from devtools.demo import container_client, erasure_record, status, submit
from devtools.package_check import expected_export, read_package
from devtools.stack import LocalStack

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = {"completed", "completed_with_errors", "failed", "rejected", "cancelled"}
EXPORTERS = ("alice", "bob", "carol")
ERASED = ("erin", "asmith")
DRY_RUN = "dave"
FAULTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    (r"GET /[^/]+/history/", "status", {"status": 429, "retry_after": 1}),
    (r"GET /management\.azure\.com/", "status", {"status": 503, "retry_after": 1}),
    (r"GET /[^/]+/modelmanagement/v1\.0/subscriptions/", "status", {"status": 500}),
    (r"GET /[^/]+/artifact/", "reset", {}),
    (r"GET /[^/]+/datastore/", "truncate", {}),
    (r"GET /[^/]+/notification/", "delay", {"delay_s": 0.5}),
    (r"DELETE ", "status", {"status": 503, "retry_after": 1}),
)


@dataclass
class SoakReport:
    requests: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    host_kills: int = 0
    host_kills_in_flight: int = 0  # kills that happened while requests were still open
    azurite_restarts: int = 0
    sweeps: int = 0
    calls: int = 0
    records_compared: int = 0
    mismatches: list[str] = field(default_factory=list)
    over_deletions: list[str] = field(default_factory=list)
    missed_deletions: list[str] = field(default_factory=list)
    double_deletes: list[str] = field(default_factory=list)
    dry_run_deletes: int = 0
    not_terminal: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.mismatches
            or self.over_deletions
            or self.missed_deletions
            or self.double_deletes
            or self.dry_run_deletes
            or self.not_terminal
        )

    def lines(self) -> list[str]:
        return [
            f"requests: {self.requests} ({', '.join(f'{k} {v}' for k, v in sorted(self.statuses.items()))})",
            f"faults injected: {sum(self.faults.values())} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.faults.items()))})",
            f"host processes killed and replaced: {self.host_kills} "
            f"({self.host_kills_in_flight} while requests were open); Azurite restarts: {self.azurite_restarts}; "
            f"sweeps: {self.sweeps}",
            f"Azure ML calls: {self.calls}; records compared: {self.records_compared}",
            f"mismatches: {len(self.mismatches)}; over-deletions: {len(self.over_deletions)}; "
            f"missed deletions: {len(self.missed_deletions)}; double deletes: {len(self.double_deletes)}; "
            f"dry-run deletes: {self.dry_run_deletes}; not terminal: {len(self.not_terminal)}",
            f"wall time: {self.seconds:.0f}s",
        ]


def _subject(stack: LocalStack, key: str) -> dict[str, str]:
    assert stack.simulator is not None
    person = stack.simulator.tenant.people[key]
    return {"objectId": person.object_id, "userPrincipalName": person.upn, "email": person.email}


def _objects(snapshot: dict[str, Any]) -> dict[tuple[str, str, str], str | None]:
    return {
        (ws["id"], family, obj["id"]): obj["owner"]
        for ws in snapshot["workspaces"]
        for family, items in ws["families"].items()
        for obj in items
    }


def run(
    rounds: int = 3,
    hosts: int = 2,
    kills: int = 3,
    restart_azurite: bool = True,
    fault_probability: float = 0.08,
    deadline_s: float = 600.0,
    chaos_within_s: float = 25.0,
    seed: int = 7,
    log: Any = print,
) -> SoakReport:
    rng = random.Random(seed)
    report = SoakReport()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dsr-soak-") as folder:
        stack = LocalStack(
            hosts=hosts,
            azurite_location=Path(folder) / "azurite",
            queue_lease_seconds=10,
            extra_settings={"DSR_TASK_TIME_BUDGET_SECONDS": "5", "DSR_AUTO_APPROVE_ERASURE": "true"},
        )
        with stack:
            stack.apply_environment()
            sim = stack.simulator
            assert sim is not None
            truths = {key: expected_export(sim, key) for key in EXPORTERS}  # what the contract lets it find
            before = _objects(sim.snapshot())
            # What a faithful erasure may delete: the contract's attribution (an asset of her run, an image of
            # only her models), not the fixture's owner annotation, which no API shows.
            erasable = {
                (ws.lower(), family, oid.lower())
                for key in ERASED
                for ws, family, oid in sim.tenant.erasable(key)
            }
            subscriptions = sorted({w.subscription_id for w in sim.tenant.workspaces.values()})
            scope = {"subscriptions": subscriptions}
            for route, kind, extra in FAULTS:
                sim.inject_fault(route=route, kind=kind, probability=fault_probability, **extra)
            log(f"stack up; {len(FAULTS)} fault rules at p={fault_probability}; {hosts} hosts")

            submitted: list[tuple[str, str, str]] = []  # (kind, person, request id)
            lock = threading.Lock()

            def submit_one(kind: str, person: str) -> None:
                body: dict[str, Any] = {"type": "export", "subject": _subject(stack, person), "scope": scope}
                if kind != "export":
                    body["type"] = "erasure"
                    body["dryRun"] = kind == "dry-run"
                for _ in range(30):  # the intake itself may meet a killed host or a restarting Azurite
                    try:
                        response = submit(
                            stack, body, idempotency_key=f"soak-{kind}-{person}-{len(submitted)}"
                        )
                    except requests.RequestException:
                        time.sleep(1)
                        continue
                    if response.status_code == 202:
                        with lock:
                            submitted.append((kind, person, response.json()["id"]))
                        return
                    time.sleep(1)
                raise RuntimeError(f"could not submit {kind} for {person}")

            stop = threading.Event()
            all_terminal = threading.Event()
            chaos_rng = random.Random(seed + 1)

            def chaos() -> None:
                moments = sorted(chaos_rng.uniform(2, chaos_within_s) for _ in range(kills))
                restart_at = chaos_rng.uniform(0.3, 0.8) * chaos_within_s if restart_azurite else None
                t0 = time.monotonic()
                while not stop.is_set() and (moments or restart_at is not None):
                    now = time.monotonic() - t0
                    if moments and now >= moments[0]:
                        moments.pop(0)
                        victim = chaos_rng.choice(stack.host_processes)
                        stack.kill_host(victim)
                        stack.start_host()
                        report.host_kills += 1
                        report.host_kills_in_flight += not all_terminal.is_set()
                        log(f"  chaos: killed a host at {now:.1f}s and started another")
                    if restart_at is not None and now >= restart_at:
                        assert stack.azurite is not None
                        stack.azurite.restart()
                        report.azurite_restarts += 1
                        restart_at = None
                        log(f"  chaos: restarted Azurite at {now:.1f}s (same ports, state on disk)")
                    stop.wait(0.2)

            # The chaos clock starts with the first submission, so the faults meet requests in flight.
            chaos_thread = threading.Thread(target=chaos, daemon=True)
            chaos_thread.start()
            plan = [("erasure", p) for p in ERASED] + [("dry-run", DRY_RUN)]
            plan += [("export", p) for _ in range(rounds) for p in EXPORTERS]
            rng.shuffle(plan)
            threads = [threading.Thread(target=submit_one, args=item) for item in plan]
            for t in threads:
                t.start()
                time.sleep(rng.uniform(0.05, 0.4))

            for t in threads:
                t.join()
            report.requests = len(submitted)
            pending = {rid for _, _, rid in submitted}
            views: dict[str, dict[str, Any]] = {}
            last_sweep = time.monotonic()
            while (pending or chaos_thread.is_alive()) and time.monotonic() - started < deadline_s:
                for rid in list(pending):
                    try:
                        view = status(stack, f"{stack.api_url}/v1/requests/{rid}")
                    except requests.RequestException:
                        break
                    if view["status"] in TERMINAL:
                        views[rid] = view
                        pending.discard(rid)
                if not pending:
                    all_terminal.set()
                if time.monotonic() - last_sweep > 8:
                    last_sweep = time.monotonic()
                    try:
                        requests.post(
                            f"{stack.host_processes[0].http_url}/admin/functions/sweep",
                            json={"input": ""},
                            headers={"x-functions-key": stack.function_key},
                            timeout=10,
                        )
                        report.sweeps += 1
                    except requests.RequestException:
                        pass
                time.sleep(1)
            stop.set()
            chaos_thread.join(timeout=30)
            sim.clear_faults()
            report.not_terminal = sorted(pending)
            if pending:
                dump = ROOT / ".local" / "soak-hosts.log"
                dump.parent.mkdir(exist_ok=True)
                dump.write_text("\n".join(line for h in stack.host_processes for line in h.log))
                log(f"  host logs: {dump}")
            log(f"all requests terminal: {not pending} after {time.monotonic() - started:.0f}s")
            for rid in sorted(pending):
                try:
                    view = status(stack, f"{stack.api_url}/v1/requests/{rid}")
                    open_tasks = {
                        k: {s: n for s, n in v.items() if s in ("queued", "running")}
                        for k, v in view["progress"].items()
                    }
                    log(f"  still {view['status']}: {rid} open tasks {open_tasks}")
                except requests.RequestException as exc:
                    log(f"  {rid}: status unavailable ({exc})")

            calls = [e for e in sim.log if not e["path"].startswith("/_sim")]
            report.calls = len(calls)
            report.faults = Counter(e["fault"] for e in calls if e["fault"])
            container = container_client(stack)
            recorded_deleted: set[tuple[str, str]] = set()
            for kind, person, rid in submitted:
                final = views.get(rid)
                if final is None:
                    continue
                report.statuses[f"{kind}:{final['status']}"] += 1
                if kind == "export":
                    package = read_package(container, rid)
                    differences = package.compare(truths[person])
                    report.records_compared += sum(package.records.values())
                    if (
                        final["status"] != "completed"
                        or differences
                        or package.duplicates
                        or package.hash_mismatches
                    ):
                        report.mismatches.append(f"{rid} {person}: {final['status']} {differences}")
                else:
                    record = erasure_record(stack, rid)
                    for item in record["items"]:
                        if item["outcome"] == "deleted":
                            recorded_deleted.add((item["workspace"].lower(), item["id"].lower()))
                    if kind == "dry-run":
                        report.dry_run_deletes += sum(1 for i in record["items"] if i.get("delete"))
            after = _objects(sim.snapshot())
            gone = {k: owner for k, owner in before.items() if k not in after}
            gone_keys = {(k[0].lower(), k[2].lower()) for k in gone}
            report.over_deletions = sorted(
                f"{k} (owner {o})"
                for k, o in gone.items()
                if (k[0].lower(), k[1], k[2].lower()) not in erasable
            )
            report.missed_deletions = sorted(f"{k}" for k in recorded_deleted - gone_keys)
            deletes = Counter(
                (e["host"], e["path"]) for e in calls if e["method"] == "DELETE" and e["status"] in (200, 202)
            )
            report.double_deletes = sorted(f"{k}" for k, n in deletes.items() if n > 1)
    report.seconds = time.monotonic() - started
    return report


def write_doc(report: SoakReport, args: argparse.Namespace) -> Path:
    path = ROOT / "docs" / "reliability.md"
    text = [
        "# Reliability: chaos soak",
        "",
        "Produced by `make soak` (`python -m devtools.soak`); a shorter run of the same harness is part of",
        "`make test` (tests/e2e/test_soak.py). What it does is described in devtools/soak.py.",
        "",
        f"Run: {args.rounds} rounds of exports for {len(EXPORTERS)} people, erasures for {len(ERASED)}, one dry",
        f"run; {args.hosts} host processes; fault probability {args.faults} per rule; {args.kills} host kills;",
        f"Azurite restarted once: {not args.no_azurite_restart}. Machine: 2 cores, 24 GB.",
        "",
        "| figure | value |",
        "| --- | --- |",
    ]
    for line in report.lines():
        name, _, value = line.partition(": ")
        text.append(f"| {name} | {value} |")
    text += [
        "",
        f"Result: {'PASS' if report.ok else 'FAIL'}",
        "",
        "An erasure that ends `completed_with_errors` is the truthful outcome when some of the person's objects are",
        "still used by someone else's (409, or 412 DeletionRequired): they are kept and reported in the erasure record,",
        "never forced.",
        "Exports must all end `completed` and equal the ground truth record for record.",
        "",
    ]
    path.write_text("\n".join(text))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--faults", type=float, default=0.1)
    parser.add_argument("--deadline", type=float, default=900.0)
    parser.add_argument("--no-azurite-restart", action="store_true")
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/reliability.md")
    args = parser.parse_args(argv)
    report = run(
        rounds=args.rounds,
        hosts=args.hosts,
        kills=args.kills,
        restart_azurite=not args.no_azurite_restart,
        fault_probability=args.faults,
        deadline_s=args.deadline,
    )
    for line in report.lines():
        print(line)
    for problem in (
        report.mismatches + report.over_deletions + report.missed_deletions + report.double_deletes
    ):
        print("  problem:", problem)
    if not args.no_doc:
        print("wrote", write_doc(report, args))
    print("PASS" if report.ok else "FAIL")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
