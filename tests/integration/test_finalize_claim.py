"""Finalize claims the request before it writes the package: several finishers may enqueue finalize at once, and
only one of the finalizes that run at the same moment writes package.zip; the others come back when the claim
ends. A claim whose holder died (its time is up) is taken over."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

from shared.core import settings as names
from shared.core.model import DsrRequest, Task, utcnow
from shared.evidence import package_zip
from shared.lifecycle import completion
from tests.integration.conftest import running_request

FINALIZES = 4


def _request_with_finished_tasks(rt, **fields) -> DsrRequest:
    request = running_request(rt, **fields)
    rt.store.create_tasks([Task(request.id, f"t{i}", "noop", status="done") for i in range(3)])
    return request


def _finalize_queue(rt):
    queue = rt.storage.queue_service.get_queue_client(names.FINALIZE_QUEUE)
    queue.clear_messages()
    return queue


def test_finalizes_running_at_once_write_the_package_once(rt, monkeypatch):
    # Given a request whose tasks are all done, and finalizes that all read its row before any of them claims it
    request = _request_with_finished_tasks(rt)
    queue = _finalize_queue(rt)
    barrier = threading.Barrier(FINALIZES, timeout=30)
    first_listing = threading.local()
    real_list_tasks = rt.store.list_tasks

    def list_tasks_together(request_id):
        listed = list(real_list_tasks(request_id))
        if not getattr(first_listing, "done", False):
            first_listing.done = True
            barrier.wait()
        return iter(listed)

    monkeypatch.setattr(rt.store, "list_tasks", list_tasks_together)
    written = []
    real_write = package_zip.write_package

    def counting_write(*args, **kwargs):
        written.append(threading.get_ident())
        return real_write(*args, **kwargs)

    monkeypatch.setattr(package_zip, "write_package", counting_write)
    # When they run at the same moment
    with ThreadPoolExecutor(FINALIZES) as pool:
        outcomes = list(pool.map(lambda _: completion.finalize(rt, request.id), range(FINALIZES)))
    # Then one wrote the package and completed the request; the others left a delayed finalize each
    assert sorted(outcomes) == ["claimed"] * (FINALIZES - 1) + ["completed"]
    assert len(written) == 1
    stored = rt.store.get_request(request.id)
    assert stored is not None
    assert stored.status == "completed"
    assert stored.package_path == f"{request.id}/package.zip"
    assert queue.get_queue_properties().approximate_message_count == FINALIZES - 1
    assert list(queue.peek_messages(max_messages=32)) == []  # not visible before the claim ends
    # And once it ends, those finalizes find the request ended and change nothing
    assert completion.finalize(rt, request.id) == "duplicate"


def test_a_live_claim_of_another_finalize_defers_and_an_expired_one_is_taken_over(rt):
    queue = _finalize_queue(rt)
    # Given a request another finalize claimed, for 60 s more
    held = _request_with_finished_tasks(
        rt, finalize_owner="another", finalize_until=utcnow() + dt.timedelta(seconds=60)
    )
    # When a finalize comes: it writes nothing and comes back when the claim ends
    assert completion.finalize(rt, held.id) == "claimed"
    stored = rt.store.get_request(held.id)
    assert stored is not None
    assert (stored.status, stored.manifest_path, stored.finalize_owner) == ("running", None, "another")
    assert queue.get_queue_properties().approximate_message_count == 1
    # Given a claim whose holder died: its time is up
    expired = _request_with_finished_tasks(
        rt, finalize_owner="died", finalize_until=utcnow() - dt.timedelta(seconds=1)
    )
    # Then the next finalize takes it over and completes the request
    assert completion.finalize(rt, expired.id) == "completed"
    stored = rt.store.get_request(expired.id)
    assert stored is not None
    assert stored.status == "completed"
    assert stored.finalize_owner not in (None, "died")
