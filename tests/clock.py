"""A fake clock for tests whose verdict would otherwise hang on wall-clock timing.

Pass it where the code under test takes a `clock: Callable[[], float]` (and its `sleep` where it takes one):
time moves only when the test says so, so the test can assert exact values (tokens left, waits computed, calls
admitted) instead of windows around real elapsed seconds.
"""

from __future__ import annotations

import threading


class FakeClock:
    """Seconds that move only by `advance` (or `sleep`, which also records what was slept); safe across threads."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += max(0.0, seconds)
