"""Offboarding: an HR event on a Storage queue starts the erasure of a person's Azure ML data.

Accepted envelopes (the same data in each):
  plain JSON     {"objectId", "tenantId", "userPrincipalName", "mail", "effectiveAt", "eventId"}
  CloudEvents    1.0 structured JSON: {"specversion": "1.0", "id", "source", "type", "time", "data": {...}}
  Event Grid     {"id", "eventType", "subject", "eventTime", "dataVersion", "data": {...}} (or a one-item array)

Policy comes from settings: where to search (subscriptions and resource groups), whether offboarding erasures
are approved automatically, whether to archive the person's data first (kept for a number of days), and a grace
period after `effectiveAt`. The same event id, or the same person within the dedupe window, never starts a
second request: the duplicate is recorded and linked to the first. A bad event (not JSON, no identifier, an
unknown schema, another tenant) is rejected once with its reason and creates nothing; it is not retried. An
unexpected failure still ends in `<queue>-poison`, where a trigger records it as failed.

Identifiers never reach a log line; events and the subject index hold keyed pseudonyms only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from shared.core.matching import Subject
from shared.core.model import DsrRequest, iso, new_request_id, utcnow
from shared.lifecycle.intake import needs_approval, store_and_start
from shared.lifecycle.submission import GUID, RESOURCE_GROUP_ID, UPN_PATTERN
from shared.runtime import Runtime

log = logging.getLogger(__name__)

_GUID = re.compile(GUID)
_UPN = re.compile(UPN_PATTERN)


class BadEventError(ValueError):
    """An event that can never be processed: rejected once, with this reason, never retried."""


@dataclass(frozen=True)
class OffboardingEvent:
    event_id: str
    schema: str  # plain | cloudevents | eventgrid
    subject: Subject
    tenant_id: str | None
    effective_at: dt.datetime | None


def parse(body: bytes) -> OffboardingEvent:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadEventError("not JSON") from None
    if isinstance(document, list) and len(document) == 1:
        document = document[0]  # Event Grid delivers arrays; a queue message carries one event
    if not isinstance(document, dict):
        raise BadEventError("not a JSON object")
    if document.get("specversion") is not None:
        if str(document["specversion"]) != "1.0":
            raise BadEventError(f"unsupported CloudEvents specversion {str(document['specversion'])[:10]!r}")
        for key in ("id", "source", "type"):
            if not document.get(key):
                raise BadEventError(f"CloudEvents attribute {key!r} is missing")
        schema, event_id, data = "cloudevents", str(document["id"]), document.get("data")
    elif "eventType" in document and "data" in document:
        for key in ("id", "subject", "eventTime", "dataVersion"):
            if key not in document:
                raise BadEventError(f"Event Grid property {key!r} is missing")
        schema, event_id, data = "eventgrid", str(document["id"]), document.get("data")
    elif any(k in document for k in ("objectId", "userPrincipalName", "mail", "eventId")):
        schema, event_id, data = "plain", str(document.get("eventId") or ""), document
    else:
        raise BadEventError("unknown schema: neither plain JSON, CloudEvents 1.0 nor Event Grid")
    if not isinstance(data, dict):
        raise BadEventError("the event carries no data object")
    unknown = set(data) - {"objectId", "tenantId", "userPrincipalName", "mail", "effectiveAt", "eventId"}
    if schema == "plain":
        unknown -= {"eventId"}
    if unknown:
        raise BadEventError(f"unknown field(s) in the event data: {', '.join(sorted(unknown))[:200]}")
    object_id = _text(data.get("objectId"))
    upn = _text(data.get("userPrincipalName"))
    mail = _text(data.get("mail"))
    if object_id and not _GUID.fullmatch(object_id):
        raise BadEventError("objectId is not a GUID")
    for name, value in (("userPrincipalName", upn), ("mail", mail)):
        if value and not _UPN.fullmatch(value):
            raise BadEventError(f"{name} is not an address")
    if not (object_id or upn or mail):
        raise BadEventError("no identifier: objectId, userPrincipalName or mail is required")
    tenant = _text(data.get("tenantId"))
    if tenant and not _GUID.fullmatch(tenant):
        raise BadEventError("tenantId is not a GUID")
    effective = None
    if data.get("effectiveAt"):
        try:
            effective = dt.datetime.fromisoformat(str(data["effectiveAt"]).replace("Z", "+00:00"))
        except ValueError:
            raise BadEventError("effectiveAt is not an ISO 8601 time") from None
        if effective.tzinfo is None:
            effective = effective.replace(tzinfo=dt.UTC)
    if not event_id or len(event_id) > 200:
        raise BadEventError("the event has no id (eventId) or it is longer than 200 characters")
    return OffboardingEvent(
        event_id, schema, Subject(object_id, upn, mail), tenant.lower() if tenant else None, effective
    )


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def handle(rt: Runtime, body: bytes, message_id: str) -> dict[str, Any]:
    """Process one queue message. Returns the event row (accepted, duplicate or rejected), for tests and logs."""
    try:
        event = parse(body)
        settings = rt.settings
        if settings.tenant_id and event.tenant_id is None:
            # the app knows its tenant (DSR_TENANT_ID): an event must say it is for that tenant
            raise BadEventError(
                "the event names no tenant (tenantId); this app erases only in its own tenant"
            )
        if settings.tenant_id and event.tenant_id != settings.tenant_id:
            raise BadEventError("the event is for another tenant")
        if not settings.offboarding_scope:
            raise BadEventError("no offboarding scope is configured (DSR_OFFBOARDING_SCOPE)")
    except BadEventError as exc:
        return _reject(rt, message_id, str(exc))
    key = _key(f"event\n{event.event_id}")
    existing = rt.store.get_event(key)
    if (
        existing is not None
        and existing.get("Status") == "accepted"
        and existing.get("RequestId")
        and rt.store.get_request(existing["RequestId"]) is None
    ):
        # A retried message whose first attempt recorded the event and stopped before storing the request.
        request = _request_for(rt, event)
        request.id = existing["RequestId"]
        store_and_start(rt, request)
        return {"RowKey": key, **existing, "RequestStatus": request.status}
    if existing is not None:
        return _duplicate(rt, message_id, existing, "the same eventId was received before")
    pseudonyms = sorted(rt.pseudonym(i) for i in event.subject.identifiers())
    window = dt.timedelta(hours=rt.settings.offboarding_dedupe_hours)
    for pseudonym in pseudonyms:
        for earlier in rt.store.requests_of_subject(pseudonym):
            if (
                earlier["source"] == "offboarding"
                and earlier["receivedAt"]
                and utcnow() - earlier["receivedAt"] < window
            ):
                row = {"RequestId": earlier["id"], "Status": "accepted"}
                return _duplicate(
                    rt, message_id, row, "the same person was offboarded within the dedupe window"
                )
    request = _request_for(rt, event)
    first, request.id = _claim_person(rt, pseudonyms, request.id, key, window)
    if first is not None:
        row = {"RequestId": first, "Status": "accepted"}
        return _duplicate(rt, message_id, row, "the same person was offboarded within the dedupe window")
    fields = {
        "Status": "accepted",
        "Schema": event.schema,
        "RequestId": request.id,
        "Subject": pseudonyms[0],
        "ReceivedAt": utcnow(),
        "MessageId": message_id,
    }
    if not rt.store.record_event(key, fields):
        existing = rt.store.get_event(key) or {}
        return _duplicate(rt, message_id, existing, "the same eventId arrived concurrently")
    store_and_start(rt, request)
    log.info(
        "offboarding event %s (%s) accepted: request %s %s",
        key[:12],
        event.schema,
        request.id,
        request.status,
    )
    return {"RowKey": key, **fields, "RequestStatus": request.status}


CLAIM_SETTLE_ATTEMPTS = 20  # an earlier claim whose request is not stored yet is looked at again, 0.1 s apart


def _claim_person(
    rt: Runtime, pseudonyms: list[str], request_id: str, event_key: str, window: dt.timedelta
) -> tuple[str | None, str]:
    """Claim the person (one row per identifier pseudonym, created atomically, in a fixed order), so that two
    events for the same person handled at the same moment cannot both start an erasure. Returns (the request
    this event duplicates, or None; the request id this event goes on with: its own earlier claim's when the
    message is a retry). A duplicate releases the claims it took. An earlier claim whose request does not exist
    yet may still lose on another identifier and be released: it is looked at again for a moment, so that a
    duplicate links to the request that is really made."""
    holder = None
    for attempt in range(CLAIM_SETTLE_ATTEMPTS):
        holder, request_id = _claim_once(rt, pseudonyms, request_id, event_key, window)
        if holder is None or rt.store.get_request(holder) is not None:
            break
        if attempt < CLAIM_SETTLE_ATTEMPTS - 1:
            time.sleep(0.1)
    return holder, request_id


def _claim_once(
    rt: Runtime, pseudonyms: list[str], request_id: str, event_key: str, window: dt.timedelta
) -> tuple[str | None, str]:
    taken: list[str] = []
    for pseudonym in pseudonyms:
        holder, holder_event = rt.store.claim_person(pseudonym, request_id, event_key, utcnow(), window)
        if holder_event != event_key:
            for mine in taken:
                rt.store.release_person(mine, request_id)
            return holder, request_id
        request_id = holder  # ours, or our own earlier attempt's
        taken.append(pseudonym)
    return None, request_id


def _request_for(rt: Runtime, event: OffboardingEvent) -> DsrRequest:
    settings = rt.settings
    scope: dict[str, list[str]] = {"workspaces": [], "resourceGroups": [], "subscriptions": []}
    for entry in settings.offboarding_scope:
        if RESOURCE_GROUP_ID.fullmatch(entry):
            scope["resourceGroups"].append(entry)
        elif _GUID.fullmatch(entry):
            scope["subscriptions"].append(entry)
    now = utcnow()
    start = (event.effective_at or now) + dt.timedelta(hours=settings.offboarding_grace_hours)
    request = DsrRequest(
        id=new_request_id(),
        type="erasure",
        subject=event.subject,
        scope=scope,
        received_at=now,
        reference=f"offboarding:{_key(event.event_id)[:16]}",
        source="offboarding",
        export_first=settings.offboarding_export_first,
        archive_until=now + dt.timedelta(days=settings.offboarding_archive_days)
        if settings.offboarding_export_first
        else None,
        submitted_by={"id": "offboarding", "name": "HR offboarding event", "source": "queue"},
        links={"event": {"schema": event.schema, "key": _key(f"event\n{event.event_id}")}},
    )
    if start > now:
        request.status = "scheduled"
        request.not_before = start
    elif needs_approval(rt, request):
        request.status = "awaiting_approval"
    return request


def _reject(rt: Runtime, message_id: str, reason: str) -> dict[str, Any]:
    key = _key(f"message\n{message_id}")
    fields = {"Status": "rejected", "Reason": reason, "ReceivedAt": utcnow(), "MessageId": message_id}
    rt.store.record_event(key, fields)  # once: a re-delivery of the same message finds the row
    log.warning("offboarding message %s rejected: %s", message_id, reason)
    return {"RowKey": key, **fields}


def _duplicate(rt: Runtime, message_id: str, first: dict[str, Any], reason: str) -> dict[str, Any]:
    key = _key(f"message\n{message_id}")
    fields = {
        "Status": "duplicate",
        "Reason": reason,
        "DuplicateOf": str(first.get("RequestId", "")),
        "ReceivedAt": utcnow(),
        "MessageId": message_id,
    }
    rt.store.record_event(key, fields)
    log.info("offboarding message %s is a duplicate of request %s", message_id, fields["DuplicateOf"])
    return {"RowKey": key, **fields}


def record_poison(rt: Runtime, body: bytes, message_id: str, dequeue_count: int | None) -> dict[str, Any]:
    """A message the host gave up on (maxDequeueCount failures): make it visible as failed."""
    key = _key(f"poison\n{message_id}")
    fields = {
        "Status": "failed",
        "Reason": f"processing failed {dequeue_count or 'several'} times; the message is in the poison queue",
        "ReceivedAt": utcnow(),
        "MessageId": message_id,
        "BodySha256": hashlib.sha256(body).hexdigest(),
    }
    rt.store.record_event(key, fields)
    log.error("offboarding message %s landed in the poison queue", message_id)
    return {"RowKey": key, **fields}


def event_view(row: dict[str, Any]) -> dict[str, Any]:
    received = row.get("ReceivedAt")
    return {
        "key": row.get("RowKey"),
        "status": row.get("Status"),
        "reason": row.get("Reason"),
        "schema": row.get("Schema"),
        "requestId": row.get("RequestId") or None,
        "duplicateOf": row.get("DuplicateOf") or None,
        "receivedAt": iso(received) if isinstance(received, dt.datetime) else received,
        "messageId": row.get("MessageId"),
    }
