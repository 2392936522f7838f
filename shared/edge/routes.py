"""The HTTP API's route table, and `handle`, which runs a call through its route's row.

One row per operation: its path and method, the Functions function that serves it, the handler, the app roles
that may call it (ANONYMOUS: none, not even a key), and what the OpenAPI document says of it. From the table:
- function_app.py registers one HTTP function per row (`app.route`, path and method from the row);
- `handle` enforces the row's roles and query parameters; a handler without a row is refused to every caller
  (fail closed);
- shared/edge/openapi writes the document (served here, by `get_openapi`, and kept as docs/openapi.json).
"""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
from pydantic import BaseModel

from shared.core import telemetry
from shared.core.errors import BadRequestError, ForbiddenError, ProblemError
from shared.core.principal import ROLE_APPROVE, ROLE_READ, ROLE_SUBMIT, reset_authenticated, set_authenticated
from shared.edge import auth, http_api, http_lookup, http_ops, openapi
from shared.edge.openapi import Answer, Header, Parameter
from shared.lifecycle.submission import DecisionIn, ExtendIn, SearchIn, SubmitIn
from shared.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)

Handler = Callable[[Runtime, func.HttpRequest], func.HttpResponse]


@dataclass(frozen=True)
class Route:
    """One operation of the HTTP API.

    `responses` are the successful answers by status; the problem answers are those every route of its kind may
    give (openapi.problem_statuses: a protected route, a path naming a request, a JSON body) and `problems`,
    the handler's own."""

    path: str  # the Functions route, under the host's route prefix (/api)
    method: str
    function: str  # the name of the Functions function serving it (portal, logs, admin API)
    handler: Handler
    roles: frozenset[str]  # any one of them; ANONYMOUS: no function key, no token
    summary: str
    tag: str
    responses: Mapping[int, Answer]
    description: str = ""  # after the sentence naming the roles
    body: type[BaseModel] | None = None  # an application/json body, validated against this model
    body_required: bool = True
    parameters: tuple[Parameter, ...] = ()
    problems: tuple[int, ...] = ()

    @property
    def operation_id(self) -> str:
        """The OpenAPI operationId (and the name in the app's log lines): the handler's name."""
        return self.handler.__name__

    @property
    def query(self) -> frozenset[str]:
        """The query parameters the route takes; `handle` refuses any other."""
        return frozenset(p.name for p in self.parameters if p.where == "query")


ANONYMOUS: frozenset[str] = frozenset()  # anyone: no function key, no token
SUBMIT = frozenset({ROLE_SUBMIT})
APPROVE = frozenset({ROLE_APPROVE})
READ = frozenset({ROLE_READ})

LOCATION = Header({"type": "string"}, "The request's status URL")
RETRY_AFTER = Header({"type": "string", "pattern": "^[0-9]+$"}, "Seconds to wait before polling")
SUMMARY_LIST = "RequestSummaryList"


def _query(name: str, schema: Mapping[str, Any], description: str | None = None) -> Parameter:
    return Parameter(name, "query", schema, description)


def _decision(verb: str, handler: Handler, roles: frozenset[str], noun: str, summary: str) -> Route:
    """approve, reject, cancel: one shape."""
    return Route(
        path=f"v1/requests/{{id}}:{verb}",
        method="POST",
        function=f"{verb}_request",
        handler=handler,
        roles=roles,
        summary=summary,
        tag="decisions",
        description="The body is optional; when sent it is application/json with an optional reason.",
        body=DecisionIn,
        body_required=False,
        responses={200: Answer(f"The request after the {noun}", "RequestView")},
        problems=(409,),
    )


def get_openapi(_rt: Runtime | None, req: func.HttpRequest) -> func.HttpResponse:
    """`GET /api/v1/openapi.json`: the API's OpenAPI 3.1 document (anonymous: it holds no data)."""

    return http_api.json_response(document(), 200, {"Cache-Control": "public, max-age=300"})


