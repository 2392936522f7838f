"""The simulator's throttling: token buckets per (principal, subscription, host, reads | deletes), refilled
continuously, in the shape of ARM's (learn.microsoft.com/azure/azure-resource-manager/management/
request-limits-and-throttling). Off by default: the buckets still count down, so the remaining-requests headers
do, but an empty bucket refuses nothing until `RateLimit.enabled`.

The buckets read their time from `clock` (time.monotonic unless given), so a test can refill them by moving a
clock of its own instead of sleeping.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

BucketKey = tuple[str, str, str, str]  # (principal, subscription, host, "reads" | "deletes")


@dataclass
class RateLimit:
    enabled: bool = False
    read_burst: int = 250
    read_rate: float = 25.0
    delete_burst: int = 200
    delete_rate: float = 10.0

    def of(self, kind: str) -> tuple[int, float]:
        """(burst, tokens a second) of the `kind` bucket."""
        return (
            (self.delete_burst, self.delete_rate) if kind == "deletes" else (self.read_burst, self.read_rate)
        )


class _Bucket:
    __slots__ = ("last", "tokens")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.last = now


class TokenBuckets:
    """The buckets under one `RateLimit`; `configure` sets a new one and starts every bucket full again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.limit = RateLimit()
        self._buckets: dict[BucketKey, _Bucket] = {}
        self._lock = threading.Lock()

    def configure(self, limit: RateLimit) -> None:
        with self._lock:
            self.limit = limit
            self._buckets.clear()

    def draw(self, key: BucketKey) -> tuple[int, int | None]:
        """Take one call's token from `key`'s bucket: (tokens left, None) when the call is admitted, (0, whole
        seconds until a token is back) when it is throttled."""
        with self._lock:
            burst, per_second = self.limit.of(key[3])
            now = self.clock()
            bucket = self._buckets.setdefault(key, _Bucket(burst, now))
            bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.last) * per_second)
            bucket.last = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return int(bucket.tokens), None
            if not self.limit.enabled:
                return 0, None
            return 0, max(1, math.ceil((1.0 - bucket.tokens) / per_second))
