"""A call budget shared by every instance of the app: the service's token buckets, kept in Table storage.

Azure Resource Manager and the Azure ML data-plane hosts throttle per (principal, subscription, host) with token
buckets (reads: 250, refilled at 25 a second). Every instance of the Function App calls with the same identity,
so they all draw on the same buckets; a limiter per process cannot know what the others spend. The v2 (ARM)
families (catalog V1-V36) and the computes at the v2 api-version are ARM reads on management.azure.com: they
draw on the same ARM read bucket as E1-E4. Here each
bucket has one row in table `DsrBudget`, and each process leases small batches of tokens from it:

- A lease refills the row by the time elapsed since it was last written, takes a batch and writes the row back
  with its ETag (If-Match). Two processes that lease at the same moment cannot both write over the same state:
  the loser re-reads and takes from what is left. No coordinator, no lock that a crash could leave behind. A
  process keeps the row it wrote last and writes against that ETag first, so when it is the only one leasing,
  a lease is one round trip.
- The bucket may run into debt, up to `max_wait` seconds of refill: token k of a lease taken at level L becomes
  usable (k - L) / rate seconds after the lease, when the refill reaches it. Tokens are handed out in the order
  they were leased, and whatever every process holds, the tokens usable by any time t never exceed
  burst + rate x (t - t0). A lease that would go deeper is refused: the caller's wait is then longer than
  `max_wait`, so it re-enqueues its work instead of sleeping. The bucket holds a little less than the service's
  burst (`headroom`: calls in flight are counted here before the service counts them).
- The per-process `RateLimiter` (shared/aml/client.py) stays the fast path: it spends the leased tokens one call at
  a time and only comes back here when they are gone. A batch covers about half a second of the process's own
  recent call rate (at most a quarter of the burst or half a second of refill): one Table round trip for a
  batch of calls, small enough that tokens it leases and does not use (they lapse a second after the last one
  became usable) cost little.
- The service's `x-ms-ratelimit-remaining-*` count still rules: when it says clearly fewer tokens are left than
  a lease holds ready (another tool, another app with the same identity), the lease's other tokens wait for
  the refill. A 429's Retry-After is still waited out (or re-enqueued) by the client.
- Fail open: when Table storage cannot be reached (or answers an error), `reserve` answers None for
  `retry_after_failure` seconds, and the limiter spends its per-process buckets divided by the configured
  instance count (`DSR_RATE_FALLBACK_INSTANCES`). Storage calls here have short timeouts and no retries: the
  product is never held up by its budget.

Time: the rows hold wall-clock seconds; `Updated` only moves forward, so a process whose clock runs behind
refills nothing until its clock catches up, and one whose clock runs ahead gains at most its lead x rate once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableClient, UpdateMode

from shared.core import settings as names
from shared.core.transport import TokenCredential, fixed_tls_verify

log = logging.getLogger(__name__)

BucketKey = tuple[str, str, str]  # (subscription, host, "reads" | "deletes"): RateLimiter.key

LEASE_SECONDS: Final = 0.5  # a batch covers about this long of the process's own call rate (or of the refill)
LEASE_TTL_SECONDS: Final = 1.0  # leased tokens not handed out this long after the last became usable lapse
IN_FLIGHT_SECONDS: Final = (
    0.2  # how much earlier than the service a call is counted here, at most (see headroom)
)
RETRY_AFTER_FAILURE_SECONDS: Final = 30.0  # after a storage failure, the fallback is used this long
STORE_TIMEOUT_SECONDS: Final = 2.0  # connect and read timeout of one Table call
MAX_ATTEMPTS: Final = 10  # ETag conflicts in a row before the lease gives up (the fallback takes over)
ROW: Final = "bucket"


class BudgetUnavailableError(Exception):
    """The shared budget could not be read or written (storage unreachable, an error answer, a malformed row)."""


# -- the arithmetic ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bucket:
    """One shared bucket: its level (negative = leased ahead of the refill) when it was last written."""

    tokens: float
    updated: float  # wall-clock seconds; never moves backwards

    def refilled(self, now: float, rate: float, burst: float) -> Bucket:
        elapsed = max(0.0, now - self.updated)
        return Bucket(min(float(burst), self.tokens + elapsed * rate), max(self.updated, now))


@dataclass(frozen=True)
class Grant:
    """What a lease got: `tokens` (0: refused) taken from a bucket at `level`, at wall-clock time `at`."""

    tokens: int
    level: float
    rate: float
    at: float

    def ready_after(self, k: int) -> float:
        """Seconds after the lease when its k-th token (1-based) may be spent."""
        return max(0.0, (k - self.level) / self.rate)


def take(
    bucket: Bucket, want: int, now: float, rate: float, burst: float, max_wait: float
) -> tuple[Bucket, Grant]:
    """Refill `bucket` to `now` and lease up to `want` tokens, going no deeper into debt than `max_wait`
    seconds of refill. Returns the bucket to write (unchanged level when refused) and the grant."""
    current = bucket.refilled(now, rate, burst)
    room = current.tokens + rate * max_wait  # tokens whose refill arrives within max_wait
    tokens = max(0, min(want, math.floor(room + 1e-9)))
    return (
        Bucket(current.tokens - tokens, current.updated),
        Grant(tokens=tokens, level=current.tokens, rate=rate, at=now),
    )


def headroom(rate: float, burst: float) -> float:
    """Tokens the shared bucket keeps short of the service's burst. A call is counted here when it leaves and
    there when it arrives; while both buckets are full their refill is lost at slightly different moments, so
    after an idle spell this bucket could be a few calls in flight ahead of the service's. The refill of
    IN_FLIGHT_SECONDS covers them (at most a tenth of the burst)."""
    return min(burst / 10, max(1.0, rate * IN_FLIGHT_SECONDS))


def batch_cap(rate: float, burst: float) -> int:
    """The most tokens one lease takes: a quarter of the burst, or LEASE_SECONDS of refill if fewer."""
    return max(1, math.floor(min(burst / 4, rate * LEASE_SECONDS)))


def batch_size(estimate: float | None, rate: float, burst: float) -> int:
    """Tokens to lease for a process that spent about `estimate` tokens a second lately (None: no idea yet)."""
    cap = batch_cap(rate, burst)
    if estimate is None:
        return max(1, cap // 4)
    return max(1, min(cap, math.ceil(estimate * LEASE_SECONDS)))


def spend_rate(estimate: float | None, handed_out: int, elapsed: float) -> float | None:
    """The process's call rate on a bucket: `handed_out` tokens of its last lease in `elapsed` seconds, averaged
    with what it was before."""
    observed = handed_out / max(elapsed, 0.05)
    return observed if estimate is None else (estimate + observed) / 2


@dataclass
class Lease:
    """The tokens of one grant, as the process hands them out (monotonic clock)."""

    start: float  # when the grant was made
    level: float
    granted: int
    rate: float
    spent: int = 0

    def ready(self, k: int) -> float:
        return self.start + max(0.0, (k - self.level) / self.rate)

    @property
    def expires(self) -> float:
        return self.ready(max(self.granted, 1)) + LEASE_TTL_SECONDS

    def take(self, now: float) -> float | None:
        """Hand out the next token: seconds to wait before spending it, or None when none is left or it lapsed."""
        if self.spent >= self.granted or now > self.expires:
            return None
        self.spent += 1
        return max(0.0, self.ready(self.spent) - now)

    def give_back(self) -> None:
        self.spent = max(0, self.spent - 1)

    def ready_now(self, now: float) -> int:
        """Tokens not handed out yet that could be spent right now."""
        reached = min(self.granted, math.floor(self.level + (now - self.start) * self.rate + 1e-9))
        return max(0, reached - self.spent)

    def trim(self, remaining: float, now: float, slack: float) -> int:
        """The service says `remaining` tokens are left: when this lease holds more than that (and `slack`) ready
        now, only `remaining` stay ready and the others arrive as the refill brings them, as in a bucket the
        service's count pulled down. Returns how many tokens were pushed back."""
        ready = self.ready_now(now)
        if ready <= remaining + slack:
            return 0
        pushed = ready - max(0, math.floor(remaining))
        self.level -= pushed
        return pushed


