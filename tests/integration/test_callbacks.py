"""Callbacks on Azurite with a local HTTPS receiver: notify puts a message on dsr-callbacks, deliver (called with
the message read from the queue, as the trigger does) POSTs a signed CloudEvent, and the history in Table
DsrCallbacks tells what happened: delivered, retrying with a delay, abandoned; never a redirect followed."""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import certifi
import pytest
from azure.storage.queue import QueueClient

from shared.core import settings as names
from shared.core.matching import Subject
from shared.core.model import DsrRequest, utcnow
from shared.lifecycle import callback_envelope, callbacks
from shared.runtime import Runtime

SIGNING_KEY = "callback-signing-key-for-tests-0123456789"
SUBJECT = Subject("0a1b2c3d-0000-4000-8000-00000000c0b1", "carol@contoso.com", "carol.jones@contoso.com")


class Receiver:
    """An https endpoint on 127.0.0.1 (the local stack's certificate) answering a scripted list of statuses
    (the last one repeats) and recording every request it gets."""

    def __init__(self, cert: Path, key: Path, port: int = 0) -> None:
        self.answers: list[int] = [200]
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", f"https://127.0.0.1:{receiver.port}/elsewhere")
                payload = b'{"note":"a response body the sender never reads"}'
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/hook?code=receiver-key"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(tls: tuple[Path, Path]) -> Iterator[Receiver]:
    instance = Receiver(*tls)
    yield instance
    instance.stop()


@pytest.fixture
def rt(make_runtime, receiver) -> Iterator[Runtime]:
    runtime = make_runtime(
        CALLBACK_ALLOWED_HOSTS=f"127.0.0.1:{receiver.port}", CALLBACK_SIGNING_KEY=SIGNING_KEY
    )
    queue(runtime).clear_messages()  # also the invisible (delayed) messages of an earlier test
    yield runtime
    queue(runtime).clear_messages()


def queue(rt: Runtime) -> QueueClient:
    return rt.storage.queue_service.get_queue_client(names.CALLBACK_QUEUE)


def take(rt: Runtime) -> dict[str, Any] | None:
    """Read one visible message as the trigger gets it (base64 JSON) and delete it, as the host does."""
    message = queue(rt).receive_message(visibility_timeout=30)
    if message is None:
        return None
    queue(rt).delete_message(message)
    return dict(json.loads(base64.b64decode(message.content)))


def queued_count(rt: Runtime) -> int:
    return int(queue(rt).get_queue_properties().approximate_message_count)


def completed_request(receiver: Receiver, status: str = "completed") -> DsrRequest:
    received = utcnow() - dt.timedelta(days=3)
    request = DsrRequest(
        str(uuid.uuid4()),
        "export",
        SUBJECT,
        {"workspaces": []},
        received,
        status=status,  # type: ignore[arg-type]
        reference="TICKET-7",
    )
    request.updated_at = request.completed_at = utcnow()
    request.callback_url = receiver.url
    return request


