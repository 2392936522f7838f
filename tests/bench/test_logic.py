"""The benchmark harness's arithmetic on tiny made-up inputs: percentiles, token-bucket accounting, profile
summaries, the cost model and the report. Nothing here runs the stack or times anything."""

from __future__ import annotations

import pytest

from devtools.bench import costmodel, report
from devtools.bench.ceiling import bucket_stats
from devtools.bench.compare import frame_name, summarize_profile
from devtools.bench.harness import compare_ids, percentile
from devtools.bench.intake import offered_load

WS = "/subscriptions/SUB1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"


def test_percentile_interpolates_between_ranks():
    assert percentile([3.0], 99) == 3.0
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def entry(t: float, host: str = "westeurope.api.azureml.ms", status: int = 200) -> dict:
    return {"time": t, "method": "GET", "host": host, "path": WS + "/x", "status": status}


def test_a_bucket_used_at_its_refill_rate_after_its_burst_is_at_its_ceiling():
    # burst 10, 5/s: 10 calls at t=0, then 5 a second for 10 s (one every 0.2 s)
    calls = [entry(0.0) for _ in range(10)] + [entry(0.2 * i) for i in range(1, 51)]
    (stats,) = bucket_stats(calls, burst=10, rate=5.0)
    assert stats["calls"] == 60
    assert stats["throttled"] == 0
    assert stats["window_s"] == 10.0
    assert stats["fraction"] == pytest.approx(60 / (10 + 5 * 10), abs=0.001)
    assert stats["steady_rate"] == pytest.approx(5.0, abs=0.2)


def test_a_half_used_bucket_and_its_429s_are_counted_per_subscription_and_host():
    calls = [entry(float(i)) for i in range(21)] + [entry(20.0, status=429)]
    calls += [entry(1.0, host="management.azure.com")]
    stats = {b["host"]: b for b in bucket_stats(calls, burst=5, rate=2.0)}
    assert stats["management.azure.com"]["calls"] == 1
    data = stats["westeurope.api.azureml.ms"]
    assert (data["subscription"], data["throttled"], data["admitted"]) == ("sub1", 1, 21)
    assert data["fraction"] == pytest.approx(21 / (5 + 2 * 20), abs=0.001)
    assert data["steady_rate"] == pytest.approx(1.0)  # after the first 5 calls: 16 calls in 16 s


def test_profile_summary_groups_samples_by_area_and_names_product_functions():
    raw = "\n".join(
        [
            "run (threading.py:1);execute (shared/tasks/dispatch.py:9);get_json (shared/aml/client.py:3);recv (ssl.py:1) 6",
            "run (threading.py:1);execute (shared/tasks/dispatch.py:9);scrub (shared/aml/scrub.py:2) 3",
            "run (threading.py:1);_poll_loop (devtools/funchost/queues.py:4) 1",
        ]
    )
    summary = summarize_profile(raw)
    assert summary["samples"] == 10
    areas = {a["area"]: a["share"] for a in summary["areas"]}
    assert areas == {
        "Azure ML calls (HTTP, JSON)": 0.6,
        "scrubbing secrets": 0.3,
        "local host: queue polling and leases": 0.1,
    }
    assert summary["top"][0] == {"function": "shared/tasks/dispatch.py:execute", "share": 0.9}
    assert frame_name("send (/x/site-packages/requests/sessions.py:12)") == "requests/sessions.py:send"


def test_offered_load_sends_the_scheduled_count_and_collects_errors():
    answers = iter([None, "500: boom", None, None])
    latencies, errors, duration = offered_load(lambda: next(answers), rate=200.0, seconds=0.02, senders=1)
    assert len(latencies) == 3
    assert errors == ["500: boom"]
    assert all(x >= 0 for x in latencies)
    assert duration > 0


