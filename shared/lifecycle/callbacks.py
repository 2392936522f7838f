"""Signed CloudEvents callbacks to the requester, delivered through a queue.

A request may name a `callbackUrl` (https, host on DSR_CALLBACK_ALLOWED_HOSTS). On each status the requester
cares about (`EVENTS`) the workflow calls `notify()`, which records the delivery as `queued` in Table
`DsrCallbacks` (PartitionKey = request id, RowKey = event id) and puts a message on queue `dsr-callbacks`.
The event id is a UUID derived from (request id, event, status time): notifying twice for the same transition
finds the row and sends nothing more.

`deliver()` is the queue handler. It POSTs the signed CloudEvent of shared/lifecycle/callback_envelope.py
once: short timeouts, TLS verified (the CA setup of the Azure ML client), redirects never followed (a 3xx is a
failed attempt), the URL checked against the allow-list again first. A 2xx is `delivered`. Any other
outcome is recorded (time, HTTP status or error class, never the response body) and the same message goes back
on the queue with `attempt + 1` and a visibility delay that grows four-fold from 30 s with +-20 % jitter,
capped at one hour; after `MAX_ATTEMPTS` attempts the delivery is `abandoned`. A 3xx or a 4xx other than 408
and 429 (the receiver refuses this event, retrying will rarely help) is given up after
`MAX_ATTEMPTS_REFUSED` attempts, a 410 Gone at once; a 429 or 503 `Retry-After` is honoured (within the cap).
Each attempt is claimed on the row (ETag) before it is sent, so a second copy of a message sends nothing; the
host's re-delivery of a message whose worker died (dequeue count > 1) makes the attempt again.

Logs carry the request and event ids only: neither the URL (its query may hold the receiver's key) nor anything
about the subject.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import requests
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.core import settings as names
from shared.core.model import DsrRequest, iso, utcnow
from shared.core.outbound import AllowList, DisallowedUrlError
from shared.core.transport import fixed_tls_verify, parse_retry_after
from shared.lifecycle.callback_envelope import build_event, event_id, signed_post, summary
from shared.runtime import Runtime

log = logging.getLogger(__name__)

# The statuses a requester is told about ("extended": the due date was extended).
EVENTS: Final = frozenset(
    {
        "awaiting_approval",
        "completed",
        "completed_with_errors",
        "failed",
        "extended",
        "rejected",
        "cancelled",
    }
)

# Delivery statuses of a history row.
QUEUED: Final = "queued"
DELIVERED: Final = "delivered"
RETRYING: Final = "retrying"
ABANDONED: Final = "abandoned"
FINAL: Final = frozenset({DELIVERED, ABANDONED})

MAX_ATTEMPTS: Final = 8
MAX_ATTEMPTS_REFUSED: Final = 3  # a 3xx or a 4xx other than 408/429
BASE_DELAY_SECONDS = 30.0
BACKOFF_FACTOR = 4.0
MAX_DELAY_SECONDS = 3600.0
JITTER = 0.2
TIMEOUT: Final = (3.05, 10.0)  # connect, read
MAX_URL_LENGTH: Final = 2048


class CallbackUrlError(ValueError):
    """A callbackUrl the product will not call: not https, user info, a fragment, or a host not allow-listed."""


# -- the callback URL -------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _allow_list(entries: tuple[str, ...]) -> AllowList:
    return AllowList(entries)


def check_url(settings: names.Settings, url: str) -> str:
    """Return `url` when callbacks may be sent there; raise CallbackUrlError saying why not."""
    if not isinstance(url, str) or not url:
        raise CallbackUrlError("callbackUrl must be a non-empty string")
    if len(url) > MAX_URL_LENGTH:
        raise CallbackUrlError(f"callbackUrl is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise CallbackUrlError("callbackUrl contains spaces or control characters")
    if not settings.callback_allowed_hosts:
        raise CallbackUrlError(
            f"callbacks are not enabled: no callback host is allow-listed ({names.CALLBACK_ALLOWED_HOSTS})"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        raise CallbackUrlError("callbackUrl is not a valid URL") from None
    if parts.scheme.lower() != "https":
        raise CallbackUrlError("callbackUrl must be an https URL")
    if "@" in parts.netloc:
        raise CallbackUrlError("callbackUrl must not carry user info")
    if "#" in url:
        raise CallbackUrlError("callbackUrl must not carry a fragment")
    try:
        _allow_list(settings.callback_allowed_hosts).check(url)
    except DisallowedUrlError as exc:
        raise CallbackUrlError(
            f"callbackUrl is not allowed ({names.CALLBACK_ALLOWED_HOSTS}): {exc}"
        ) from None
    return url


# -- notify: record and enqueue -----------------------------------------------------------------------------------
def _table(rt: Runtime) -> TableClient:
    return rt.storage.table(names.CALLBACKS_TABLE)


def _new_row(request_id: str, eid: str, event: str) -> dict[str, Any]:
    return {
        "PartitionKey": request_id,
        "RowKey": eid,
        "Event": event,
        "Status": QUEUED,
        "Attempts": 0,
        "QueuedAt": utcnow(),
        "AttemptLog": "[]",
    }


def notify(rt: Runtime, request: DsrRequest, event: str, *, sequence: str | None = None) -> bool:
    """Queue the callback for `event` when the request names a callbackUrl. True when a delivery was queued;
    False when there is no callbackUrl, the same transition was notified before, or queueing failed (logged,
    never raised). `sequence` tells transitions apart (default: the request's status time)."""
    if event not in EVENTS:
        raise ValueError(f"not a callback event: {event!r}")
    url = request.callback_url
    if not url:
        return False
    moment = request.updated_at or request.completed_at or request.received_at
    if sequence is None and event == "extended" and request.extension:
        sequence = str(request.extension.get("at") or "")
    eid = event_id(request.id, event, sequence or iso(moment) or "")
    message = {
        "requestId": request.id,
        "eventId": eid,
        "event": event,
        "time": iso(moment),
        "url": url,
        "data": summary(request),
        "attempt": 1,
    }
    table = _table(rt)
    created = False
    try:
        table.create_entity(_new_row(request.id, eid, event))
        created = True
        rt.storage.send(names.CALLBACK_QUEUE, message)
    except ResourceExistsError:
        log.info("callback %s (%s) of request %s was queued before", eid, event, request.id)
        return False
    except Exception as exc:  # a delivery problem never breaks the status transition that notified
        log.warning(
            "callback %s (%s) of request %s not queued: %s", eid, event, request.id, type(exc).__name__
        )
        if created:  # no message: let a later notify for this transition try again
            try:
                table.delete_entity(request.id, eid)
            except Exception:
                log.warning(
                    "callback %s of request %s: its queued row stays without a message", eid, request.id
                )
        return False
    log.info("callback %s (%s) of request %s queued", eid, event, request.id)
    return True


# -- deliver: the queue handler -------------------------------------------------------------------------------
def retry_delay(
    attempt: int, retry_after: float | None = None, rng: Callable[[], float] = random.random
) -> float:
    """Seconds before attempt `attempt + 1`: 30 s, 2 min, 8 min, 32 min, then 1 h, each +-20 %, at most 1 h;
    never less than the receiver's Retry-After (within the cap)."""
    nominal = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * BACKOFF_FACTOR ** max(0, attempt - 1))
    delay = nominal * (1 - JITTER + 2 * JITTER * rng())
    if retry_after:
        delay = max(delay, retry_after)
    return min(MAX_DELAY_SECONDS, delay)


