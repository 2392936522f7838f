"""What a callback POST carries, and how its receiver checks it (see docs/callbacks.md).

The body is a CloudEvents 1.0 event in structured mode (`application/cloudevents+json`) whose data is a small
status summary of the request (never a subject identifier). Its event id is a UUID derived from (request id,
event, status time), so the same transition always has the same id. The body is signed

    DSR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>

and receivers verify it with `verify()`. The delivery itself (queue, retries, the DsrCallbacks table) is
shared/lifecycle/callbacks.py.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from typing import Any, Final

from shared.core.model import DsrRequest, iso

EVENT_TYPE_PREFIX: Final = "com.aml-dsr.request."
SIGNATURE_HEADER: Final = "DSR-Signature"
EVENT_ID_HEADER: Final = "DSR-Event-Id"
ATTEMPT_HEADER: Final = "DSR-Delivery-Attempt"
CONTENT_TYPE: Final = "application/cloudevents+json; charset=utf-8"
USER_AGENT: Final = "aml-dsr-callbacks/1.0"
MAX_HEADER_LENGTH: Final = 1024
# Event ids are `uuid5(EVENT_NAMESPACE, "<request id>\n<event>\n<status time>")`.
EVENT_NAMESPACE: Final = uuid.UUID("6f1d0b8e-3c55-4f0e-9a2e-4d5c1a7b9e21")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_HEX_SIGNATURE = re.compile(r"^[0-9a-f]{64}$")


# -- the event --------------------------------------------------------------------------------------------------
def event_id(request_id: str, event: str, sequence: str) -> str:
    """Deterministic: the same (request, event, status time) always yields the same id."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{request_id}\n{event}\n{sequence}"))


def summary(request: DsrRequest) -> dict[str, Any]:
    """The event's data: what the requester needs to act, no subject identifier."""
    return {
        "id": request.id,
        "type": request.type,
        "status": request.status,
        "reference": request.reference,
        "dueAt": iso(request.due_at),
        "links": {"self": f"/api/v1/requests/{request.id}"},
    }


def build_event(message: dict[str, Any]) -> dict[str, Any]:
    """The CloudEvents 1.0 event (structured mode) of a delivery message."""
    return {
        "specversion": "1.0",
        "id": message["eventId"],
        "source": f"/dsr/requests/{message['requestId']}",
        "type": EVENT_TYPE_PREFIX + message["event"],
        "time": message["time"],
        "datacontenttype": "application/json",
        "data": message["data"],
    }


def signed_post(
    message: dict[str, Any], attempt: int, key: bytes, timestamp: int
) -> tuple[bytes, dict[str, str]]:
    """The body (the event as compact JSON) and headers of attempt `attempt` of a delivery message, signed with
    `key` at `timestamp` (unix seconds)."""
    body = json.dumps(build_event(message), separators=(",", ":")).encode()
    headers = {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": USER_AGENT,
        EVENT_ID_HEADER: str(message["eventId"]),
        ATTEMPT_HEADER: str(attempt),
        SIGNATURE_HEADER: sign(key, timestamp, body),
    }
    return body, headers


# -- signatures -------------------------------------------------------------------------------------------------
def sign(key: bytes, timestamp: int, body: bytes) -> str:
    """The DSR-Signature header value: `t=<timestamp>,v1=<hex HMAC-SHA256(key, "<timestamp>." + body)>`."""
    digest = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(key: bytes, header: str, body: bytes, now: float, tolerance_s: int = 300) -> bool:
    """True when `header` (a DSR-Signature value) signs `body` with `key` and its timestamp is within
    `tolerance_s` seconds of `now` (either side). Several `v1=` entries may be present; one must match.
    Entries of other schemes are ignored. Comparison is constant-time."""
    if not isinstance(header, str) or not header or len(header) > MAX_HEADER_LENGTH:
        return False
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            return False
        if name == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                return False
            timestamp = int(value)
        elif name == "v1":
            if not _HEX_SIGNATURE.fullmatch(value):
                return False
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(key, timestamp, body).rpartition("v1=")[2].encode()
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode())
    return matched
