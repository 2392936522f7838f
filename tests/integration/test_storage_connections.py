"""The storage clients keep a connection per worker thread: 32 threads calling Azurite at once open at most one
connection each and never discard one (requests' default pool keeps 10 per host and throws the rest away, each
with its TLS handshake)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

THREADS = 32


def test_thirty_two_threads_reuse_their_connections(rt, caplog):
    blob = rt.storage.container.get_blob_client("pool-check.txt")
    blob.upload_blob(b"x", overwrite=True)
    caplog.set_level(logging.DEBUG, logger="urllib3.connectionpool")
    caplog.clear()

    def work(_: int) -> None:
        for _ in range(5):
            assert blob.download_blob().readall() == b"x"
            assert rt.store.get_request("00000000-0000-7000-8000-000000000000") is None

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, range(THREADS)))
    opened = [r for r in caplog.records if r.getMessage().startswith("Starting new HTTPS connection")]
    discarded = [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert discarded == []
    assert len(opened) <= 2 * THREADS  # at most one per thread and endpoint (blob, table), for 320 calls
