"""The shared call budget on real (keyless) Azurite, on a fake clock: limiters in several threads share one
bucket row through ETag-conditional writes and together hand out exactly the tokens the bucket holds, each with
the wait its place in the bucket gives it; with storage down they fall back to their share of the bucket without
holding anyone up, and use the shared budget again once `retry_after_failure` has passed.

Time is a FakeClock (tests/clock.py) given to the Table store, the shared budget and the limiter: the Table
round trips and the threads racing on the row are real, the refill is exact."""

from __future__ import annotations

import math
import threading
import time
import uuid

import pytest
from azure.data.tables import TableClient
from azure.identity import ManagedIdentityCredential

from devtools.azurite import Azurite
from shared.aml.budget import SharedBudget, TableBucketStore, headroom
from shared.aml.client import RateLimiter
from shared.core import settings as names
from tests.clock import FakeClock
from tests.conftest import APP_CLIENT_ID

KEY = ("0d3e1a2b-0000-4000-8000-00000000b001", "westeurope.api.azureml.ms", "reads")
OTHER_KEY = ("0d3e1a2b-0000-4000-8000-00000000b002", "northeurope.api.azureml.ms", "reads")
MAX_WAIT = 2.0
T0 = 1_700_000_000.0  # a wall-clock-like start: the row's `Updated` holds it


@pytest.fixture
def credential(identity_endpoint, tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))
    for key, value in identity_endpoint.environment().items():
        monkeypatch.setenv(key, value)
    return ManagedIdentityCredential(client_id=APP_CLIENT_ID)


def limiter(
    table_uri: str, credential, principal: str, rate: float, burst: float, clock: FakeClock, **kw
) -> RateLimiter:
    store = TableBucketStore.connect(table_uri, credential, principal, wall=clock)
    budget = SharedBudget(store, max_wait=MAX_WAIT, clock=clock, wall=clock, **kw)
    return RateLimiter(rate, burst, clock=clock, shared=budget, fallback_instances=4)


def drain(limiters: list[RateLimiter], threads_per_limiter: int) -> list[tuple[int, float]]:
    """Threads call through the limiters (all starting together) until each is refused: (limiter, wait) of
    every token handed out."""
    handed: list[tuple[int, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(len(limiters) * threads_per_limiter)

    def calls(index: int) -> None:
        start.wait()
        while True:
            wait = limiters[index].reserve(KEY)
            if wait > MAX_WAIT + 0.01:  # refused: the client would re-enqueue its work
                limiters[index].give_back(KEY)
                return
            with lock:
                handed.append((index, wait))

    threads = [
        threading.Thread(target=calls, args=(i % len(limiters),))
        for i in range(len(limiters) * threads_per_limiter)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return handed


def test_limiters_in_several_threads_share_one_bucket_and_hand_out_exactly_its_tokens(azurite, credential):
    # Given three limiters (as three instances would have), each with its own Table client, sharing one bucket
    # of 30 tokens refilled at 20 a second (27 after the headroom), and four threads calling through each
    rate, burst = 20.0, 30.0
    level = burst - headroom(rate, burst)
    clock = FakeClock(T0)
    principal = f"test-{uuid.uuid4()}"
    limiters = [limiter(azurite.url("table"), credential, principal, rate, burst, clock) for _ in range(3)]

    # When they call until refused, with the clock standing still
    first = drain(limiters, 4)

    # Then together they got the bucket and max_wait seconds of its refill, and not one token more: the n-th
    # token (over all limiters) may be spent (n - level) / rate seconds from now, as in one bucket
    handed = math.floor(level + rate * MAX_WAIT)
    assert handed == 67
    assert sorted(wait for _, wait in first) == pytest.approx(
        [max(0.0, (n - level) / rate) for n in range(1, handed + 1)], abs=1e-6
    )
    assert all(lim.shared is not None and lim.shared.stats["refused"] >= 1 for lim in limiters)  # all saw it

    # When a second of refill has come, they call until refused again
    clock.advance(1.0)
    second = drain(limiters, 4)

    # Then exactly that second's tokens were handed out, each at its place in the same bucket
    assert sorted(wait for _, wait in second) == pytest.approx(
        [(n - level) / rate - 1.0 for n in range(handed + 1, handed + 1 + int(rate))], abs=1e-6
    )

    # and the tokens came in batches: far fewer Table leases than tokens, with no fallback
    stats = [lim.shared.stats for lim in limiters if lim.shared is not None]
    assert sum(s["failures"] for s in stats) == 0
    leases = sum(s["leases"] for s in stats)
    assert sum(s["leased"] for s in stats) == handed + rate
    assert 0 < leases * 2 <= handed + rate

    # and the row is one per bucket, in table DsrBudget, written with the last lease's state
    table = TableClient(azurite.url("table"), names.BUDGET_TABLE, credential=credential)
    store = TableBucketStore(table, principal)
    row = table.get_entity(store.partition(KEY), "bucket")
    assert (row["Subscription"], row["Host"], row["Kind"]) == KEY
    assert row["Leases"] == leases
    assert (row["Tokens"], row["Updated"]) == (level - handed, T0 + 1.0)  # max_wait of refill in debt


def test_with_storage_down_the_limiter_falls_back_to_its_share_and_returns_when_storage_is_back(
    tls, credential
):
    # Given a limiter (20/s, burst 40, 4 instances configured) leasing from its own Azurite
    cert, key = tls
    storage = Azurite(cert, key).start()
    clock = FakeClock(T0)
    try:
        shared = limiter(
            storage.url("table"),
            credential,
            f"test-{uuid.uuid4()}",
            20.0,
            40.0,
            clock,
            retry_after_failure=30.0,
        )
        assert shared.shared is not None
        assert shared.reserve(KEY) == 0.0
        assert shared.shared.stats["leases"] == 1

        # When storage goes away
        storage.stop()
        started = time.monotonic()
        waits = [shared.reserve(OTHER_KEY) for _ in range(11)]
        took = time.monotonic() - started

        # Then calls are not held up (real time, generous: one refused connection, no retries) and the limiter
        # spends its quarter of the bucket: burst 10, then one token every 1/5 s
        assert took < 5.0
        assert waits == [0.0] * 10 + [pytest.approx(0.2, abs=1e-9)]
        assert shared.shared.stats["failures"] == 1  # tried once, then left alone for retry_after_failure

        # When storage is back (empty: the table is created again on the first lease)
        storage.restart()

        # Then the limiter keeps to its own share until retry_after_failure has passed
        clock.advance(29.9)
        assert shared.reserve(OTHER_KEY) == 0.0  # its own bucket has refilled
        assert shared.shared.stats == {**shared.shared.stats, "leases": 1, "failures": 1}

        # and uses the shared budget again from then on
        clock.advance(0.1)
        assert shared.reserve(OTHER_KEY) == 0.0
        assert shared.shared.stats["leases"] == 2
        assert shared.shared.stats["failures"] == 1
        table = TableClient(storage.url("table"), names.BUDGET_TABLE, credential=credential)
        [row] = table.list_entities()
        assert (row["Kind"], row["Updated"]) == ("reads", T0 + 30.0)
    finally:
        storage.stop()