# The rows in the order the document lists them (paths, and tags by first use).
ROUTES: tuple[Route, ...] = (
    Route(
        path="v1/requests",
        method="POST",
        function="submit_request",
        handler=http_api.submit,
        roles=SUBMIT,
        summary="Submit an export or erasure request",
        tag="requests",
        description="At least one subject identifier and a scope naming at least one workspace, resource group "
        "or subscription; or wholeWorkspace with explicit workspaces; or deleteWorkspace (only when "
        "DSR_ALLOW_WORKSPACE_DELETION is on, else 403). A repeated POST with the same Idempotency-Key "
        "and body returns the first request (Idempotent-Replayed: true); with another body, 409.",
        parameters=(Parameter("Idempotency-Key", "header", {"type": "string", "pattern": "^[!-~]{1,200}$"}),),
        body=SubmitIn,
        responses={
            202: Answer(
                "Accepted: stored, and planned or waiting for approval",
                "RequestView",
                {
                    "Location": Header(LOCATION.schema, LOCATION.description, required=True),
                    "Retry-After": Header(RETRY_AFTER.schema, RETRY_AFTER.description, required=True),
                    "Idempotent-Replayed": Header({"type": "string", "enum": ["true"]}),
                },
            )
        },
        problems=(409,),
    ),
    Route(
        path="v1/requests",
        method="GET",
        function="list_requests",
        handler=http_lookup.list_requests,
        roles=READ | APPROVE,
        summary="List requests (filters, paging), or the requests about one person",
        tag="requests",
        description="Without a subject parameter: the requests in the order they were received (oldest first), "
        "filtered by status (comma-separated), overdue=true (open and past dueAt) and dueBefore, in "
        "pages of pageSize; follow nextLink for the next page (a page may hold fewer items than "
        "pageSize and still have a nextLink). With exactly one subject parameter (and no filter): the "
        "requests about that person, newest first, looked up through the keyed pseudonym of the "
        "identifier; POST /v1/requests:search keeps the identifier out of the URL and is preferred.",
        parameters=(
            *(_query(name, {"type": "string", "maxLength": 256}) for name in http_lookup.SUBJECT_PARAMS),
            _query("status", {"type": "string", "maxLength": 300}, "One status or several, comma-separated"),
            _query("overdue", {"type": "string", "enum": ["true", "false"]}),
            _query("dueBefore", {"type": "string", "format": "date-time"}),
            _query("pageSize", {"type": "string", "pattern": "^[0-9]{1,3}$"}),
            _query("continuationToken", {"type": "string", "maxLength": 1000}),
        ),
        responses={200: Answer("The requests found (possibly none)", SUMMARY_LIST)},
    ),
    Route(
        path="v1/requests:search",
        method="POST",
        function="search_requests",
        handler=http_lookup.search_requests,
        roles=READ,
        summary="The requests about one person, newest first (identifier in the body)",
        tag="requests",
        description="Exactly one identifier. Preferred over GET /v1/requests?subject...: the identifier stays out "
        "of URLs, proxy logs and request telemetry. The lookup goes through its keyed pseudonym.",
        body=SearchIn,
        responses={200: Answer("The requests found (possibly none)", SUMMARY_LIST)},
    ),
    Route(
        path="v1/requests/{id}",
        method="GET",
        function="get_request",
        handler=http_api.get_request,
        roles=READ | SUBMIT | APPROVE,
        summary="A request's status",
        tag="requests",
        responses={200: Answer("The request", "RequestView", {"Retry-After": RETRY_AFTER})},
    ),
    _decision(
        "approve", http_api.approve, APPROVE, "approval", "Approve an erasure or a whole-workspace export"
    ),
    _decision(
        "reject", http_api.reject, APPROVE, "rejection", "Reject an erasure or a whole-workspace export"
    ),
    _decision("cancel", http_api.cancel, SUBMIT | APPROVE, "cancellation", "Cancel a request"),
    Route(
        path="v1/requests/{id}:retry",
        method="POST",
        function="retry_request",
        handler=http_ops.retry,
        roles=SUBMIT | APPROVE,
        summary="Re-run the failed tasks of a request that ended with errors",
        tag="decisions",
        responses={202: Answer("The request, running again", "RequestView", {"Location": LOCATION})},
        problems=(409,),
    ),
    Route(
        path="v1/requests/{id}:extend",
        method="POST",
        function="extend_request",
        handler=http_ops.extend_request,
        roles=APPROVE,
        summary="Extend the request's deadline once, by one or two months",
        tag="decisions",
        description="GDPR Art. 12(3): once, by at most two further months, before the deadline has passed, "
        "with the reason (recorded in the audit trail; the requester is told through the callback).",
        body=ExtendIn,
        responses={200: Answer("The request with its new dueAt", "RequestView")},
        problems=(409,),
    ),
    Route(
        path="v1/requests/{id}/audit",
        method="GET",
        function="get_request_audit",
        handler=http_api.get_audit,
        roles=READ | APPROVE,
        summary="The request's audit trail and the verification of its keyed chain and anchors",
        tag="audit",
        responses={200: Answer("The entries in order, and whether the chain holds", "AuditView")},
    ),
    Route(
        path="v1/requests/{id}/package",
        method="GET",
        function="get_request_package",
        handler=http_api.get_package,
        roles=READ,
        summary="Download the request's package (a zip), through a fresh short-lived link",
        tag="requests",
        description="Redirects to the package zip with a user delegation SAS minted for this call: read only, "
        "https only, valid for DSR_PACKAGE_SAS_MINUTES (at most 60). This route is the stable link to "
        "paste in a ticket: it works for the package's retention period (packageExpiresAt in the "
        "status) and answers 410 after it. The zip holds the JSON Lines files, manifest.json (every "
        "file's sha-256), erasure-record.json for erasures, and index.html to read it all offline.",
        responses={
            302: Answer(
                "The link, in Location (a credential: not cached, not to be logged)",
                headers={"Location": Header(LOCATION.schema, "The SAS URL", required=True)},
            )
        },
        problems=(409, 410),
    ),
    Route(
        path="v1/offboarding/events",
        method="GET",
        function="list_offboarding_events",
        handler=http_lookup.offboarding_events,
        roles=READ,
        summary="What happened to offboarding messages",
        tag="offboarding",
        parameters=(_query("status", {"type": "string", "enum": list(http_lookup.EVENT_STATUSES)}),),
        responses={200: Answer("The events with that status", SUMMARY_LIST)},
    ),
    Route(
        path="v1/signing-key",
        method="GET",
        function="get_signing_key",
        handler=http_api.get_signing_key,
        roles=ANONYMOUS,
        summary="The public key that verifies the packages' signatures",
        tag="meta",
        description="Anonymous: no key, no token (a public key). A JWK Set with the EC P-256 key whose "
        "private part stays in Key Vault; `dsr verify --key` checks a package's manifest.json.jws and "
        "erasure-record.json.jws with it.",
        responses={200: Answer("The JWK Set", "SigningKeys")},
        problems=(404,),
    ),
    Route(
        path="v1/openapi.json",
        method="GET",
        function="get_openapi",
        handler=get_openapi,
        roles=ANONYMOUS,
        summary="This document",
        tag="meta",
        description="Anonymous: no key, no token (the contract holds no data).",
        responses={200: Answer("The OpenAPI 3.1 document", {"type": "object"})},
    ),
)


