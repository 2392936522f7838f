"""Deadlines on Azurite: dueAt, the one extension, the deadline timer, and the operators' list with filters and
paging."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.core.errors import BadRequestError, ConflictError
from shared.core.matching import Subject
from shared.core.model import DsrRequest, new_request_id, utcnow
from shared.core.principal import Principal
from shared.evidence import audit
from shared.lifecycle import deadlines
from shared.runtime import Runtime

OFFICER = Principal("a1a1a1a1-0000-4000-8000-000000000001", "Privacy Officer", "entra", frozenset())


def stored(rt: Runtime, received: dt.datetime, status: str = "running") -> DsrRequest:
    request = DsrRequest(
        new_request_id(received),
        "export",
        Subject("0a1b2c3d-0000-4000-8000-000000000002"),
        {"subscriptions": ["00000000-0000-4000-8000-0000000000b2"]},
        received,
        status=status,  # type: ignore[arg-type]
    )
    if status in ("completed", "completed_with_errors"):
        request.completed_at = received + dt.timedelta(days=3)
    rt.store.create_request(request)
    return request


def test_request_ids_are_time_ordered_uuids():
    early = new_request_id(dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
    late = new_request_id(dt.datetime(2026, 3, 1, 0, 0, 0, 5000, tzinfo=dt.UTC))
    assert early < late
    assert early[14] == "7"  # version 7
    assert early[19] in "89ab"  # RFC 9562 variant


def test_the_deadline_is_one_calendar_month_and_an_extension_adds_up_to_two(rt):
    request = stored(rt, dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC))
    assert request.due_at == dt.datetime(2026, 2, 28, 12, 0, tzinfo=dt.UTC)  # clamped to the month's end
    request.extension = {"months": 2}
    assert request.due_at == dt.datetime(2026, 4, 30, 12, 0, tzinfo=dt.UTC)  # received + three months


def test_an_extension_is_granted_once_recorded_and_audited(rt):
    request = stored(rt, utcnow() - dt.timedelta(days=3))
    first_due = request.due_at
    extended = deadlines.extend(rt, request.id, 2, "many workspaces to search", OFFICER)
    assert extended.due_at > first_due
    again = rt.store.get_request(request.id)
    assert again is not None
    assert again.extension is not None
    assert again.extension["months"] == 2
    assert again.extension["reason"] == "many workspaces to search"
    assert again.extension["by"]["name"] == "Privacy Officer"
    assert again.due_at == extended.due_at
    entries = audit.trail(rt).entries(request.id)
    assert [e.action for e in entries][-1] == audit.EXTENDED
    assert entries[-1].details["months"] == 2
    with pytest.raises(ConflictError, match="already extended"):
        deadlines.extend(rt, request.id, 1, "once more", OFFICER)


def test_no_extension_after_the_deadline_or_for_an_ended_request_or_beyond_two_months(rt):
    late = stored(rt, utcnow() - dt.timedelta(days=40))
    with pytest.raises(ConflictError, match="deadline passed"):
        deadlines.extend(rt, late.id, 1, "too late", OFFICER)
    done = stored(rt, utcnow() - dt.timedelta(days=5), status="completed")
    with pytest.raises(ConflictError, match="completed"):
        deadlines.extend(rt, done.id, 1, "nothing to extend", OFFICER)
    fresh = stored(rt, utcnow())
    with pytest.raises(BadRequestError):
        deadlines.extend(rt, fresh.id, 3, "three months", OFFICER)
    unchanged = rt.store.get_request(fresh.id)
    assert unchanged is not None
    assert unchanged.extension is None


def test_the_timer_flags_near_due_and_overdue_requests_once(rt):
    now = utcnow()
    near = stored(rt, now - dt.timedelta(days=28))  # due in about 3 days
    overdue = stored(rt, now - dt.timedelta(days=35), status="awaiting_approval")
    on_time = stored(rt, now - dt.timedelta(days=2))
    ended = stored(rt, now - dt.timedelta(days=60), status="completed")
    deadlines.mark_deadlines(rt, now)
    flags = {r.id: rt.store.get_request(r.id).deadline_flag for r in (near, overdue, on_time, ended)}  # type: ignore[union-attr]
    assert flags == {near.id: "near_due", overdue.id: "overdue", on_time.id: None, ended.id: None}
    assert audit.trail(rt).entries(overdue.id)[-1].details == {
        "state": "overdue",
        "dueAt": deadlines.deadline_view(overdue)["dueAt"],
    }
    before = len(audit.trail(rt).entries(near.id))
    deadlines.mark_deadlines(rt, now + dt.timedelta(minutes=1))
    assert len(audit.trail(rt).entries(near.id)) == before  # flagged once per state
    deadlines.mark_deadlines(rt, now + dt.timedelta(days=4))  # the near one is now overdue
    again = rt.store.get_request(near.id)
    assert again is not None
    assert again.deadline_flag == "overdue"


def test_the_list_pages_in_received_order_with_filters(rt):
    base = dt.datetime(2001, 5, 1, tzinfo=dt.UTC)  # far in the past: no other test's request is due then
    made = [stored(rt, base + dt.timedelta(hours=i), status="running") for i in range(7)]
    finished = stored(rt, base + dt.timedelta(hours=8), status="completed")
    seen: list[str] = []
    token = None
    pages = 0
    cutoff = dt.datetime(2001, 12, 31, tzinfo=dt.UTC)
    while True:
        page = deadlines.list_page(rt, "https://app.example", ["running"], False, cutoff, 3, token)
        pages += 1
        seen.extend(item["id"] for item in page["value"])
        assert all(item["status"] == "running" for item in page["value"])
        if not page["nextLink"]:
            break
        assert "status=running" in page["nextLink"]
        token = page["nextLink"].split("continuationToken=")[1].split("&")[0]
    assert seen == [r.id for r in made]  # oldest first, each once, the completed one filtered out
    assert pages >= 3
    overdue = deadlines.list_page(rt, "https://app.example", [], True, cutoff, 200, None)
    ids = [item["id"] for item in overdue["value"]]
    assert set(ids) >= {r.id for r in made}
    assert finished.id not in ids
    assert all(item["overdue"] for item in overdue["value"])
    only_ended = deadlines.list_page(rt, "https://app.example", ["completed"], True, None, 10, None)
    assert only_ended == {"value": [], "nextLink": None}


def test_a_forged_continuation_token_is_refused(rt):
    with pytest.raises(BadRequestError, match="continuationToken"):
        deadlines.list_page(rt, "https://app.example", [], False, None, 10, "not-a-token!")