# -- the store -----------------------------------------------------------------------------------------------
class BucketStore(Protocol):
    def lease(self, key: BucketKey, want: int, rate: float, burst: float, max_wait: float) -> Grant: ...


@dataclass(frozen=True)
class _Row:
    bucket: Bucket
    etag: str
    leases: int


class TableBucketStore:
    """The buckets as rows of table `DsrBudget`: PartitionKey = a hash of (principal, subscription, host, kind)."""

    def __init__(self, table: TableClient, principal: str, wall: Callable[[], float] = time.time) -> None:
        self.table = table
        self.principal = principal
        self.wall = wall
        self._rows: dict[str, _Row] = {}  # the row this process wrote last, with its ETag
        self._lock = threading.Lock()
        self._rng = random.Random()

    @classmethod
    def connect(
        cls, table_service_uri: str, credential: TokenCredential, principal: str, **kwargs: Any
    ) -> TableBucketStore:
        """A client of its own: short timeouts and no retries (a lease that fails falls back, it never waits)."""
        verify = fixed_tls_verify()
        fixed: dict[str, Any] = (
            {} if verify is None else {"use_env_settings": False, "connection_verify": verify}
        )
        table = TableClient(
            table_service_uri,
            names.BUDGET_TABLE,
            credential=credential,
            retry_total=0,
            connection_timeout=STORE_TIMEOUT_SECONDS,
            read_timeout=STORE_TIMEOUT_SECONDS,
            **fixed,
        )
        return cls(table, principal, **kwargs)

    def partition(self, key: BucketKey) -> str:
        return hashlib.sha256("|".join((self.principal, *key)).encode()).hexdigest()[:32]

    def lease(self, key: BucketKey, want: int, rate: float, burst: float, max_wait: float) -> Grant:
        pk = self.partition(key)
        try:
            for attempt in range(MAX_ATTEMPTS):
                with self._lock:
                    known = self._rows.get(pk)
                if known is None:
                    known = self._read(pk)
                now = self.wall()
                if known is None:  # the first lease ever: a full bucket
                    bucket, grant = take(Bucket(float(burst), now), want, now, rate, burst, max_wait)
                    if self._create(pk, key, bucket, grant):
                        return grant
                    continue
                bucket, grant = take(known.bucket, want, now, rate, burst, max_wait)
                if grant.tokens == 0:  # refused; a newer row is only deeper in debt
                    return grant
                if self._replace(pk, key, bucket, grant, known):
                    return grant
                if attempt >= 2:  # others are leasing too: step aside for a moment
                    time.sleep(self._rng.uniform(0, 0.005 * attempt))
        except (AzureError, OSError, ValueError) as exc:  # unreachable, refused, or an answer it cannot use
            with self._lock:
                self._rows.pop(pk, None)
            raise BudgetUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        raise BudgetUnavailableError(f"{MAX_ATTEMPTS} conflicting writes in a row")

    def _read(self, pk: str) -> _Row | None:
        try:
            entity = self.table.get_entity(pk, ROW)
        except ResourceNotFoundError as exc:
            if _table_missing(exc):
                self._create_table()
            return None
        try:
            bucket = Bucket(float(entity["Tokens"]), float(entity["Updated"]))
            return _Row(bucket, str(entity.metadata["etag"]), int(entity.get("Leases", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise BudgetUnavailableError(f"malformed budget row: {exc}") from exc

    def _entity(self, pk: str, key: BucketKey, bucket: Bucket, grant: Grant, leases: int) -> dict[str, Any]:
        subscription, host, kind = key
        return {
            "PartitionKey": pk,
            "RowKey": ROW,
            "Subscription": subscription,
            "Host": host,
            "Kind": kind,
            "Tokens": float(bucket.tokens),
            "Updated": float(bucket.updated),
            "Rate": float(grant.rate),
            "Leases": leases,  # leases so far: calls / leases is what one Table round trip buys
        }

    def _create(self, pk: str, key: BucketKey, bucket: Bucket, grant: Grant) -> bool:
        try:
            meta = self.table.create_entity(self._entity(pk, key, bucket, grant, 1))
        except ResourceExistsError:
            return False
        except ResourceNotFoundError as exc:
            if not _table_missing(exc):
                raise
            self._create_table()
            return False
        self._remember(pk, _Row(bucket, str(meta["etag"]), 1))
        return True

    def _replace(self, pk: str, key: BucketKey, bucket: Bucket, grant: Grant, known: _Row) -> bool:
        try:
            meta = self.table.update_entity(
                self._entity(pk, key, bucket, grant, known.leases + 1),
                mode=UpdateMode.REPLACE,
                etag=known.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):  # someone else leased (or the row is gone)
            with self._lock:
                self._rows.pop(pk, None)
            return False
        self._remember(pk, _Row(bucket, str(meta["etag"]), known.leases + 1))
        return True

    def _remember(self, pk: str, row: _Row) -> None:
        with self._lock:
            self._rows[pk] = row

    def _create_table(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self.table.create_table()


def _table_missing(exc: ResourceNotFoundError) -> bool:
    return getattr(exc, "error_code", None) == "TableNotFound"


# -- the process's side ----------------------------------------------------------------------------------
@dataclass
class _KeyState:
    lock: threading.Lock
    lease: Lease | None = None
    estimate: float | None = None


class SharedBudget:
    """Leases from the shared buckets and hands their tokens out to this process's calls."""

    def __init__(
        self,
        store: BucketStore,
        *,
        max_wait: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        retry_after_failure: float = RETRY_AFTER_FAILURE_SECONDS,
    ) -> None:
        self.store = store
        self.max_wait = max_wait
        self.clock = clock
        self.wall = wall
        self.retry_after_failure = retry_after_failure
        self.stats = {"leases": 0, "leased": 0, "refused": 0, "lapsed": 0, "trimmed": 0, "failures": 0}
        self._keys: dict[BucketKey, _KeyState] = {}
        self._lock = threading.Lock()
        self._down_until: float | None = None

    @classmethod
    def connect(
        cls, table_service_uri: str, credential: TokenCredential, *, principal: str, max_wait: float
    ) -> SharedBudget:
        return cls(TableBucketStore.connect(table_service_uri, credential, principal), max_wait=max_wait)

    def available(self) -> bool:
        with self._lock:
            if self._down_until is None:
                return True
            if self.clock() >= self._down_until:
                self._down_until = None
                log.info("shared call budget: trying Table storage again")
                return True
            return False

    def _state(self, key: BucketKey) -> _KeyState:
        with self._lock:
            state = self._keys.get(key)
            if state is None:
                state = self._keys[key] = _KeyState(threading.Lock())
            return state

    def reserve(self, key: BucketKey, rate: float, burst: float) -> float | None:
        """Take one token of `key`'s shared bucket: seconds to wait before spending it, or None when the shared
        budget is unavailable (the caller falls back to its own)."""
        if not self.available():
            return None
        state = self._state(key)
        with state.lock:  # one lease at a time per bucket: the other callers need its tokens anyway
            now = self.clock()
            previous = state.lease
            if previous is not None:
                wait = previous.take(now)
                if wait is not None:
                    return wait
                state.estimate = spend_rate(state.estimate, previous.spent, now - previous.start)
                if previous.granted > previous.spent:
                    self.stats["lapsed"] += previous.granted - previous.spent
            want = batch_size(state.estimate, rate, burst)
            mono, wall = self.clock(), self.wall()
            try:
                grant = self.store.lease(key, want, rate, burst - headroom(rate, burst), self.max_wait)
            except BudgetUnavailableError as exc:
                self._failed(exc)
                state.lease = None
                return None
            lease = Lease(mono + (grant.at - wall), grant.level, grant.tokens, rate)
            state.lease = lease
            if grant.tokens == 0:
                # Refused: a token that would come later than max_wait. It is handed out on credit (so that the
                # caller's give_back balances it) with a wait past max_wait: the caller re-enqueues its work.
                self.stats["refused"] += 1
                lease.spent = 1
                return max(lease.ready(1) - self.clock(), self.max_wait + 1 / rate)
            self.stats["leases"] += 1
            self.stats["leased"] += grant.tokens
            lease.spent = 1  # the first token is this caller's, however long the lease took to arrive
            return max(0.0, lease.ready(1) - self.clock())

    def give_back(self, key: BucketKey) -> bool:
        """Return a token handed out by `reserve` and not spent; False when the shared budget is not in use."""
        if not self.available():
            return False
        state = self._state(key)
        with state.lock:
            if state.lease is None:
                return False
            state.lease.give_back()
            return True

    def observe(self, key: BucketKey, remaining: float) -> None:
        """The service's own count of what is left in the bucket (x-ms-ratelimit-remaining-*)."""
        state = self._state(key)
        if not state.lock.acquire(blocking=False):  # a lease is on its way: this count is already old
            return
        try:
            if state.lease is not None:
                rate = state.lease.rate
                self.stats["trimmed"] += state.lease.trim(remaining, self.clock(), slack=1 + rate * 0.1)
        finally:
            state.lock.release()

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self.stats["failures"] += 1
            first = self._down_until is None
            self._down_until = self.clock() + self.retry_after_failure
        if first:
            log.warning(
                "shared call budget unavailable (%s): using the per-process fallback for %.0f s",
                exc,
                self.retry_after_failure,
            )
