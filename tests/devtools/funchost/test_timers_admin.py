"""Timer triggers on schedule, and on-demand runs (admin API, run_function)."""

from __future__ import annotations

import itertools
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.funchost import FunctionHost
from tests.devtools.funchost import sample_app
from tests.devtools.funchost.conftest import HOST_KEY, make_app, start_host, wait_for


def ticks_since(start: float) -> list[dict[str, Any]]:
    return [r for r in sample_app.records("tick") if r["at"] >= start]


def test_timer_fires_on_its_schedule(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNCHOST_SAMPLE_SCHEDULE", "* * * * * *")  # every second
    host = start_host(queues=False)
    try:
        started = time.time()
        ticks = wait_for(
            lambda: ticks_since(started)[:3] if len(ticks_since(started)) >= 3 else [], timeout=6
        )
    finally:
        host.stop(timeout=5)
    times = [float(t["at"]) for t in ticks]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.7 < gap < 1.3 for gap in gaps), gaps
    assert all(t % 1.0 < 0.3 for t in times), times  # at the top of each second
    assert [t["past_due"] for t in ticks] == [False, False, False]


def test_admin_api_runs_timer_and_queue_functions_now(host: FunctionHost) -> None:
    before = len(sample_app.records("tick"))
    url = f"{host.http_url}/admin/functions/tick"
    assert requests.post(url, json={"input": ""}, timeout=10).status_code == 401
    response = requests.post(url, json={"input": ""}, headers={"x-functions-key": HOST_KEY}, timeout=10)
    assert response.status_code == 202
    wait_for(lambda: len(sample_app.records("tick")) == before + 1, what="the timer function")
    assert sample_app.records("tick")[-1]["past_due"] is False

    body = f"admin {uuid.uuid4()}"
    response = requests.post(
        f"{host.http_url}/admin/functions/WORK", json={"input": body}, params={"code": HOST_KEY}, timeout=10
    )
    assert response.status_code == 202
    [got] = wait_for(lambda: sample_app.records("work", body=body), what="the queue function")
    assert got["dequeue_count"] == 1


def test_run_function_returns_or_raises(host: FunctionHost) -> None:
    body = f"direct {uuid.uuid4()}"
    assert host.run_function("work", body) is None
    assert sample_app.records("work", body=body)[0]["function_name"] == "work"
    with pytest.raises(RuntimeError, match="failing on purpose"):
        host.run_function("work", "fail now")
    with pytest.raises(ValueError, match="HTTP function"):
        host.run_function("get_item")
    with pytest.raises(KeyError, match="nope"):
        host.run_function("nope")


def test_run_on_startup_and_function_timeout(app_env: dict[str, str], tmp_path: Path) -> None:
    ref = make_app(
        tmp_path,
        """
import time
STARTS = []

@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def warm(timer: func.TimerRequest) -> None:
    STARTS.append(timer.past_due)

@app.route(route="slow", auth_level=func.AuthLevel.ANONYMOUS)
def slow(req: func.HttpRequest) -> str:
    time.sleep(4.0)
    return "too late"
""",
    )
    (tmp_path / "host.json").write_text('{"version": "2.0", "functionTimeout": "00:00:01"}')
    host = FunctionHost(ref, root=tmp_path).start()
    try:
        module = sys.modules[ref.split(":")[0]]
        wait_for(lambda: module.STARTS == [False], what="the run-on-startup invocation")
        started = time.monotonic()
        response = requests.get(f"{host.http_url}/api/slow", timeout=10)
        elapsed = time.monotonic() - started
        assert response.status_code == 500  # the invocation timed out
        # after the 1 s functionTimeout, long before the handler's 4 s: a loaded machine cannot make it pass early
        assert 0.9 < elapsed < 3.0
        assert host.invocations["slow"] == {"succeeded": 0, "failed": 1}
    finally:
        host.stop(timeout=5)