def next_step(
    attempt: int, status: int | None, retry_after: float | None = None
) -> tuple[str, float | None, str | None]:
    """After attempt `attempt` answered `status` (None: no answer): (outcome, delay before the next attempt,
    reason when abandoned)."""
    if status is not None and 200 <= status < 300:
        return DELIVERED, None, None
    if status == 410:
        return ABANDONED, None, "the receiver answered 410 Gone"
    refused = status is not None and (
        300 <= status < 400 or (400 <= status < 500 and status not in (408, 429))
    )
    limit = MAX_ATTEMPTS_REFUSED if refused else MAX_ATTEMPTS
    if attempt >= limit:
        last = f"HTTP {status}" if status is not None else "no answer"
        return ABANDONED, None, f"{attempt} attempts failed (last: {last})"
    return RETRYING, retry_delay(attempt, retry_after), None


_sessions: dict[str | bool | None, requests.Session] = {}
_sessions_lock = threading.Lock()


def _http() -> requests.Session:
    """One pooled session per process (per CA setup), verifying TLS as the Azure ML client does."""
    verify = fixed_tls_verify()
    with _sessions_lock:
        session = _sessions.get(verify)
        if session is None:
            session = requests.Session()
            if verify is not None:
                session.verify = verify
                session.trust_env = False
            _sessions[verify] = session
        return session


def _get_row(table: TableClient, request_id: str, eid: str) -> Any:
    try:
        return table.get_entity(request_id, eid)
    except ResourceNotFoundError:
        return None