def test_notify_then_deliver_posts_a_signed_cloudevent(rt: Runtime, receiver: Receiver) -> None:
    # Given a completed request that names a callback URL
    request = completed_request(receiver)

    # When the workflow notifies, the delivery is queued and recorded
    assert callbacks.notify(rt, request, "completed") is True
    message = take(rt)
    assert message is not None
    assert message["attempt"] == 1
    assert message["event"] == "completed"
    assert [h["status"] for h in callbacks.history(rt, request.id)] == ["queued"]

    # And when the trigger hands the message to deliver
    assert callbacks.deliver(rt, message, 1) == "delivered"

    # Then the receiver got one CloudEvent in structured mode, signed with the key
    (got,) = receiver.received
    headers, body = got["headers"], got["body"]
    assert got["path"] == "/hook?code=receiver-key"
    assert headers["Content-Type"] == "application/cloudevents+json; charset=utf-8"
    assert (
        callback_envelope.verify(SIGNING_KEY.encode(), headers["DSR-Signature"], body, now=time.time())
        is True
    )
    assert callback_envelope.verify(b"another key", headers["DSR-Signature"], body, now=time.time()) is False
    event = json.loads(body)
    assert headers["DSR-Event-Id"] == event["id"] == message["eventId"]
    assert headers["DSR-Delivery-Attempt"] == "1"
    assert event["specversion"] == "1.0"
    assert event["type"] == "com.aml-dsr.request.completed"
    assert event["source"] == f"/dsr/requests/{request.id}"
    assert event["datacontenttype"] == "application/json"
    assert event["time"] == message["time"]
    assert event["data"] == {
        "id": request.id,
        "type": "export",
        "status": "completed",
        "reference": "TICKET-7",
        "dueAt": request.due_at.isoformat().replace("+00:00", "Z"),
        "links": {"self": f"/api/v1/requests/{request.id}"},
    }
    for identifier in ("0a1b2c3d-0000-4000-8000-00000000c0b1", "carol", "contoso"):
        assert identifier.encode() not in body

    # And the history says delivered, at the first attempt
    (entry,) = callbacks.history(rt, request.id)
    assert entry["event"] == "completed"
    assert entry["id"] == event["id"]
    assert entry["status"] == "delivered"
    assert entry["attempts"] == 1
    assert entry["lastStatus"] == 200
    assert entry["deliveredAt"] is not None
    assert entry["lastAttemptAt"] is not None
    assert [a["status"] for a in entry["attemptLog"]] == [200]

    # And a second copy of the same message sends nothing more
    assert callbacks.deliver(rt, message, 1) == "duplicate"
    assert len(receiver.received) == 1


