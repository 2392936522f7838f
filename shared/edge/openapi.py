"""The HTTP API's OpenAPI 3.1 document, built from the request models so the two cannot drift.

Served at `GET /api/v1/openapi.json` (anonymous: the contract holds no data) and kept in the repository as
docs/openapi.json (`python -m shared.edge.openapi` rewrites it; a test checks it is current). Request bodies are the
pydantic models' JSON Schemas (draft 2020-12, as OpenAPI 3.1 uses); the cross-field rules the models enforce
(a subject or wholeWorkspace, deleteWorkspace.confirm equal to the workspace name, ...) are described, and a
body breaking one answers 422.
"""

from __future__ import annotations

import copy
import functools
import json
import sys
from pathlib import Path
from typing import Any, get_args

from shared.core.model import RequestStatus
from shared.edge.auth import POLICIES
from shared.lifecycle.submission import DecisionIn, ExtendIn, SearchIn, SubmitIn

DOCUMENT_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REQUEST_ID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
STATUSES = list(get_args(RequestStatus))
PROBLEMS = {
    400: "The request is not valid (malformed JSON, a bad header or query parameter)",
    401: "No valid credential. The function key is missing or wrong: the Functions host answers, without a "
    "body. The bearer token is missing, expired, not for this API or not validly signed: the app answers "
    "application/problem+json (a Problem) and WWW-Authenticate names the error (RFC 6750).",
    403: "The caller lacks the app role this operation needs, or the operation is not allowed (for example "
    "approving one's own workspace deletion)",
    404: "No request with this id",
    409: "The request is not in a state that allows this",
    410: "The package's retention period has ended: it is deleted",
    413: "The body is larger than 64 KiB",
    415: "The body is not application/json",
    422: "The body does not validate against the schema or its rules",
    503: "A service this call depends on (the identity provider's signing keys) did not answer",
}


def _schema_of(model: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    return schema


def _problem_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": PROBLEMS[status],
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status == 401:
        # The host's own 401 (no or a wrong function key) has no body, so no content is promised here; the
        # app's 401 (token) is problem+json, as the description says.
        del response["content"]
        response["headers"] = {
            "WWW-Authenticate": {
                "description": 'RFC 6750 challenge, e.g. Bearer realm="aml-dsr", error="invalid_token"',
                "schema": {"type": "string"},
            }
        }
    if status == 503:
        response["headers"] = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return response


def _problems(*statuses: int) -> dict[str, Any]:
    return {str(s): _problem_response(s) for s in (400, 401, 403, *statuses)}


def _json(schema_ref: str, description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def _roles(handler: str) -> str:
    roles = sorted(POLICIES[handler])
    return f"App roles (any one; enforced for bearer tokens): {', '.join(roles)}."


REQUEST_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "The request id (a lower-case UUID, as returned by POST /v1/requests)",
    "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
}
RETRY_AFTER = {
    "description": "Seconds to wait before polling",
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
LOCATION = {"description": "The request's status URL", "schema": {"type": "string"}}
JSON_BODY_PROBLEMS = (413, 415, 422)


def _decision(action: str, handler: str, what: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": handler,
            "summary": what,
            "description": _roles(handler)
            + " The body is optional; when sent it is application/json with an optional reason.",
            "tags": ["decisions"],
            "parameters": [REQUEST_ID],
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/DecisionIn"}}},
            },
            "responses": {
                "200": _json("RequestView", f"The request after the {action}"),
                **_problems(404, 409, *JSON_BODY_PROBLEMS, 503),
            },
        }
    }


