"""Timer triggers on schedule, and on-demand runs (admin API, run_function).

The schedule itself runs on a stepping clock (each wait moves its time at once): the tests assert the exact
occurrences fired, the waits asked for and past_due. Real time is left to two smoke tests: the host runs its
timers, and functionTimeout cuts a long invocation short."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.funchost import FunctionHost
from devtools.funchost.functions import TIMER_TRIGGER, FunctionSpec
from devtools.funchost.ncrontab import CronSchedule
from devtools.funchost.timers import TimerListener
from tests.devtools.funchost import sample_app
from tests.devtools.funchost.conftest import HOST_KEY, make_app, start_host, wait_for


def ticks_since(start: float) -> list[dict[str, Any]]:
    return [r for r in sample_app.records("tick") if r["at"] >= start]


class SteppingClock:
    """A TimerClock whose waits move its time (plus `oversleep`, as a suspended machine would) at once."""

    def __init__(self, start: dt.datetime, oversleep: float = 0.0) -> None:
        self.time = start
        self.oversleep = oversleep
        self.waits: list[float] = []

    def now(self, tz: dt.tzinfo) -> dt.datetime:
        return self.time.astimezone(tz)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.time += dt.timedelta(seconds=seconds + self.oversleep)
        return stop.is_set()


START = dt.datetime(2024, 1, 8, 9, 0, 0, 250_000, tzinfo=dt.UTC)


def run_timer(
    clock: SteppingClock, runs: int, duration: float = 0.1, schedule: str = "* * * * * *", **spec: Any
) -> list[tuple[dt.datetime, Any, str]]:
    """Run a timer listener on `clock` until it has fired `runs` times, each run taking `duration` seconds of
    the clock: (when it fired, the TimerRequest, the reason) per run."""
    fired: list[tuple[dt.datetime, Any, str]] = []

    def invoke(_spec: FunctionSpec, request: Any, reason: str) -> None:
        fired.append((clock.time, request, reason))
        clock.time += dt.timedelta(seconds=duration)
        if len(fired) == runs:
            listener.stop()

    tick = FunctionSpec(
        "tick",
        TIMER_TRIGGER,
        "timer",
        lambda timer: None,
        False,
        False,
        schedule=CronSchedule.parse(schedule),
        **spec,
    )
    listener = TimerListener(tick, invoke, clock=clock)
    listener.run()
    return fired


def at(seconds: float) -> dt.datetime:
    return START.replace(microsecond=0) + dt.timedelta(seconds=seconds)


def test_timer_fires_at_each_occurrence_of_its_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBSITE_TIME_ZONE", raising=False)
    clock = SteppingClock(START)
    fired = run_timer(clock, runs=3)
    assert [when for when, _, _ in fired] == [at(1), at(2), at(3)]  # at the top of each second
    assert clock.waits == pytest.approx([0.75, 0.9, 0.9])  # up to the next occurrence, never past it
    assert [request.past_due for _, request, _ in fired] == [False, False, False]
    assert [reason for _, _, reason in fired] == [f"Timer fired at {at(s).isoformat()}" for s in (1, 2, 3)]
    assert [request.schedule_status for _, request, _ in fired] == [
        {"Next": at(2).isoformat(), "LastUpdated": at(1).isoformat()},
        {"Last": at(1).isoformat(), "Next": at(3).isoformat(), "LastUpdated": at(2).isoformat()},
        {"Last": at(2).isoformat(), "Next": at(4).isoformat(), "LastUpdated": at(3).isoformat()},
    ]


def test_a_run_that_overruns_skips_the_occurrences_it_covered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBSITE_TIME_ZONE", raising=False)
    fired = run_timer(SteppingClock(START), runs=3, duration=2.5)
    assert [when for when, _, _ in fired] == [at(1), at(4), at(7)]  # never overlapping, never catching up


def test_a_run_more_than_a_second_late_is_past_due(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBSITE_TIME_ZONE", raising=False)
    # the wait for 1 s (0.75 s away) comes back 0.9 s, then 1.5 s, later than asked
    on_time = run_timer(SteppingClock(START, oversleep=0.9), runs=1)
    late = run_timer(SteppingClock(START, oversleep=1.5), runs=1)
    assert [(when, request.past_due) for when, request, _ in on_time + late] == [
        (at(1.9), False),
        (at(2.5), True),
    ]


def test_run_on_startup_fires_once_before_the_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBSITE_TIME_ZONE", raising=False)
    fired = run_timer(SteppingClock(START), runs=2, run_on_startup=True)
    assert [(when, request.past_due, reason) for when, request, reason in fired] == [
        (START, False, "Timer fired at startup (RunOnStartup)"),
        (at(1), False, f"Timer fired at {at(1).isoformat()}"),
    ]


def test_the_host_runs_its_timers(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Real time, a smoke test: the host starts a listener per timer function and it fires on its schedule
    monkeypatch.setenv("FUNCHOST_SAMPLE_SCHEDULE", "* * * * * *")  # every second
    host = start_host(queues=False)
    try:
        started = time.time()
        ticks = wait_for(
            lambda: ticks_since(started)[:2] if len(ticks_since(started)) >= 2 else [], timeout=15
        )
    finally:
        host.stop(timeout=5)
    upcoming = [dt.datetime.fromisoformat(t["status"]["Next"]) for t in ticks]
    assert all(
        when.microsecond == 0 and when.timestamp() > t["at"] for when, t in zip(upcoming, ticks, strict=True)
    )
    assert dt.datetime.fromisoformat(ticks[1]["status"]["Last"]).timestamp() < ticks[1]["at"]


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
import threading
STARTS = []
RELEASE = threading.Event()

@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def warm(timer: func.TimerRequest) -> None:
    STARTS.append(timer.past_due)

@app.route(route="slow", auth_level=func.AuthLevel.ANONYMOUS)
def slow(req: func.HttpRequest) -> str:
    RELEASE.wait(30.0)
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
        # after the 1 s functionTimeout (real time: a loaded machine cannot make it pass early), long before the
        # handler would return (it waits for RELEASE, set only below)
        assert 0.9 < elapsed < 20.0
        assert host.invocations["slow"] == {"succeeded": 0, "failed": 1}
    finally:
        module.RELEASE.set()
        host.stop(timeout=5)