def test_compare_ids_is_case_blind_and_counts_each_side():
    assert compare_ids({"runs": {"A"}}, {"runs": {"a"}}) == {}
    assert compare_ids({"runs": {"a", "b"}}, {"runs": {"a"}, "models": {"m"}}) == {
        "models": {"only_left": 0, "only_right": 1},
        "runs": {"only_left": 1, "only_right": 0},
    }


def test_the_tenant_model_is_the_floor_per_workspace_plus_the_subject_and_the_limits_follow():
    model = costmodel.large_tenant_model(
        workspaces=100,
        subscriptions=2,
        experiments=10,
        runs_per_experiment=50,
        pipeline_objects=0,
        subject_workspaces=0,
        page=100,
        burst=0,
        rate=10.0,
        latency_s=0.1,
        cpu_ms_per_call=1.0,
    )
    assert model["floor_per_workspace"] == 2 + 8 + 11 + 10  # v1 lists, v2 lists, every experiment's runs
    assert model["calls"] == 100 * 31 + 2 * 1
    assert model["arm_calls"] == 100 * (2 + 11) + 2  # E2, E3 and the 11 v2 lists are ARM calls
    # per bucket: the data-plane calls of 50 workspaces at 10/s
    assert model["calls_per_bucket"] == (3102 - 1302) // 2
    assert model["limit_minutes"] == round(900 / 10 / 60, 1)


def results_fixture() -> dict:
    scale = [
        {
            "hosts": n,
            "wall_s": w,
            "calls": 1000,
            "calls_per_s": 1000 / w,
            "cores_used": c,
            "cpu_s": {"bench + simulator": 1.0, "azurite": 2.0, "host 1": 3.0},
        }
        for n, w, c in ((1, 10.0, 1.0), (2, 5.0, 1.9), (4, 5.2, 1.95))
    ]
    return {
        "machine": {
            "cpu": "test",
            "cores": 2,
            "memory_gib": 1.0,
            "os": "x",
            "python": "3",
            "node": "v",
            "azurite": "3",
        },
        "finished_at": "2026-01-01T00:00:00+00:00",
        "wall_s": 60.0,
        "compare": {
            "tenant": {
                "workspaces": 8,
                "regions": 2,
                "subscriptions": 2,
                "objects": {"runs": 10},
                "subject_objects": 5,
                "latency_ms": 20,
                "page_size": 100,
            },
            "scaleout": scale,
            "profile": {
                "samples": 10,
                "areas": [{"area": "Azure ML calls (HTTP, JSON)", "share": 1.0}],
                "top": [{"function": "shared/tasks/dispatch.py:execute", "share": 1.0}],
            },
            "compare": {
                "hosts": 2,
                "product_wall_s": 5.0,
                "product_runs_s": [5.5, 5.0, 4.5],
                "product_calls": 1000,
                "baseline_wall_s": 80.0,
                "baseline_calls": 992,
                "baseline_statuses": {200: 992},
                "ratio": 16.0,
                "records_product": 5,
                "records_baseline": 5,
                "product_vs_baseline": {},
                "product_vs_truth": {},
                "baseline_vs_truth": {},
                "package_checks": {"files": 3, "hash_mismatches": 0, "duplicates": 0},
            },
        },
        "ceiling": {
            "burst": 250,
            "rate": 25.0,
            "runs": [
                {
                    "hosts": 1,
                    "wall_s": 60.0,
                    "calls": 1500,
                    "throttled": 0,
                    "throttled_share": 0.0,
                    "fraction": 0.95,
                    "steady_rate": 24.6,
                    "series": {"westeurope.api.azureml.ms": [[0, 250], [1, 25]]},
                    "buckets": [
                        {
                            "subscription": "sub1",
                            "host": "westeurope.api.azureml.ms",
                            "calls": 1500,
                            "admitted": 1500,
                            "throttled": 0,
                            "window_s": 55.0,
                            "fraction": 0.95,
                            "steady_rate": 24.6,
                        }
                    ],
                },
            ],
        },
        "memory": {
            "page_size": 1000,
            "runs": [
                {
                    "target_mb": 100,
                    "records": 10,
                    "bytes": 100e6,
                    "calls": 3,
                    "wall_s": 10.0,
                    "mb_per_s": 10.0,
                    "rss_at_start_mb": 70.0,
                    "peak_rss_mb": 88.0,
                    "sha256_ok": True,
                    "lines_ok": True,
                    "rss_samples": [[0.25, 70.0], [0.5, 88.0]],
                },
                {
                    "target_mb": 1000,
                    "records": 100,
                    "bytes": 1000e6,
                    "calls": 30,
                    "wall_s": 100.0,
                    "mb_per_s": 10.0,
                    "rss_at_start_mb": 70.0,
                    "peak_rss_mb": 160.0,
                    "sha256_ok": True,
                    "lines_ok": True,
                    "rss_samples": [[0.25, 70.0], [0.5, 160.0]],
                },
            ],
        },
        "intake": {
            "offered_rate": 20.0,
            "seconds": 30,
            "sent": 600,
            "ok": 600,
            "errors": 0,
            "throughput": 20.0,
            "p50_ms": 60.0,
            "p99_ms": 120.0,
            "max_ms": 130.0,
            "cpu_s": {"host": 6.0},
            "latencies_ms": [50.0, 60.0, 120.0],
        },
        "cost": {
            "predicted": {
                "scope": 1,
                "workspace": 2,
                "lists": 3,
                "details": 4,
                "runs": 5,
                "pipelines": 6,
                "total": 21,
            },
            "measured": 21,
            "model": costmodel.large_tenant_model(),
        },
    }


