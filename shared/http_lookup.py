"""Read-only lookups for other services: requests by person, offboarding events by status."""

from __future__ import annotations

import azure.functions as func
from pydantic import ValidationError

from shared import offboarding
from shared.errors import BadRequestError, ValidationFailedError
from shared.http_api import _body, json_response
from shared.model import iso
from shared.requests_api import SearchIn
from shared.runtime import Runtime

SUBJECT_PARAMS = ("subjectObjectId", "subjectUserPrincipalName", "subjectEmail")
EVENT_STATUSES = ("accepted", "duplicate", "rejected", "failed")


def requests_by_subject(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """`GET /api/v1/requests?subjectObjectId=...`: the requests about one person, newest first. The lookup goes
    through the keyed pseudonym of the identifier: the index never holds it in clear."""
    given = [(name, req.params.get(name, "").strip()) for name in SUBJECT_PARAMS if req.params.get(name)]
    if len(given) != 1 or not given[0][1] or len(given[0][1]) > 256:
        raise BadRequestError(f"give exactly one of {', '.join(SUBJECT_PARAMS)}")
    return json_response({"value": _requests_of(rt, given[0][1])})


def search_requests(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """`POST /api/v1/requests:search` with `{"subjectObjectId": ...}` (or UPN, e-mail): the same lookup with the
    identifier in the body, so it stays out of URLs, proxy logs and request telemetry. Preferred over the GET."""
    try:
        search = SearchIn.model_validate(_body(req))
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise ValidationFailedError("the search body does not validate", errors=errors) from None
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