def route_for(handler: Callable[..., Any]) -> Route | None:
    """The row whose handler this is (the very function, not one of the same name); None: no row."""
    return next((route for route in ROUTES if route.handler is handler), None)


@functools.cache
def _document() -> dict[str, Any]:
    return openapi.document(ROUTES)


def document() -> dict[str, Any]:
    """The API's OpenAPI document (built once; a copy each call)."""
    return copy.deepcopy(_document())


def handle(req: func.HttpRequest, action: Handler) -> func.HttpResponse:
    """Run one handler for its authorized caller: the handler's row names the roles that may call it and the
    query parameters it takes; a handler without a row is refused (403) to every caller. Every ProblemError
    becomes problem+json, anything else a logged 500 problem. Log lines of a route with an `{id}` carry it as
    `requestId` (when it is a request id)."""
    path = urlsplit(req.url).path  # never the query: it may carry what should not be logged
    # Logs name the operation, not the path: a path segment is the caller's text (an e-mail typed as an id).
    operation = getattr(action, "__name__", "?")
    with telemetry.correlation(req.route_params.get("id")):
        try:
            route = route_for(action)
            if route is None:
                raise ForbiddenError("this route has no access policy")
            if route.roles == ANONYMOUS:
                _known_query(req, route)
                return action(None, req)  # type: ignore[arg-type]
            rt = get_runtime()
            principal = auth.authenticate(rt.settings, req)
            auth.authorize(rt.settings, principal, route.roles)
            _known_query(req, route)
            token = set_authenticated(principal)
            try:
                return action(rt, req)
            finally:
                reset_authenticated(token)
        except ProblemError as exc:
            if exc.status in (401, 403):
                log.warning("%s %s refused: %d %s", req.method, operation, exc.status, exc.detail)
            return http_api.problem_response(exc, path)
        except Exception:
            log.exception("unhandled error on %s %s", req.method, operation)
            return http_api.problem_response(
                ProblemError("The service failed to handle this request; it was logged."), path
            )


def _known_query(req: func.HttpRequest, route: Route) -> None:
    """Query parameters the route does not take are refused, as unknown body fields are (`code`, the host's
    function-key parameter, excepted)."""
    unknown = sorted(set(req.params) - route.query - {"code"})
    if unknown:
        raise BadRequestError(f"unknown query parameter {unknown[0][:40]!r}")