@functools.cache
def _build() -> dict[str, Any]:
    components: dict[str, Any] = {}
    submit_schema = _schema_of(SubmitIn, components)
    components["SubmitIn"] = submit_schema
    components["DecisionIn"] = _schema_of(DecisionIn, components)
    components["SearchIn"] = _schema_of(SearchIn, components)
    components["ExtendIn"] = _schema_of(ExtendIn, components)
    components["Principal"] = {
        "type": "object",
        "required": ["id", "name", "source"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "source": {
                "type": "string",
                "enum": ["entra", "entra-app", "easyauth", "function-key", "system"],
            },
        },
    }
    components["Problem"] = {
        "type": "object",
        "description": "RFC 7807 problem details",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }
    nullable_time = {"type": ["string", "null"], "format": "date-time"}
    components["RequestView"] = {
        "type": "object",
        "description": "A request's status: progress per task family, due date (received + one month), links",
        "required": ["id", "type", "status", "dryRun", "receivedAt", "dueAt", "progress", "errors", "links"],
        "properties": {
            "id": {"type": "string", "pattern": REQUEST_ID_PATTERN},
            "type": {"type": "string", "enum": ["export", "erasure"]},
            "status": {"type": "string", "enum": STATUSES},
            "dryRun": {"type": "boolean"},
            "reference": {"type": ["string", "null"]},
            "deleteWorkspace": {"type": ["object", "null"]},
            "submittedBy": {"oneOf": [{"$ref": "#/components/schemas/Principal"}, {"type": "null"}]},
            "decision": {
                "type": ["object", "null"],
                "properties": {
                    "action": {"type": "string", "enum": ["approved", "rejected", "cancelled"]},
                    "by": {"$ref": "#/components/schemas/Principal"},
                    "at": {"type": "string", "format": "date-time"},
                    "reason": {"type": ["string", "null"]},
                    "statusBefore": {"type": "string"},
                },
            },
            "receivedAt": {"type": "string", "format": "date-time"},
            "updatedAt": nullable_time,
            "completedAt": nullable_time,
            "dueAt": {"type": "string", "format": "date-time"},
            "deadline": {
                "type": "object",
                "description": "on_time, near_due (within 7 days) or overdue while open; met or missed once "
                "ended; closed when rejected or cancelled",
                "required": ["dueAt", "state", "extension"],
                "properties": {
                    "dueAt": {"type": "string", "format": "date-time"},
                    "state": {
                        "type": "string",
                        "enum": ["on_time", "near_due", "overdue", "met", "missed", "closed"],
                    },
                    "extension": {"type": ["object", "null"]},
                },
            },
            "packageExpiresAt": nullable_time,
            "identity": {
                "type": "object",
                "description": "How the subject was identified, once planning resolved it through Microsoft Graph: "
                "each identifier used and its source (request, graph, graph-deleted-items), Graph's outcome (resolved, "
                "resolved from deleted items, not found, denied, not configured, not allowed, ambiguous, failed), "
                "and the kinds of identifier the matching fields need that stayed unknown",
                "properties": {
                    "resolvedAt": {"type": "string", "format": "date-time"},
                    "identifiers": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["kind", "value", "source"],
                            "properties": {
                                "kind": {
                                    "type": "string",
                                    "enum": ["objectId", "userPrincipalName", "email", "otherMails"],
                                },
                                "value": {"type": "string"},
                                "source": {
                                    "type": "string",
                                    "enum": ["request", "graph", "graph-deleted-items"],
                                },
                            },
                        },
                    },
                    "graph": {"type": "object"},
                    "missing": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["kind", "fields", "effect"],
                            "properties": {
                                "kind": {"type": "string"},
                                "fields": {"type": "array", "items": {"type": "string"}},
                                "effect": {"type": "string"},
                            },
                        },
                    },
                },
            },
            "callback": {
                "type": "object",
                "description": "Where status events go (without the URL's query) and their deliveries",
                "properties": {
                    "url": {"type": "string"},
                    "deliveries": {"type": "array", "items": {"type": "object"}},
                },
            },
            "progress": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "required": ["title", "tasks"],
                    "properties": {"title": {"type": "string"}},
                    "additionalProperties": {"type": "integer", "minimum": 0},
                },
            },
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["reason"],
                    "properties": {
                        "task": {"type": ["string", "null"]},
                        "family": {"type": ["string", "null"]},
                        "workspace": {"type": ["string", "null"]},
                        "reason": {"type": ["string", "null"]},
                    },
                },
            },
            "links": {
                "type": "object",
                "required": ["self"],
                "properties": {
                    "self": {"type": "string"},
                    "manifest": {"type": "string"},
                    "erasureRecord": {"type": "string"},
                    "package": {"type": "string"},
                },
                "additionalProperties": {"type": "string"},
            },
        },
    }
    components["AuditEntry"] = {
        "type": "object",
        "required": ["seq", "at", "actor", "action", "reason", "details", "prev", "hash"],
        "properties": {
            "seq": {"type": "integer"},
            "at": {"type": "string"},
            "actor": {"type": "object"},
            "action": {"type": "string"},
            "reason": {"type": ["string", "null"]},
            "details": {"type": "object"},
            "prev": {"type": "string"},
            "hash": {"type": "string"},
        },
    }
    components["AuditView"] = {
        "type": "object",
        "required": ["requestId", "entries", "verification"],
        "properties": {
            "requestId": {"type": "string", "pattern": REQUEST_ID_PATTERN},
            "entries": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}},
            "verification": {
                "type": "object",
                "required": ["valid", "entries", "head", "problems"],
                "properties": {
                    "valid": {"type": "boolean"},
                    "entries": {"type": "integer", "minimum": 0},
                    "head": {"type": ["string", "null"]},
                    "problems": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["seq", "problem"],
                            "properties": {
                                "seq": {"type": "integer"},
                                "rowKey": {"type": ["string", "null"]},
                                "problem": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    }
    components["RequestSummaryList"] = {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "array", "items": {"type": "object"}},
            "nextLink": {"type": ["string", "null"]},
        },
    }
    paths: dict[str, Any] = {
        "/v1/requests": {
            "post": {
                "operationId": "submit",
                "summary": "Submit an export or erasure request",
                "description": _roles("submit")
                + " At least one subject identifier and a scope naming at least one workspace, resource group "
                "or subscription; or wholeWorkspace with explicit workspaces; or deleteWorkspace (only when "
                "DSR_ALLOW_WORKSPACE_DELETION is on, else 403). A repeated POST with the same Idempotency-Key "
                "and body returns the first request (Idempotent-Replayed: true); with another body, 409.",
                "tags": ["requests"],
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[!-~]{1,200}$"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SubmitIn"}}},
                },
                "responses": {
                    "202": _json(
                        "RequestView",
                        "Accepted: stored, and planned or waiting for approval",
                        {
                            "Location": {**LOCATION, "required": True},
                            "Retry-After": {**RETRY_AFTER, "required": True},
                            "Idempotent-Replayed": {"schema": {"type": "string", "enum": ["true"]}},
                        },
                    ),
                    **_problems(409, *JSON_BODY_PROBLEMS, 503),
                },
            },
            "get": {
                "operationId": "list_requests",
                "summary": "List requests (filters, paging), or the requests about one person",
                "description": _roles("list_requests")
                + " Without a subject parameter: the requests in the order they were received (oldest first), "
                "filtered by status (comma-separated), overdue=true (open and past dueAt) and dueBefore, in "
                "pages of pageSize; follow nextLink for the next page (a page may hold fewer items than "
                "pageSize and still have a nextLink). With exactly one subject parameter (and no filter): the "
                "requests about that person, newest first, looked up through the keyed pseudonym of the "
                "identifier; POST /v1/requests:search keeps the identifier out of the URL and is preferred.",
                "tags": ["requests"],
                "parameters": [
                    {
                        "name": name,
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 256},
                    }
                    for name in ("subjectObjectId", "subjectUserPrincipalName", "subjectEmail")
                ]
                + [
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "description": "One status or several, comma-separated",
                        "schema": {"type": "string", "maxLength": 300},
                    },
                    {
                        "name": "overdue",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["true", "false"]},
                    },
                    {
                        "name": "dueBefore",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "date-time"},
                    },
                    {
                        "name": "pageSize",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[0-9]{1,3}$"},
                    },
                    {
                        "name": "continuationToken",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 1000},
                    },
                ],
                "responses": {
                    "200": _json("RequestSummaryList", "The requests found (possibly none)"),
                    **_problems(400, 503),
                },
            },
        },
        "/v1/requests:search": {
            "post": {
                "operationId": "search_requests",
                "summary": "The requests about one person, newest first (identifier in the body)",
                "description": _roles("search_requests")
                + " Exactly one identifier. Preferred over GET /v1/requests?subject...: the identifier stays out "
                "of URLs, proxy logs and request telemetry. The lookup goes through its keyed pseudonym.",
                "tags": ["requests"],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SearchIn"}}},
                },
                "responses": {
                    "200": _json("RequestSummaryList", "The requests found (possibly none)"),
                    **_problems(*JSON_BODY_PROBLEMS, 503),
                },
            }
        },
        "/v1/requests/{id}": {
            "get": {
                "operationId": "get_request",
                "summary": "A request's status",
                "description": _roles("get_request"),
                "tags": ["requests"],
                "parameters": [REQUEST_ID],
                "responses": {
                    "200": _json("RequestView", "The request", {"Retry-After": RETRY_AFTER}),
                    **_problems(404, 503),
                },
            }
        },
        "/v1/requests/{id}:approve": _decision("approval", "approve_request", "Approve an erasure"),
        "/v1/requests/{id}:reject": _decision("rejection", "reject_request", "Reject an erasure"),
        "/v1/requests/{id}:cancel": _decision("cancellation", "cancel_request", "Cancel a request"),
        "/v1/requests/{id}:retry": {
            "post": {
                "operationId": "retry",
                "summary": "Re-run the failed tasks of a request that ended with errors",
                "description": _roles("retry"),
                "tags": ["decisions"],
                "parameters": [REQUEST_ID],
                "responses": {
                    "202": _json("RequestView", "The request, running again", {"Location": LOCATION}),
                    **_problems(404, 409, 503),
                },
            }
        },
        "/v1/requests/{id}:extend": {
            "post": {
                "operationId": "extend_request",
                "summary": "Extend the request's deadline once, by one or two months",
                "description": _roles("extend_request")
                + " GDPR Art. 12(3): once, by at most two further months, before the deadline has passed, "
                "with the reason (recorded in the audit trail; the requester is told through the callback).",
                "tags": ["decisions"],
                "parameters": [REQUEST_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ExtendIn"}}},
                },
                "responses": {
                    "200": _json("RequestView", "The request with its new dueAt"),
                    **_problems(404, 409, *JSON_BODY_PROBLEMS, 503),
                },
            }
        },
        "/v1/requests/{id}/audit": {
            "get": {
                "operationId": "get_audit",
                "summary": "The request's audit trail and the verification of its hash chain",
                "description": _roles("get_audit"),
                "tags": ["audit"],
                "parameters": [REQUEST_ID],
                "responses": {
                    "200": _json("AuditView", "The entries in order, and whether the chain holds"),
                    **_problems(404, 503),
                },
            }
        },
        "/v1/requests/{id}/package": {
            "get": {
                "operationId": "get_package",
                "summary": "Download the request's package (a zip), through a fresh short-lived link",
                "description": _roles("get_package")
                + " Redirects to the package zip with a user delegation SAS minted for this call: read only, "
                "https only, valid for DSR_PACKAGE_SAS_MINUTES (at most 60). This route is the stable link to "
                "paste in a ticket: it works for the package's retention period (packageExpiresAt in the "
                "status) and answers 410 after it. The zip holds the JSON Lines files, manifest.json (every "
                "file's sha-256), erasure-record.json for erasures, and index.html to read it all offline.",
                "tags": ["requests"],
                "parameters": [REQUEST_ID],
                "responses": {
                    "302": {
                        "description": "The link, in Location (a credential: not cached, not to be logged)",
                        "headers": {"Location": {**LOCATION, "required": True, "description": "The SAS URL"}},
                    },
                    **_problems(404, 409, 410, 503),
                },
            }
        },
        "/v1/offboarding/events": {
            "get": {
                "operationId": "offboarding_events",
                "summary": "What happened to offboarding messages",
                "description": _roles("offboarding_events"),
                "tags": ["offboarding"],
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["accepted", "duplicate", "rejected", "failed"]},
                    }
                ],
                "responses": {
                    "200": _json("RequestSummaryList", "The events with that status"),
                    **_problems(503),
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "operationId": "get_openapi",
                "summary": "This document",
                "description": "Anonymous: no key, no token (the contract holds no data).",
                "tags": ["meta"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Azure ML data subject requests",
            "version": "1.0.0",
            "description": "GDPR data subject requests (export, erasure) for Azure Machine Learning. Every "
            "operation but this document needs the function key (x-functions-key, checked by the Functions "
            "host) and, when DSR_REQUIRE_ENTRA_TOKEN is on, an Entra ID access token for the API holding one "
            "of the operation's app roles (DSR.Submit, DSR.Approve, DSR.Read). A bearer token that is sent is "
            "always validated. Errors are RFC 7807 problem+json. See docs/security.md.",
        },
        "servers": [{"url": "/api"}],
        "security": [{"functionKey": [], "entraToken": []}, {"functionKey": []}],
        "tags": [{"name": t} for t in ("requests", "decisions", "audit", "offboarding", "meta")],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
                "entraToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
        },
    }


@functools.cache
def query_parameters(operation_id: str) -> frozenset[str]:
    """The query parameters the document declares for an operation (handler name)."""
    for operations in _build()["paths"].values():
        for operation in operations.values():
            if operation.get("operationId") == operation_id:
                return frozenset(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")
    return frozenset()


def document() -> dict[str, Any]:
    return copy.deepcopy(_build())


def text() -> str:
    return json.dumps(_build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    DOCUMENT_PATH.write_text(text())
    print(f"wrote {DOCUMENT_PATH}", file=sys.stderr)