def deliver(rt: Runtime, message: dict[str, Any], dequeue_count: int) -> str:
    """Make one delivery attempt of a `dsr-callbacks` message. Returns what happened: delivered, retrying,
    abandoned, duplicate (already final, or an attempt made before), contended (another worker has it) or
    rejected (a message this handler cannot read)."""
    try:
        request_id, eid = str(message["requestId"]), str(message["eventId"])
        event, url, attempt = str(message["event"]), str(message["url"]), int(message.get("attempt", 1))
        build_event(message)
    except (KeyError, TypeError, ValueError):
        log.error("a callback message without the fields a delivery needs was dropped")
        return "rejected"
    table = _table(rt)
    row = _row_of(table, request_id, eid, event)
    if row.get("Status") in FINAL:
        return "duplicate"
    if int(row.get("Attempts") or 0) >= attempt and dequeue_count <= 1:
        # A second message for an attempt already made (a re-delivery after a crash has dequeue_count > 1).
        return "duplicate"
    claimed = _claim(table, request_id, eid, row, attempt)
    if claimed is None:
        return "contended"
    try:
        check_url(rt.settings, url)
    except CallbackUrlError:
        why = "the callbackUrl is no longer allowed (DSR_CALLBACK_ALLOWED_HOSTS changed)"
        claimed.note(error="DisallowedUrl")
        claimed.record(ABANDONED, reason=why, error="DisallowedUrl")
        log.warning("callback %s of request %s abandoned: %s", eid, request_id, why)
        return ABANDONED
    body, headers = signed_post(message, attempt, rt.settings.callback_signing_key, int(rt.now()))
    status, error, retry_after = _post(url, body, headers)
    claimed.note(**({"status": status} if status is not None else {"error": error}))
    return _conclude(rt, claimed, message, (status, error, retry_after), dequeue_count)


def _row_of(table: TableClient, request_id: str, eid: str, event: str) -> Any:
    """The delivery's row; created `queued` when the message outlived or preceded it (recorded from here on)."""
    row = _get_row(table, request_id, eid)
    if row is None:
        with contextlib.suppress(ResourceExistsError):
            table.create_entity(_new_row(request_id, eid, event))
        row = _get_row(table, request_id, eid)
        if row is None:
            raise RuntimeError(f"callback {eid} of request {request_id}: its row cannot be read")
    return row


@dataclass
class _Attempt:
    """A delivery attempt claimed on its row: where it is recorded, and the row's attempt log with it."""

    table: TableClient
    request_id: str
    eid: str
    number: int
    started: dt.datetime
    attempts_log: list[dict[str, Any]]

    def note(self, **result: Any) -> None:
        """Add this attempt to the log: its number, when it started, and its HTTP status or error."""
        self.attempts_log.append({"attempt": self.number, "at": iso(self.started), **result})

    def record(self, status: str, **fields: Any) -> None:
        _record(self.table, self.request_id, self.eid, status, self.attempts_log, **fields)


def _claim(table: TableClient, request_id: str, eid: str, row: Any, attempt: int) -> _Attempt | None:
    """Claim attempt `attempt` on the delivery's row (its ETag): None when another worker holding a copy of this
    message changed the row first."""
    started = utcnow()
    try:
        table.update_entity(
            {"PartitionKey": request_id, "RowKey": eid, "Attempts": attempt, "LastAttemptAt": started},
            mode=UpdateMode.MERGE,
            etag=row.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
    except (ResourceModifiedError, ResourceNotFoundError):
        return None
    return _Attempt(table, request_id, eid, attempt, started, json.loads(row.get("AttemptLog") or "[]"))


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None, float | None]:
    """POST once, never following a redirect nor reading the answer's body: (HTTP status, or None with the
    error class; a 429 or 503's Retry-After in seconds)."""
    try:
        response = _http().post(
            url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False, stream=True
        )
    except requests.RequestException as exc:
        return None, type(exc).__name__, None
    status = response.status_code
    retry_after: float | None = None
    if status in (429, 503):
        try:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), 0.0)
        except (TypeError, ValueError):
            retry_after = None
    response.close()  # the body is never read
    return status, None, retry_after


