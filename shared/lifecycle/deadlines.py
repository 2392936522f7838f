"""Deadlines: GDPR Art. 12(3) gives one month from receipt to answer a request, extendable once by up to two
further months "where necessary, taking into account the complexity and number of the requests", the data
subject being told within the first month.

`dueAt` is received + one calendar month (+ the extension); `extend` records the one extension with its reason
and tells the requester; the deadline timer marks open requests near due and overdue (log, audit trail, status);
`list_page` answers the operators' list with filters and paging.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
from typing import Any

from shared.core.errors import BadRequestError, ConflictError
from shared.core.model import TERMINAL_REQUEST, DsrRequest, iso, utcnow
from shared.core.principal import Principal
from shared.evidence import audit
from shared.lifecycle import callbacks
from shared.lifecycle.changes import TrailEntry, change_request, save
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError

log = logging.getLogger(__name__)

NEAR_DUE = dt.timedelta(days=7)  # an open request this close to its deadline is flagged `near_due`
MAX_EXTENSION_MONTHS = 2
OPEN_STATUSES = ("scheduled", "awaiting_approval", "accepted", "running")
LIST_STATUSES = (*OPEN_STATUSES, *sorted(TERMINAL_REQUEST))
MAX_PAGE_SIZE = 200


def extend(rt: Runtime, request_id: str, months: int, reason: str, principal: Principal) -> DsrRequest:
    """Extend the deadline once, by 1 or 2 months, before it has passed; recorded, audited and announced."""
    if months not in range(1, MAX_EXTENSION_MONTHS + 1):
        raise BadRequestError(f"months must be 1 or {MAX_EXTENSION_MONTHS}")

    def apply(request: DsrRequest) -> TrailEntry:
        if request.status in TERMINAL_REQUEST:
            raise ConflictError(f"the request is {request.status}: there is no deadline left to extend")
        if request.extension:
            raise ConflictError(
                f"the deadline was already extended on {request.extension['at']}; GDPR allows one extension"
            )
        now = utcnow()
        if now > request.due_at:
            raise ConflictError(
                f"the deadline passed on {iso(request.due_at)}: an extension must be made before it"
            )
        before = request.due_at
        request.extension = {"months": months, "reason": reason, "by": principal.as_dict(), "at": iso(now)}
        request.deadline_flag = None  # the timer judges the new date afresh
        request.updated_at = now
        details = {"months": months, "dueBefore": iso(before), "dueAt": iso(request.due_at)}
        return TrailEntry(principal, audit.EXTENDED, reason, details)

    try:
        request, _ = change_request(rt, request_id, apply)
    except ConcurrencyError:
        raise ConflictError("the request kept changing; try again") from None
    announce(rt, request, "extended")
    log.info("request %s: deadline extended by %d month(s) to %s", request.id, months, iso(request.due_at))
    return request


def mark_deadlines(rt: Runtime, now: dt.datetime | None = None) -> dict[str, int]:
    """Timer: flag open requests that became near due or overdue (once per state), in the request and the audit
    trail, with a warning in the log an alert can watch. Returns how many were flagged in each state."""
    now = now or utcnow()
    flagged = {"near_due": 0, "overdue": 0}
    pending: list[DsrRequest] = []
    continuation: dict[str, str] | None = None
    while True:
        page, continuation = rt.store.list_requests(
            OPEN_STATUSES, due_before=now + NEAR_DUE, page_size=1000, continuation=continuation
        )
        pending.extend(page)
        if not continuation:
            break
    for request in pending:
        state = request.deadline_state(now, NEAR_DUE)
        if state not in flagged or request.deadline_flag == state:
            continue
        request.deadline_flag = state
        details = {"state": state, "dueAt": iso(request.due_at)}
        try:
            save(rt, request, TrailEntry("workflow.deadlines", audit.DEADLINE, details=details))
        except ConcurrencyError:
            continue  # changed meanwhile; the next run looks again
        log.warning(
            "request %s is %s: due %s, status %s", request.id, state, iso(request.due_at), request.status
        )
        flagged[state] += 1
    return flagged


def deadline_view(request: DsrRequest, now: dt.datetime | None = None) -> dict[str, Any]:
    return {
        "dueAt": iso(request.due_at),
        "state": request.deadline_state(now or utcnow(), NEAR_DUE),
        "extension": request.extension,
    }


def summary(request: DsrRequest, base_url: str, now: dt.datetime) -> dict[str, Any]:
    state = request.deadline_state(now, NEAR_DUE)
    return {
        "id": request.id,
        "type": request.type,
        "status": request.status,
        "dryRun": request.dry_run,
        "reference": request.reference,
        "source": request.source,
        "receivedAt": iso(request.received_at),
        "dueAt": iso(request.due_at),
        "deadline": state,
        "overdue": state == "overdue",
        "extended": bool(request.extension),
        "completedAt": iso(request.completed_at),
        "links": {"self": f"{base_url}/api/v1/requests/{request.id}"},
    }


def list_page(
    rt: Runtime,
    base_url: str,
    statuses: list[str],
    overdue: bool,
    due_before: dt.datetime | None,
    page_size: int,
    token: str | None,
) -> dict[str, Any]:
    """One page of the list; `nextLink` carries the filters and an opaque continuation token."""
    now = utcnow()
    if overdue:
        statuses = [s for s in (statuses or OPEN_STATUSES) if s in OPEN_STATUSES]
        if not statuses:
            return {"value": [], "nextLink": None}  # an ended request is never overdue
        due_before = min(due_before, now) if due_before else now
    requests, continuation = rt.store.list_requests(
        statuses, due_before=due_before, page_size=page_size, continuation=_decode(token)
    )
    next_link = None
    if continuation:
        query = [f"pageSize={page_size}", f"continuationToken={_encode(continuation)}"]
        if statuses:
            query.append("status=" + ",".join(statuses))
        if overdue:
            query.append("overdue=true")
        elif due_before:
            query.append("dueBefore=" + (iso(due_before) or ""))
        next_link = f"{base_url}/api/v1/requests?" + "&".join(query)
    return {"value": [summary(r, base_url, now) for r in requests], "nextLink": next_link}


def _encode(continuation: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(continuation, sort_keys=True).encode()).decode().rstrip("=")


def _decode(token: str | None) -> dict[str, str] | None:
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise BadRequestError("continuationToken is not one this API handed out") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BadRequestError("continuationToken is not one this API handed out")
    return value


def announce(rt: Runtime, request: DsrRequest, event: str) -> None:
    """Tell the requester (its callbackUrl) about a status they care about; never fails the caller's step."""
    if not request.callback_url:
        return

    try:
        callbacks.notify(rt, request, event)
    except Exception:
        log.exception("request %s: the %s callback could not be queued", request.id, event)
