"""Read-only lookups: the list of requests (filters, paging), requests by person, offboarding events."""

from __future__ import annotations

import datetime as dt

import azure.functions as func
from pydantic import ValidationError

from shared.core.errors import BadRequestError, ValidationFailedError
from shared.core.model import iso
from shared.edge import offboarding
from shared.edge.http_api import _base_url, _body, json_response, validation_errors
from shared.lifecycle import deadlines
from shared.lifecycle.submission import SearchIn
from shared.runtime import Runtime

SUBJECT_PARAMS = ("subjectObjectId", "subjectUserPrincipalName", "subjectEmail")
EVENT_STATUSES = ("accepted", "duplicate", "rejected", "failed")


def list_requests(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """`GET /api/v1/requests`: the operators' list, oldest first, filtered by `status` (comma-separated),
    `overdue=true`, `dueBefore` (ISO 8601), in pages of `pageSize` (default 50, at most 200) with `nextLink`.
    With `subjectObjectId` (or UPN, e-mail) instead: the requests about one person, newest first, through the
    keyed pseudonym of the identifier (POST /requests:search keeps it out of the URL and is preferred)."""
    given = [(name, req.params.get(name, "").strip()) for name in SUBJECT_PARAMS if name in req.params]
    if given:
        others = sorted(set(req.params) & {"status", "overdue", "dueBefore", "pageSize", "continuationToken"})
        if len(given) != 1 or not given[0][1] or len(given[0][1]) > 256 or others:
            raise BadRequestError(
                f"give exactly one of {', '.join(SUBJECT_PARAMS)}, and no list filter with it"
            )
        return json_response({"value": _requests_of(rt, given[0][1]), "nextLink": None})
    statuses = [s.strip() for s in req.params.get("status", "").split(",") if s.strip()]
    unknown = [s for s in statuses if s not in deadlines.LIST_STATUSES]
    if unknown:
        raise BadRequestError(
            f"status {unknown[0][:40]!r} is not one of {', '.join(deadlines.LIST_STATUSES)}"
        )
    overdue = req.params.get("overdue", "false")
    if overdue not in ("true", "false"):
        raise BadRequestError("overdue must be true or false")
    due_before = None
    if "dueBefore" in req.params:  # given empty: not a date-time either
        try:
            due_before = dt.datetime.fromisoformat(req.params["dueBefore"].replace("Z", "+00:00"))
        except ValueError:
            raise BadRequestError(
                "dueBefore must be an ISO 8601 date-time, e.g. 2026-12-31T00:00:00Z"
            ) from None
        if due_before.tzinfo is None:
            due_before = due_before.replace(tzinfo=dt.UTC)
    size = req.params.get("pageSize", "50")
    if not size.isdigit() or not 1 <= int(size) <= deadlines.MAX_PAGE_SIZE:
        raise BadRequestError(f"pageSize must be a whole number from 1 to {deadlines.MAX_PAGE_SIZE}")
    token = req.params.get("continuationToken")
    if token is not None and len(token) > 1000:
        raise BadRequestError("continuationToken is not one this API handed out")
    page = deadlines.list_page(rt, _base_url(req), statuses, overdue == "true", due_before, int(size), token)
    return json_response(page)


def search_requests(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """`POST /api/v1/requests:search` with `{"subjectObjectId": ...}` (or UPN, e-mail): the same lookup with the
    identifier in the body, so it stays out of URLs, proxy logs and request telemetry. Preferred over the GET."""
    try:
        search = SearchIn.model_validate(_body(req))
    except ValidationError as exc:
        raise ValidationFailedError(
            "the search body does not validate", errors=validation_errors(exc)
        ) from None
    return json_response({"value": _requests_of(rt, search.identifier)})


def _requests_of(rt: Runtime, identifier: str) -> list[dict[str, object]]:
    rows = rt.store.requests_of_subject(rt.pseudonym(identifier))
    items: list[dict[str, object]] = []
    for row in sorted(rows, key=lambda r: r["receivedAt"] or 0, reverse=True):
        request = rt.store.get_request(row["id"])
        if request is not None:
            items.append(
                {
                    "id": request.id,
                    "type": request.type,
                    "status": request.status,
                    "source": request.source,
                    "receivedAt": iso(request.received_at),
                    "dueAt": iso(request.due_at),
                    "notBefore": iso(request.not_before),
                }
            )
    return items


def offboarding_events(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """`GET /api/v1/offboarding/events?status=rejected`: what happened to offboarding messages."""
    status = req.params.get("status", "rejected")
    if status not in EVENT_STATUSES:
        raise BadRequestError(f"status must be one of {', '.join(EVENT_STATUSES)}")
    rows = rt.store.events_with_status(status)
    return json_response({"value": [offboarding.event_view(r) for r in rows]})