def _conclude(
    rt: Runtime,
    claimed: _Attempt,
    message: dict[str, Any],
    answer: tuple[int | None, str | None, float | None],
    dequeue_count: int,
) -> str:
    """Record what the attempt's `answer` (status, error, Retry-After) means: delivered, abandoned, or retrying
    (the next message queued with its delay)."""
    status, error, retry_after = answer
    eid, request_id, attempt = claimed.eid, claimed.request_id, claimed.number
    outcome, delay, reason = next_step(attempt, status, retry_after)
    if outcome == RETRYING:
        assert delay is not None
        # The next message first: a crash before the row update re-delivers this one (dequeue_count > 1).
        rt.storage.send(names.CALLBACK_QUEUE, {**message, "attempt": attempt + 1}, delay_seconds=delay)
        next_at = utcnow() + dt.timedelta(seconds=delay)
        claimed.record(RETRYING, code=status, error=error, next_attempt_at=next_at)
        log.info(
            "callback %s of request %s: attempt %d failed (%s); next in %.0f s (dequeued %d times)",
            eid,
            request_id,
            attempt,
            status if status is not None else error,
            delay,
            dequeue_count,
        )
        return RETRYING
    claimed.record(outcome, code=status, error=error, reason=reason)
    if outcome == DELIVERED:
        log.info("callback %s of request %s delivered at attempt %d", eid, request_id, attempt)
    else:
        log.warning("callback %s of request %s abandoned: %s", eid, request_id, reason)
    return outcome


def _record(
    table: TableClient,
    request_id: str,
    eid: str,
    status: str,
    attempts_log: list[dict[str, Any]],
    *,
    code: int | None = None,
    error: str | None = None,
    reason: str | None = None,
    next_attempt_at: dt.datetime | None = None,
) -> None:
    now = utcnow()
    fields: dict[str, Any] = {
        "PartitionKey": request_id,
        "RowKey": eid,
        "Status": status,
        "LastStatus": code if code is not None else 0,
        "LastError": error or "",
        "AttemptLog": json.dumps(attempts_log[-MAX_ATTEMPTS:], separators=(",", ":")),
        "NextAttemptAt": next_attempt_at or "",
        "Reason": reason or "",
    }
    if status == DELIVERED:
        fields["DeliveredAt"] = now
    if status == ABANDONED:
        fields["AbandonedAt"] = now
    table.update_entity(fields, mode=UpdateMode.MERGE)


def record_poison(rt: Runtime, body: bytes, dequeue_count: int | None) -> str:
    """A `dsr-callbacks` message the host gave up on: its delivery becomes `abandoned`, saying why."""
    try:
        message = json.loads(body)
        request_id, eid = str(message["requestId"]), str(message["eventId"])
    except (ValueError, KeyError, TypeError):
        log.error("an unreadable callback message landed in the poison queue")
        return "ignored"
    table = _table(rt)
    row = _get_row(table, request_id, eid)
    if row is None or row.get("Status") in FINAL:
        return "ignored"
    reason = (
        f"the delivery step failed {dequeue_count or 'several'} times; its message is in the poison queue"
    )
    attempts_log = json.loads(row.get("AttemptLog") or "[]")
    _record(
        table,
        request_id,
        eid,
        ABANDONED,
        attempts_log,
        code=int(row.get("LastStatus") or 0) or None,
        error=row.get("LastError") or None,
        reason=reason,
    )
    log.error("callback %s of request %s abandoned: its message landed in the poison queue", eid, request_id)
    return ABANDONED


# -- the status view ----------------------------------------------------------------------------------------------
def _iso_or_none(value: Any) -> str | None:
    return iso(value) if isinstance(value, dt.datetime) else None


def history(rt: Runtime, request_id: str) -> list[dict[str, Any]]:
    """The request's callback deliveries, oldest first (for the status view)."""
    try:
        rows = list(_table(rt).query_entities("PartitionKey eq @pk", parameters={"pk": request_id}))
    except ResourceNotFoundError:
        return []
    rows.sort(key=lambda r: (_iso_or_none(r.get("QueuedAt")) or "", r["RowKey"]))
    return [
        {
            "event": r.get("Event"),
            "id": r["RowKey"],
            "status": r.get("Status"),
            "attempts": int(r.get("Attempts") or 0),
            "queuedAt": _iso_or_none(r.get("QueuedAt")),
            "lastAttemptAt": _iso_or_none(r.get("LastAttemptAt")),
            "lastStatus": int(r.get("LastStatus") or 0) or None,
            "lastError": r.get("LastError") or None,
            "nextAttemptAt": _iso_or_none(r.get("NextAttemptAt")) if r.get("Status") == RETRYING else None,
            "deliveredAt": _iso_or_none(r.get("DeliveredAt")),
            "abandonedAt": _iso_or_none(r.get("AbandonedAt")),
            "reason": r.get("Reason") or None,
            "attemptLog": json.loads(r.get("AttemptLog") or "[]"),
        }
        for r in rows
    ]
