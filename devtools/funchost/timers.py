"""Timer triggers: fire on an NCRONTAB schedule, one invocation at a time per function.

As in the host's TimerListener, the next occurrence is computed after an invocation ends (a run that overruns
the next occurrence skips it, never overlaps). `run_on_startup` fires once at start; `use_monitor` (schedule
monitoring across restarts, through storage) is not kept locally. `past_due` is true when the invocation
starts more than a second after its scheduled time.

The listener reads the time and waits through a `TimerClock` (the system clock by default), so a test can run
its schedule on a clock of its own and assert the exact occurrences fired.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from azure.functions.timer import TimerRequest

from devtools.funchost.config import ConfigError
from devtools.funchost.functions import FunctionSpec

log = logging.getLogger("funchost.timers")
PAST_DUE_AFTER = 1.0  # seconds late


def schedule_timezone() -> dt.tzinfo:
    name = os.environ.get("WEBSITE_TIME_ZONE")
    if not name:
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"WEBSITE_TIME_ZONE={name!r} is not an IANA time zone name") from None


def timer_request(
    past_due: bool,
    last: dt.datetime | None = None,
    next_: dt.datetime | None = None,
    updated: dt.datetime | None = None,
) -> Any:
    """The TimerRequest a timer function gets; `updated` (default: now) is its schedule status's LastUpdated."""
    status = {}
    if last is not None:
        status["Last"] = last.isoformat()
    if next_ is not None:
        status["Next"] = next_.isoformat()
    if status:
        status["LastUpdated"] = (updated or dt.datetime.now(dt.UTC)).isoformat()
    return TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})


class TimerClock(Protocol):
    def now(self, tz: dt.tzinfo) -> dt.datetime:
        """The current time in `tz`."""
        ...

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait up to `seconds`, returning early (True) when `stop` is set."""
        ...


class SystemClock:
    """The system's time, waited out on the stop event."""

    def now(self, tz: dt.tzinfo) -> dt.datetime:
        return dt.datetime.now(tz)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(seconds)


class TimerListener:
    def __init__(
        self,
        spec: FunctionSpec,
        invoke: Callable[[FunctionSpec, Any, str], Any],
        clock: TimerClock | None = None,
    ) -> None:
        assert spec.schedule is not None
        self.spec = spec
        self.schedule = spec.schedule
        self.invoke = invoke
        self.clock: TimerClock = clock or SystemClock()
        self.tz = schedule_timezone()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.run, name=f"funchost-timer-{spec.name}", daemon=True)
        self.last: dt.datetime | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _fire(self, scheduled: dt.datetime | None, reason: str) -> None:
        now = self.clock.now(self.tz)
        late = (now - scheduled).total_seconds() if scheduled is not None else 0.0
        upcoming = self.schedule.next_after(now)
        request = timer_request(late > PAST_DUE_AFTER, self.last, upcoming, updated=now)
        self.last = now
        with contextlib.suppress(Exception):  # invoke has logged it; a timer keeps its schedule
            self.invoke(self.spec, request, reason)

    def run(self) -> None:
        """Fire on the schedule until stopped (the listener's thread runs this; a test may call it directly)."""
        if self.spec.run_on_startup and not self._stop.is_set():
            self._fire(None, "Timer fired at startup (RunOnStartup)")
        while not self._stop.is_set():
            due = self.schedule.next_after(self.clock.now(self.tz))
            log.debug("%s: next occurrence %s", self.spec.name, due.isoformat())
            while True:
                remaining = (due - self.clock.now(self.tz)).total_seconds()
                if remaining <= 0:
                    break
                if self.clock.wait(self._stop, min(remaining, 1.0)):
                    return
            self._fire(due, f"Timer fired at {due.isoformat()}")
