"""Offboarding dedupe on Azurite: two events for the same person at the same moment start one erasure, and a
message retried after a crash at any step still ends in exactly one request."""

from __future__ import annotations

import json
import threading
import uuid

import pytest

from shared.edge import offboarding
from shared.runtime import Runtime

SUBSCRIPTION = "00000000-0000-4000-8000-0000000000b2"


@pytest.fixture
def ob(make_runtime) -> Runtime:
    return make_runtime(OFFBOARDING_SCOPE=SUBSCRIPTION, OFFBOARDING_DEDUPE_HOURS="72")


def event(object_id: str, upn: str | None = None) -> bytes:
    body = {"objectId": object_id, "eventId": str(uuid.uuid4())}
    if upn:
        body["userPrincipalName"] = upn
    return json.dumps(body).encode()


def requests_of(rt: Runtime, object_id: str) -> list[str]:
    return [row["id"] for row in rt.store.requests_of_subject(rt.pseudonym(object_id))]


def test_events_for_the_same_person_at_the_same_moment_start_one_erasure(ob):
    person = str(uuid.uuid4())
    bodies = [event(person, "leaver@contoso.com" if i % 2 else None) for i in range(8)]  # 8 distinct eventIds
    results: list[dict] = []
    start = threading.Barrier(len(bodies))

    def deliver(body: bytes) -> None:
        start.wait()
        results.append(offboarding.handle(ob, body, f"msg-{uuid.uuid4()}"))

    threads = [threading.Thread(target=deliver, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [r for r in results if r["Status"] == "accepted"]
    duplicates = [r for r in results if r["Status"] == "duplicate"]
    assert len(accepted) == 1, results
    assert len(duplicates) == 7
    assert {d["DuplicateOf"] for d in duplicates} == {accepted[0]["RequestId"]}
    assert requests_of(ob, person) == [accepted[0]["RequestId"]]


def test_a_retry_after_a_crash_between_claim_and_record_goes_on_with_the_claimed_request(ob, monkeypatch):
    person = str(uuid.uuid4())
    body = event(person)
    real = ob.store.record_event
    calls = {"n": 0}

    def crash_once(key, fields):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("the instance stopped here")
        return real(key, fields)

    monkeypatch.setattr(ob.store, "record_event", crash_once)
    with pytest.raises(ConnectionError):
        offboarding.handle(ob, body, "msg-1")
    claimed = ob.store.events.get_entity("person", ob.pseudonym(person))["RequestId"]
    retried = offboarding.handle(ob, body, "msg-1")  # the queue delivers the message again
    assert retried["Status"] == "accepted"
    assert retried["RequestId"] == claimed
    assert requests_of(ob, person) == [claimed]
    assert ob.store.get_request(claimed) is not None


def test_a_retry_after_a_crash_between_record_and_store_creates_the_recorded_request(ob, monkeypatch):
    person = str(uuid.uuid4())
    body = event(person)
    real = offboarding.store_and_start
    calls = {"n": 0}

    def crash_once(rt, request):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("the instance stopped here")
        return real(rt, request)

    monkeypatch.setattr(offboarding, "store_and_start", crash_once)
    with pytest.raises(ConnectionError):
        offboarding.handle(ob, body, "msg-2")
    retried = offboarding.handle(ob, body, "msg-2")
    assert retried["Status"] == "accepted"
    request = ob.store.get_request(retried["RequestId"])
    assert request is not None
    assert request.source == "offboarding"
    assert requests_of(ob, person) == [request.id]
    again = offboarding.handle(ob, body, "msg-2")  # and a third delivery is a plain duplicate
    assert again["Status"] == "duplicate"
    assert again["DuplicateOf"] == request.id
