"""The shared call budget on real (keyless) Azurite: limiters in several threads share one bucket row through
ETag-conditional writes and together stay under burst + rate x elapsed; with storage down they fall back to their
share of the bucket without holding anyone up, and use the shared budget again when storage is back."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from azure.data.tables import TableClient
from azure.identity import ManagedIdentityCredential

from devtools.azurite import Azurite
from shared.aml.budget import SharedBudget, TableBucketStore
from shared.aml.client import RateLimiter
from shared.core import settings as names
from tests.conftest import APP_CLIENT_ID

KEY = ("0d3e1a2b-0000-4000-8000-00000000b001", "westeurope.api.azureml.ms", "reads")
OTHER_KEY = ("0d3e1a2b-0000-4000-8000-00000000b002", "northeurope.api.azureml.ms", "reads")


@pytest.fixture
def credential(identity_endpoint, tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))
    for key, value in identity_endpoint.environment().items():
        monkeypatch.setenv(key, value)
    return ManagedIdentityCredential(client_id=APP_CLIENT_ID)


def limiter(table_uri: str, credential, principal: str, rate: float, burst: float, **kw) -> RateLimiter:
    store = TableBucketStore.connect(table_uri, credential, principal)
    budget = SharedBudget(store, max_wait=kw.pop("max_wait", 2.0), **kw)
    return RateLimiter(rate, burst, shared=budget, fallback_instances=4)


def test_limiters_in_several_threads_share_one_bucket_and_never_exceed_it(azurite, credential):
    # Given three limiters (as three instances would have), each with its own Table client, sharing one bucket
    # of 30 tokens refilled at 20 a second, and four threads calling through each for 4 seconds
    rate, burst, seconds = 20.0, 30.0, 4.0
    principal = f"test-{uuid.uuid4()}"
    limiters = [limiter(azurite.url("table"), credential, principal, rate, burst) for _ in range(3)]
    usable: list[tuple[int, float]] = []  # (limiter, when its token may be spent)
    lock = threading.Lock()
    t0 = time.monotonic()

    def calls(index: int) -> None:
        while time.monotonic() - t0 < seconds:
            wait = limiters[index].reserve(KEY)
            ready = time.monotonic() + wait  # no earlier than the limiter said
            if wait > 2.0:  # the client would re-enqueue its work
                limiters[index].give_back(KEY)
                time.sleep(0.05)
                continue
            with lock:
                usable.append((index, ready))
            time.sleep(wait)

    threads = [threading.Thread(target=calls, args=(i % 3,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - t0

    # Then at every moment, the tokens usable so far (counted over all limiters) are within the bucket
    times = sorted(ready for _, ready in usable)
    for count, ready in enumerate(times, start=1):
        assert count <= burst + rate * (ready - t0) + 1, (count, round(ready - t0, 3))
    # and the bucket was used, not starved (a generous bound), by every limiter
    assert len(times) >= 0.6 * (burst + rate * seconds)
    assert len(times) <= burst + rate * elapsed + 1
    assert {index for index, _ in usable} == {0, 1, 2}
    # and the tokens came in batches: far fewer Table leases than tokens
    stats = [lim.shared.stats for lim in limiters if lim.shared is not None]
    assert sum(s["failures"] for s in stats) == 0
    leases = sum(s["leases"] for s in stats)
    assert 0 < leases * 2 <= sum(s["leased"] for s in stats)

    # and the row is one per bucket, in table DsrBudget, written with the last lease's state
    table = TableClient(azurite.url("table"), names.BUDGET_TABLE, credential=credential)
    store = TableBucketStore(table, principal)
    row = table.get_entity(store.partition(KEY), "bucket")
    assert (row["Subscription"], row["Host"], row["Kind"]) == KEY
    assert row["Leases"] == leases
    assert row["Tokens"] < burst  # leased down (or into debt) and not yet refilled


def test_with_storage_down_the_limiter_falls_back_to_its_share_and_returns_when_storage_is_back(
    tls, credential
):
    # Given a limiter (20/s, burst 40, 4 instances configured) leasing from its own Azurite
    cert, key = tls
    storage = Azurite(cert, key).start()
    try:
        shared = limiter(
            storage.url("table"), credential, f"test-{uuid.uuid4()}", 20.0, 40.0, retry_after_failure=1.0
        )
        assert shared.shared is not None
        assert shared.reserve(KEY) == 0.0
        assert shared.shared.stats["leases"] == 1

        # When storage goes away
        storage.stop()
        started = time.monotonic()
        waits = [shared.reserve(OTHER_KEY) for _ in range(11)]
        took = time.monotonic() - started

        # Then calls are not held up: the limiter spends its quarter of the bucket (burst 10, then 5/s)
        assert took < 5.0
        assert waits[:10] == [0.0] * 10
        assert waits[10] == pytest.approx(0.2, abs=0.05)
        assert shared.shared.stats["failures"] == 1  # tried once, then left alone for retry_after_failure

        # When storage is back (empty: the table is created again on the first lease)
        storage.restart()
        time.sleep(1.1)
        assert shared.reserve(OTHER_KEY) == 0.0

        # Then the shared budget is used again
        assert shared.shared.stats["leases"] == 2
        table = TableClient(storage.url("table"), names.BUDGET_TABLE, credential=credential)
        assert len(list(table.list_entities())) == 1
    finally:
        storage.stop()