def test_a_500_is_retried_after_a_delay_then_delivered(
    rt: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a receiver that answers 500, then 200
    receiver.answers = [500, 200]
    sent: list[tuple[str, dict[str, Any], float]] = []
    real_send = rt.storage.send

    def spy(queue_name: str, message: dict[str, Any], delay_seconds: float = 0) -> None:
        sent.append((queue_name, message, delay_seconds))
        real_send(queue_name, message, delay_seconds)

    monkeypatch.setattr(rt.storage, "send", spy)
    request = completed_request(receiver, "completed_with_errors")
    assert callbacks.notify(rt, request, "completed_with_errors") is True
    message = take(rt)
    assert message is not None

    # When the first attempt fails
    before = utcnow()
    assert callbacks.deliver(rt, message, 1) == "retrying"

    # Then the same message goes back with attempt 2 and a delay of 30 s +-20 %
    queue_name, retry, delay = sent[-1]
    assert queue_name == names.CALLBACK_QUEUE
    assert retry == {**message, "attempt": 2}
    assert 24 <= delay <= 36
    # and it is on the queue, invisible until then
    assert queued_count(rt) == 1
    assert queue(rt).receive_message() is None
    (entry,) = callbacks.history(rt, request.id)
    assert entry["status"] == "retrying"
    assert entry["attempts"] == 1
    assert entry["lastStatus"] == 500
    assert entry["deliveredAt"] is None
    next_at = dt.datetime.fromisoformat(entry["nextAttemptAt"].replace("Z", "+00:00"))
    assert before + dt.timedelta(seconds=23) <= next_at <= utcnow() + dt.timedelta(seconds=37)

    # When the retry message comes (its content as enqueued), the second attempt succeeds
    assert callbacks.deliver(rt, retry, 1) == "delivered"

    # Then the history shows both attempts, and the receiver got the same event twice, each signed
    (entry,) = callbacks.history(rt, request.id)
    assert entry["status"] == "delivered"
    assert entry["attempts"] == 2
    assert entry["lastStatus"] == 200
    assert entry["nextAttemptAt"] is None
    assert [a["status"] for a in entry["attemptLog"]] == [500, 200]
    assert [r["headers"]["DSR-Delivery-Attempt"] for r in receiver.received] == ["1", "2"]
    assert len({r["headers"]["DSR-Event-Id"] for r in receiver.received}) == 1
    for got in receiver.received:
        assert callback_envelope.verify(
            SIGNING_KEY.encode(), got["headers"]["DSR-Signature"], got["body"], time.time()
        )


def test_a_redirect_is_not_followed(rt: Runtime, receiver: Receiver) -> None:
    # Given a receiver that answers 302 to another path
    receiver.answers = [302]
    request = completed_request(receiver, "rejected")
    assert callbacks.notify(rt, request, "rejected") is True
    message = take(rt)
    assert message is not None

    # When deliver makes its attempt
    outcome = callbacks.deliver(rt, message, 1)

    # Then the redirect counts as a failed attempt and nobody called the Location
    assert outcome == "retrying"
    assert [r["path"] for r in receiver.received] == ["/hook?code=receiver-key"]
    (entry,) = callbacks.history(rt, request.id)
    assert (entry["status"], entry["lastStatus"]) == ("retrying", 302)


def deliver_until_final(rt: Runtime, limit: int = 20) -> list[str]:
    """Run the queue by hand: take each message as it becomes visible and deliver it."""
    outcomes: list[str] = []
    deadline = time.monotonic() + 60
    while len(outcomes) < limit and time.monotonic() < deadline:
        message = take(rt)
        if message is None:
            if outcomes and outcomes[-1] in ("delivered", "abandoned"):
                break
            time.sleep(0.1)
            continue
        outcomes.append(callbacks.deliver(rt, message, 1))
    return outcomes


def test_a_delivery_is_abandoned_after_the_maximum_attempts(
    rt: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a receiver that always answers 503, and no waiting between attempts
    receiver.answers = [503]
    monkeypatch.setattr(callbacks, "BASE_DELAY_SECONDS", 0.0)
    request = completed_request(receiver, "failed")
    assert callbacks.notify(rt, request, "failed") is True

    # When every message is delivered as it comes
    outcomes = deliver_until_final(rt)

    # Then there were exactly MAX_ATTEMPTS attempts, and the delivery is abandoned
    assert outcomes == ["retrying"] * (callbacks.MAX_ATTEMPTS - 1) + ["abandoned"]
    assert len(receiver.received) == callbacks.MAX_ATTEMPTS == 8
    assert queued_count(rt) == 0
    (entry,) = callbacks.history(rt, request.id)
    assert entry["status"] == "abandoned"
    assert entry["attempts"] == 8
    assert entry["lastStatus"] == 503
    assert entry["reason"] == "8 attempts failed (last: HTTP 503)"
    assert entry["abandonedAt"] is not None
    assert entry["deliveredAt"] is None
    assert [a["attempt"] for a in entry["attemptLog"]] == list(range(1, 9))


def test_a_refusing_receiver_is_given_up_after_three_attempts(
    rt: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.answers = [404]
    monkeypatch.setattr(callbacks, "BASE_DELAY_SECONDS", 0.0)
    request = completed_request(receiver, "cancelled")
    assert callbacks.notify(rt, request, "cancelled") is True

    assert deliver_until_final(rt) == ["retrying", "retrying", "abandoned"]
    (entry,) = callbacks.history(rt, request.id)
    assert (entry["status"], entry["attempts"], entry["lastStatus"]) == ("abandoned", 3, 404)


def test_notifying_the_same_transition_twice_sends_once(rt: Runtime, receiver: Receiver) -> None:
    # Given a request awaiting approval
    request = completed_request(receiver, "awaiting_approval")

    # When the workflow notifies twice for the same transition (a re-delivered step)
    first = callbacks.notify(rt, request, "awaiting_approval")
    second = callbacks.notify(rt, request, "awaiting_approval")

    # Then one message is queued and one delivery recorded
    assert (first, second) == (True, False)
    assert queued_count(rt) == 1
    assert deliver_until_final(rt) == ["delivered"]
    assert len(receiver.received) == 1

    # And a later transition is a second delivery, listed after the first
    request.status = "completed"
    request.updated_at = utcnow() + dt.timedelta(seconds=1)
    assert callbacks.notify(rt, request, "completed") is True
    assert deliver_until_final(rt) == ["delivered"]
    assert [(h["event"], h["status"]) for h in callbacks.history(rt, request.id)] == [
        ("awaiting_approval", "delivered"),
        ("completed", "delivered"),
    ]


def test_a_url_no_longer_allowed_is_abandoned_without_sending(rt: Runtime, receiver: Receiver) -> None:
    request = completed_request(receiver)
    request.callback_url = "https://hooks.example.com/dsr"
    assert callbacks.notify(rt, request, "completed") is True
    message = take(rt)
    assert message is not None

    assert callbacks.deliver(rt, message, 1) == "abandoned"

    assert receiver.received == []
    (entry,) = callbacks.history(rt, request.id)
    assert entry["status"] == "abandoned"
    assert entry["lastError"] == "DisallowedUrl"
    assert "no longer allowed" in entry["reason"]


def test_tls_is_verified(rt: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a CA bundle that does not hold the receiver's (self-signed) certificate
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    request = completed_request(receiver)
    assert callbacks.notify(rt, request, "completed") is True
    message = take(rt)
    assert message is not None

    # When deliver makes its attempt, the handshake fails: nothing reaches the receiver, and it is retried
    assert callbacks.deliver(rt, message, 1) == "retrying"
    assert receiver.received == []
    (entry,) = callbacks.history(rt, request.id)
    assert entry["lastError"] == "SSLError"
    assert entry["lastStatus"] is None


def test_a_poisoned_message_marks_the_delivery_abandoned(rt: Runtime, receiver: Receiver) -> None:
    request = completed_request(receiver, "failed")
    assert callbacks.notify(rt, request, "failed") is True
    message = take(rt)
    assert message is not None

    assert callbacks.record_poison(rt, json.dumps(message).encode(), 5) == "abandoned"
    assert callbacks.record_poison(rt, b"not json", 5) == "ignored"

    (entry,) = callbacks.history(rt, request.id)
    assert entry["status"] == "abandoned"
    assert entry["reason"] == "the delivery step failed 5 times; its message is in the poison queue"
    assert callbacks.deliver(rt, message, 1) == "duplicate"
    assert receiver.received == []


def test_a_redelivered_message_after_a_crash_still_makes_its_attempt(rt: Runtime, receiver: Receiver) -> None:
    # Given an attempt that was claimed (the row counts it) but whose worker died before answering
    request = completed_request(receiver)
    assert callbacks.notify(rt, request, "completed") is True
    message = take(rt)
    assert message is not None
    table = rt.storage.table(names.CALLBACKS_TABLE)
    table.update_entity({"PartitionKey": request.id, "RowKey": message["eventId"], "Attempts": 1})

    # Then a fresh copy of the message is a duplicate, and the host's re-delivery (dequeue count 2) sends
    assert callbacks.deliver(rt, message, 1) == "duplicate"
    assert callbacks.deliver(rt, message, 2) == "delivered"
    assert len(receiver.received) == 1


def test_a_queueing_failure_never_reaches_the_caller_and_leaves_no_row(
    rt: Runtime, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a queue that cannot be written to
    def broken(*args: object, **kwargs: object) -> None:
        raise ConnectionError("queue unreachable")

    real_send = rt.storage.send
    monkeypatch.setattr(rt.storage, "send", broken)
    request = completed_request(receiver)

    # When the workflow notifies, nothing is raised and nothing is recorded
    assert callbacks.notify(rt, request, "completed") is False
    assert callbacks.history(rt, request.id) == []

    # And once the queue is back, the same transition is queued
    monkeypatch.setattr(rt.storage, "send", real_send)
    assert callbacks.notify(rt, request, "completed") is True
    assert [h["status"] for h in callbacks.history(rt, request.id)] == ["queued"]
