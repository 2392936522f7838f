"""An audited change of a request (shared/lifecycle/changes.py) against Table storage's real ETags: a write that
meets a concurrent change is retried on a fresh read, so the stored row keeps both changes and the audit trail
holds exactly one entry per change written."""

from __future__ import annotations

import pytest

from shared.core.errors import NotFoundError
from shared.core.matching import Subject
from shared.core.model import DsrRequest, new_request_id, utcnow
from shared.evidence import audit
from shared.lifecycle import recovery
from shared.lifecycle.changes import Change, TrailEntry, change_request
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError


def stored_request(rt: Runtime) -> DsrRequest:
    request = DsrRequest(
        new_request_id(),
        "export",
        Subject("0a1b2c3d-0000-4000-8000-000000000042"),
        {"workspaces": []},
        utcnow(),
        status="running",
    )
    rt.store.create_request(request)
    return request


def mark(key: str, actor: str) -> Change:
    """A change that sets links[key] and says so in the trail."""

    def change(request: DsrRequest) -> TrailEntry:
        request.links[key] = actor
        return TrailEntry(actor, "marked", details={"key": key})

    return change


def trail(rt: Runtime, request_id: str) -> list[tuple[str, str, str]]:
    return [
        (e.actor["name"], e.action, e.details.get("key", "")) for e in audit.trail(rt).entries(request_id)
    ]


def test_a_change_overtaken_between_its_read_and_its_write_is_applied_again_on_a_fresh_read(rt):
    # Given a request, and a change that another writer overtakes on its first attempt
    request = stored_request(rt)
    seen: list[dict[str, str]] = []

    def mine(latest: DsrRequest) -> TrailEntry:
        seen.append(dict(latest.links))
        if len(seen) == 1:
            change_request(rt, request.id, mark("theirs", "other writer"))
        return mark("mine", "this writer")(latest)

    # When the change is made
    written, entry = change_request(rt, request.id, mine)

    # Then it was applied twice, the second time to the row the other writer left
    assert seen == [{}, {"theirs": "other writer"}]
    assert entry == TrailEntry("this writer", "marked", details={"key": "mine"})
    # And the stored row holds both changes, and the trail one entry for each, in the order they were written
    stored = rt.store.get_request(request.id)
    assert stored is not None
    assert stored.links == {"theirs": "other writer", "mine": "this writer"}
    assert written.links == stored.links
    assert trail(rt, request.id) == [("other writer", "marked", "theirs"), ("this writer", "marked", "mine")]
    assert audit.verify(rt, request.id)["valid"] is True


def test_a_stale_copy_is_changed_without_a_read_and_read_again_only_when_its_write_fails(rt):
    # Given a copy of the request read before another writer changed it
    request = stored_request(rt)
    stale = rt.store.get_request(request.id)
    assert stale is not None
    change_request(rt, request.id, mark("theirs", "other writer"))

    # When the stale copy is changed
    written, _ = change_request(rt, stale, mark("mine", "this writer"))

    # Then its write failed, the fresh read kept the other change, and each change left one entry
    stored = rt.store.get_request(request.id)
    assert stored is not None
    assert stored.links == {"theirs": "other writer", "mine": "this writer"}
    assert written.etag == stored.etag
    assert trail(rt, request.id) == [("other writer", "marked", "theirs"), ("this writer", "marked", "mine")]


def test_a_request_that_keeps_changing_ends_in_a_concurrency_error_with_nothing_of_the_change_kept(rt):
    # Given a change overtaken on every attempt
    request = stored_request(rt)
    attempts: list[int] = []

    def always_overtaken(latest: DsrRequest) -> TrailEntry:
        attempts.append(1)
        change_request(rt, request.id, mark(f"theirs-{len(attempts)}", "other writer"))
        return mark("mine", "this writer")(latest)

    # When it is made with three attempts, it gives up
    with pytest.raises(ConcurrencyError):
        change_request(rt, request.id, always_overtaken, attempts=3)

    # Then each attempt was overtaken once, and neither the row nor the trail holds the lost change
    assert len(attempts) == 3
    stored = rt.store.get_request(request.id)
    assert stored is not None
    assert stored.links == {f"theirs-{n}": "other writer" for n in (1, 2, 3)}
    assert [key for _, _, key in trail(rt, request.id)] == ["theirs-1", "theirs-2", "theirs-3"]


def test_a_change_that_declines_writes_nothing_and_an_unknown_request_is_not_found(rt):
    request = stored_request(rt)
    before = rt.store.get_request(request.id)
    assert before is not None

    written, entry = change_request(rt, request.id, lambda latest: None)

    assert entry is None
    after = rt.store.get_request(request.id)
    assert after is not None
    assert after.etag == before.etag == written.etag
    assert trail(rt, request.id) == []
    with pytest.raises(NotFoundError):
        change_request(rt, new_request_id(), mark("mine", "this writer"))


def test_a_poisoned_plan_message_fails_its_request_once_saying_why(rt):
    # Given a running request whose plan message went to the poison queue (twice: a repeated delivery)
    request = stored_request(rt)

    outcomes = [recovery.request_poisoned(rt, request.id, "plan", 5) for _ in range(2)]

    # Then the request failed once, with the reason, and one audit entry
    assert outcomes == ["failed", "ignored"]
    stored = rt.store.get_request(request.id)
    assert stored is not None
    assert stored.status == "failed"
    assert [e["reason"] for e in stored.errors] == [
        "the plan step failed 5 times; its message is in the poison queue"
    ]
    entries = audit.trail(rt).entries(request.id)
    assert [(e.actor["name"], e.action, e.details) for e in entries] == [
        ("workflow.plan", audit.STATUS_CHANGED, {"to": "failed", "why": "poison queue"})
    ]
    assert recovery.request_poisoned(rt, new_request_id(), "plan", 5) == "ignored"
