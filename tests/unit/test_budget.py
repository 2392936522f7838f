"""The shared call budget's arithmetic: refill, leases into debt, handing tokens out, batch sizes, fail-open.

No I/O: the store is a scripted stand-in that applies the same `take` as the Table store; the Table store itself
runs against Azurite in tests/integration/test_budget.py.
"""

from __future__ import annotations

import pytest

from shared.aml.budget import (
    Bucket,
    BudgetUnavailableError,
    Grant,
    Lease,
    SharedBudget,
    batch_cap,
    batch_size,
    headroom,
    spend_rate,
    take,
)
from shared.aml.client import RateLimiter
from tests.clock import FakeClock

KEY = ("sub-1", "westeurope.api.azureml.ms", "reads")


class ScriptedStore:
    """One bucket per key, leased with `take` at the clock's time; `down` makes every lease fail."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.buckets: dict[tuple[str, str, str], Bucket] = {}
        self.wants: list[int] = []
        self.down = False

    def lease(self, key, want, rate, burst, max_wait):
        if self.down:
            raise BudgetUnavailableError("ServiceRequestError: connection refused")
        self.wants.append(want)
        now = self.clock()
        bucket = self.buckets.get(key, Bucket(float(burst), now))
        self.buckets[key], grant = take(bucket, want, now, rate, burst, max_wait)
        return grant


def test_a_bucket_refills_at_its_rate_up_to_its_burst_and_its_time_never_goes_back():
    bucket = Bucket(tokens=-3.0, updated=100.0)

    assert bucket.refilled(102.0, rate=2.0, burst=10) == Bucket(1.0, 102.0)
    assert bucket.refilled(200.0, rate=2.0, burst=10) == Bucket(10.0, 200.0)
    # a process whose clock is behind the last writer's refills nothing and leaves the time where it was
    assert bucket.refilled(99.0, rate=2.0, burst=10) == Bucket(-3.0, 100.0)


def test_a_lease_takes_what_is_there_then_runs_into_debt_up_to_max_wait():
    # Given a bucket with 3.5 tokens, 10 a second, at most 1 s of debt
    full = Bucket(3.5, 0.0)

    # When 8 are leased, all 8 are granted: 3 now, the others as the refill reaches them
    after, grant = take(full, 8, now=0.0, rate=10.0, burst=50, max_wait=1.0)
    assert (grant.tokens, grant.level, after.tokens) == (8, 3.5, -4.5)
    assert [grant.ready_after(k) for k in (1, 3, 4, 8)] == pytest.approx([0.0, 0.0, 0.05, 0.45])

    # When 20 more are asked for, only what arrives within 1 s is granted (level -4.5 + 10 = 5.5 -> 5)
    deeper, second = take(after, 20, now=0.0, rate=10.0, burst=50, max_wait=1.0)
    assert (second.tokens, deeper.tokens) == (5, pytest.approx(-9.5))
    assert second.ready_after(5) == pytest.approx(0.95)

    # Then the next lease is refused, and says how long until a token could be had
    same, refused = take(deeper, 4, now=0.0, rate=10.0, burst=50, max_wait=1.0)
    assert (refused.tokens, same.tokens) == (0, pytest.approx(-9.5))
    assert refused.ready_after(1) == pytest.approx(1.05)


def test_tokens_usable_by_any_time_never_exceed_burst_plus_rate_times_elapsed():
    # Given three processes leasing in turn from one bucket (burst 20, 10/s), each as much as it may
    rate, burst = 10.0, 20.0
    bucket = Bucket(burst, 0.0)
    usable: list[float] = []
    now = 0.0
    for step in range(300):
        now = step * 0.013
        bucket, grant = take(bucket, 7, now, rate, burst, max_wait=2.0)
        usable += [now + grant.ready_after(k) for k in range(1, grant.tokens + 1)]

    # Then by every moment t, at most burst + rate x t tokens could have been spent
    usable.sort()
    assert len(usable) > burst + rate * now * 0.9  # and the bucket was kept busy
    for i, t in enumerate(usable, start=1):
        assert i <= burst + rate * t + 1e-6, (i, t)


def test_a_lease_hands_out_its_tokens_in_order_and_lapses_a_second_after_the_last_one():
    lease = Lease(start=10.0, level=2.0, granted=4, rate=10.0)

    assert [lease.take(10.0) for _ in range(4)] == pytest.approx([0.0, 0.0, 0.1, 0.2])
    assert lease.take(10.0) is None  # all handed out
    lease.give_back()  # the last caller did not use its token
    assert lease.take(10.0) == pytest.approx(0.2)

    idle = Lease(start=10.0, level=2.0, granted=4, rate=10.0)
    assert idle.expires == pytest.approx(11.2)
    assert idle.take(11.3) is None  # its tokens lapsed: an old lease cannot add to a fresh burst


def test_the_services_remaining_count_trims_a_lease_only_when_clearly_lower():
    lease = Lease(start=0.0, level=10.0, granted=10, rate=10.0)
    lease.take(0.0)

    # Given 9 tokens ready now: a count of 8 is within the slack (the count is a few ms old), 3 is not
    assert lease.trim(remaining=8, now=0.0, slack=2) == 0
    assert lease.trim(remaining=3, now=0.0, slack=2) == 6

    # Then 3 are ready now and the other 6 arrive as the refill brings them, as in the service's bucket
    assert lease.ready_now(0.0) == 3
    assert [lease.take(0.0) for _ in range(10)] == pytest.approx(
        [0.0] * 3 + [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, None]
    )


def test_the_shared_bucket_keeps_a_little_headroom_below_the_services_burst():
    assert headroom(rate=25, burst=250) == pytest.approx(5.0)  # 0.2 s of refill: calls in flight
    assert headroom(rate=25, burst=20) == pytest.approx(2.0)  # at most a tenth of the burst
    assert headroom(rate=2, burst=200) == pytest.approx(1.0)  # at least one call


def test_the_batch_follows_the_processs_own_call_rate_within_its_cap():
    assert batch_cap(rate=25, burst=250) == 12  # half a second of refill
    assert batch_cap(rate=25, burst=8) == 2  # a quarter of a small burst
    assert batch_size(None, rate=25, burst=250) == 3  # no estimate yet: a quarter of the cap
    assert batch_size(4.0, rate=25, burst=250) == 2
    assert batch_size(1000.0, rate=25, burst=250) == 12
    assert batch_size(0.1, rate=25, burst=250) == 1
    assert spend_rate(None, handed_out=6, elapsed=0.5) == pytest.approx(12.0)
    assert spend_rate(12.0, handed_out=2, elapsed=0.5) == pytest.approx(8.0)
    assert spend_rate(None, handed_out=5, elapsed=0.0) == pytest.approx(100.0)  # counted over 50 ms at least


def test_the_limiter_spends_leased_tokens_and_leases_again_only_when_they_are_gone():
    # Given a shared bucket of 20 at 10/s and a limiter that leases from it
    clock = FakeClock()
    store = ScriptedStore(clock)
    budget = SharedBudget(store, max_wait=5.0, clock=clock, wall=clock)
    limiter = RateLimiter(read_rate=10, read_burst=20, clock=clock, shared=budget, fallback_instances=4)

    # When 18 calls go out at once (the burst less its headroom of 2), they are all immediate, in a few leases
    assert [limiter.reserve(KEY) for _ in range(18)] == [0.0] * 18
    assert store.wants == [1, 5, 5, 5, 5]  # cap 5 (a quarter of the burst); a quarter of it to start

    # Then the next calls wait for the refill, in order, exactly as one bucket of 18 at 10/s would make them
    assert [limiter.reserve(KEY) for _ in range(5)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert budget.stats["leases"] == 6


def test_a_refused_lease_answers_a_wait_past_max_wait_and_give_back_balances_it():
    # Given a bucket (10 less a headroom of 1, 10/s) already leased 1 s ahead, the most a caller may wait
    clock = FakeClock()
    store = ScriptedStore(clock)
    budget = SharedBudget(store, max_wait=1.0, clock=clock, wall=clock)
    limiter = RateLimiter(read_rate=10, read_burst=10, clock=clock, shared=budget)
    waits = [limiter.reserve(KEY) for _ in range(19)]
    assert waits[-1] == pytest.approx(1.0)

    # When one more caller asks, the lease is refused: its wait is past max_wait, so the client gives it back
    refused = limiter.reserve(KEY)
    assert refused > 1.0
    limiter.give_back(KEY)
    assert budget.stats["refused"] == 1

    # Then once the refill has repaid the debt, the next token is one refill step away, with nothing owed
    clock.advance(1.0)
    assert limiter.reserve(KEY) == pytest.approx(0.1)


def test_when_the_shared_budget_fails_the_limiter_falls_back_to_its_share_of_the_bucket():
    # Given a shared budget whose store is down, and 4 instances configured for the fallback
    clock = FakeClock()
    store = ScriptedStore(clock)
    store.down = True
    budget = SharedBudget(store, max_wait=5.0, clock=clock, wall=clock, retry_after_failure=30.0)
    limiter = RateLimiter(read_rate=20, read_burst=40, clock=clock, shared=budget, fallback_instances=4)

    # When calls go out, they get this process's quarter: a burst of 10, then 5 a second
    waits = [limiter.reserve(KEY) for _ in range(11)]
    assert waits == [0.0] * 10 + [pytest.approx(0.2)]
    assert budget.stats["failures"] == 1  # the store was tried once, not on every call
    assert budget.available() is False

    # Then after retry_after_failure the shared budget is tried again, and used once it answers
    store.down = False
    clock.advance(30.0)
    assert limiter.reserve(KEY) == 0.0
    assert store.buckets[KEY].tokens < 40
    assert budget.stats["leases"] == 1


def test_without_a_shared_budget_the_limiter_keeps_its_whole_per_process_buckets():
    limiter = RateLimiter(read_rate=20, read_burst=40, clock=FakeClock(), fallback_instances=4)

    assert limiter.own_limits["reads"] == (20, 40)
    assert [limiter.reserve(KEY) for _ in range(41)][-1] == pytest.approx(0.05)


def test_a_grant_with_nothing_in_it_is_refused():
    grant = Grant(tokens=0, level=-12.0, rate=4.0, at=0.0)
    assert grant.ready_after(1) == pytest.approx(3.25)
