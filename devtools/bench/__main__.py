"""`python -m devtools.bench` (`make bench`): every benchmark part in one run, then docs/benchmarks.md and
docs/benchmarks.png.

Parts: 1 against the obvious way and 3 scale-out (one stack, with the profile), 2 against the ceiling, 4 memory,
5 intake, 6 the cost model (on paper, checked against part 1's calls). Results go to .local/bench/results.json
after each part, so `--report-only` can render the documents again without running anything.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

from devtools.bench.harness import log
from devtools.stack import ROOT

OUT = ROOT / ".local" / "bench"
DOC = ROOT / "docs" / "benchmarks.md"
PNG = ROOT / "docs" / "benchmarks.png"


def cost(results: dict[str, Any], quick: bool = False) -> dict[str, Any]:
    from devtools.amlsim import large_tenant
    from devtools.bench import compare, costmodel

    part = results["compare"]
    tenant = large_tenant(**(compare.QUICK_TENANT if quick else compare.TENANT))
    predicted = costmodel.predict_calls(tenant, compare.SUBJECT, compare.PAGE_SIZE)
    two = next(r for r in part["scaleout"] if r["hosts"] == compare.PART1_HOSTS)
    hosts_cpu = sum(v for k, v in two["cpu_s"].items() if k.startswith("host"))
    per_call_ms = round(1000 * hosts_cpu / two["calls"], 2)
    per_workspace = round(two["calls"] / part["tenant"]["workspaces"])
    model = costmodel.large_tenant_model(
        cpu_ms_per_call=per_call_ms, subject_calls_per_workspace=per_workspace
    )
    log(
        f"Part 6: the model predicts {predicted['total']:,} calls for part 1; the export made {two['calls']:,}"
    )
    return {"predicted": predicted, "measured": two["calls"], "model": model}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", default="1,2,3,4,5,6", help="comma-separated parts to run (1 and 3 go together)"
    )
    parser.add_argument("--report-only", action="store_true", help="render the documents from results.json")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other parts' results from results.json (the document says which run each part is from)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes: a smoke test of the harness (its figures mean nothing)",
    )
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    results_path = OUT / ("results-quick.json" if args.quick else "results.json")
    doc, png = (OUT / "benchmarks-quick.md", OUT / "benchmarks-quick.png") if args.quick else (DOC, PNG)
    if args.report_only:
        from devtools.bench import report

        report.write(json.loads(results_path.read_text()), doc, png)
        log(f"wrote {doc.relative_to(ROOT)} and {png.relative_to(ROOT)}")
        return 0

    from devtools.bench import ceiling, compare, intake, memory, report

    wanted = {p.strip() for p in args.parts.split(",") if p.strip()}
    started = time.monotonic()
    results: dict[str, Any] = {
        "quick": args.quick,
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
        "machine": report.machine(),
        "timings_s": {},
    }
    earlier: dict[str, Any] = {}
    if args.merge and results_path.exists():
        earlier = json.loads(results_path.read_text())
    steps = [
        ("intake", {"5"}, intake.run),
        ("ceiling", {"2"}, ceiling.run),
        ("memory", {"4"}, memory.run),
        ("compare", {"1", "3"}, compare.run),
    ]
    failed = False
    for name, parts, run in steps:
        if not parts & wanted:
            continue
        t0 = time.monotonic()
        try:
            results[name] = run(OUT, args.quick)
        except Exception as exc:
            failed = True
            log(f"{name} FAILED: {type(exc).__name__}: {exc}")
            import traceback

            traceback.print_exc()
        results["timings_s"][name] = round(time.monotonic() - t0, 1)
        log(
            f"{name}: {results['timings_s'][name]:.0f}s (total so far {(time.monotonic() - started) / 60:.1f} min)"
        )
        results_path.write_text(json.dumps({**earlier, **results}, indent=1, default=str))
    if "6" in wanted and "compare" in results:
        results["cost"] = cost(results, args.quick)
    results["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
    results["wall_s"] = round(time.monotonic() - started, 1)
    if earlier:
        kept = [name for name in ("intake", "ceiling", "memory", "compare", "cost") if name not in results]
        for name in kept:
            if name in earlier:
                results[name] = earlier[name]
        base = earlier.get("merged") or {}
        if not set(base.get("parts") or []) <= set(wanted):
            base = {}  # the earlier re-run's parts are kept: the earlier results are the base
        results["merged"] = {
            "parts": sorted(wanted),
            "earlier_finished_at": base.get("earlier_finished_at") or earlier.get("finished_at"),
            "earlier_wall_s": base.get("earlier_wall_s") or earlier.get("wall_s"),
        }
    results_path.write_text(json.dumps(results, indent=1, default=str))
    report.write(results, doc, png)
    log(f"wrote {doc.relative_to(ROOT)} and {png.relative_to(ROOT)} in {results['wall_s'] / 60:.1f} min")
    for row in report.goals(results):
        part, what, figure, goal, met = row
        log(f"  [{part}] {what}: {figure} (goal {goal}) -> {report._ok(met)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