def test_the_report_puts_every_figure_against_its_goal_and_says_which_missed():
    rows = report.goals(results_fixture())
    met = {(part, what.split(",")[0]): ok for part, what, _figure, _goal, ok in rows}
    assert met[("1", "Export of one person over 8 workspaces")] is True
    assert met[("4", "Peak RSS of the worker exporting one family of 1")] is False  # 160 MiB
    assert met[("4", "Growth of the peak with the export's size (10x the data)")] is False
    assert {part for part, *_ in rows} == {"1", "2", "3", "4", "5", "6"}
    text = report.render(results_fixture())
    assert "| 4 | Peak RSS of the worker exporting one family of 1,000 MB" in text
    assert "**no**" in text
    assert "16.0x" in text
    assert "the median of 3 runs: 5.5, 5.0, 4.5 s" in text


def test_the_chart_is_drawn(tmp_path):
    path = tmp_path / "chart.png"
    report.chart(results_fixture(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_ceiling_part_labels_shared_and_comparison_runs_and_counts_calls_per_lease():
    # Given a shared 2-host run (its bucket took 100 leases) and a comparison run without the shared budget
    results = results_fixture()
    bucket = results["ceiling"]["runs"][0]["buckets"][0]
    shared = {**results["ceiling"]["runs"][0], "hosts": 2, "shared": True, "split": 1}
    shared["leases"] = [{"host": "127.0.0.1:1", "subscription": "sub1", "kind": "reads", "leases": 100}]
    shared["requeued"] = {"throttled": 0, "transient": 0}
    alone = {**results["ceiling"]["runs"][0], "hosts": 2, "shared": False, "split": 2, "fraction": 0.7}
    results["ceiling"]["runs"] = [shared, alone]

    # When the report is rendered
    rows = report.goals(results)
    text = report.render(results)

    # Then the goal rows name the configuration, the comparison says it is one, and the table has calls per lease
    labels = [what for part, what, *_ in rows if part == "2"]
    assert "the budget shared through Table storage" in labels[0]
    assert labels[2].endswith(
        "comparison: 2 hosts, no shared budget, the budget split 2 ways (`DSR_RATE_*` / 2)"
    )
    assert f"| {bucket['fraction']:.2f} | 24.6/s | 15.0 |" in text  # 1,500 calls / 100 leases
    assert "- 2 hosts: **0.95** of the ceiling, 0.00% answered 429" in text
    assert "0.70 of the ceiling" in text
