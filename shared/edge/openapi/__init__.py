"""The HTTP API's OpenAPI 3.1 document, written from the route table (shared/edge/routes.py) and the request
models, so it cannot drift from the routes the app registers, the roles it enforces and the bodies it takes.

Served at `GET /api/v1/openapi.json` (anonymous: the contract holds no data) and kept in the repository as
docs/openapi.json (`python -m shared.edge.openapi` rewrites it; a test checks it is current). Request bodies are the
pydantic models' JSON Schemas (draft 2020-12, as OpenAPI 3.1 uses); the cross-field rules the models enforce
(a subject or wholeWorkspace, deleteWorkspace.confirm equal to the workspace name, ...) are described, and a
body breaking one answers 422.

Here: how a row of the table reads as an operation (`document(routes)`), the problem answers every route of a
kind may give (`problem_statuses`), and the schemas of the answers. The rows themselves are in the table.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel

from shared.core.model import RequestStatus

if TYPE_CHECKING:
    from shared.edge.routes import Route

DOCUMENT_PATH = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
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
BAD_REQUEST = 400  # any route: a query parameter it does not take (routes.handle), a bad header
# A protected route: no valid credential, a missing role, the identity provider's keys out of reach
AUTHENTICATION_PROBLEMS = (401, 403, 503)
NOT_FOUND = 404  # a route naming a request (`{id}` in its path)
JSON_BODY_PROBLEMS = (413, 415, 422)  # a route that reads a body


@dataclass(frozen=True)
class Parameter:
    """A query or header parameter of an operation (path parameters come from the path: PATH_PARAMETERS)."""

    name: str
    where: Literal["query", "header"]
    schema: Mapping[str, Any]
    description: str | None = None


@dataclass(frozen=True)
class Header:
    """A header of an answer."""

    schema: Mapping[str, Any]
    description: str | None = None
    required: bool = False


@dataclass(frozen=True)
class Answer:
    """A successful answer: what it means, its JSON body (the name of a schema of ANSWER_SCHEMAS, an inline
    schema, or None: no body) and its headers."""

    description: str
    schema: str | Mapping[str, Any] | None = None
    headers: Mapping[str, Header] = field(default_factory=dict)


PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "id": {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "The request id (a lower-case UUID, as returned by POST /v1/requests)",
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    }
}
_PATH_PARAMETER = re.compile(r"\{(\w+)\}")
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

# The request bodies' schemas open the components, in this order (the document's since its first version); a
# body model a route adds later follows them. The answers' schemas come after them.
BODY_ORDER = ("SubmitIn", "DecisionIn", "SearchIn", "ExtendIn")
ANSWER_SCHEMAS: dict[str, Any] = {
    "Principal": {
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
    },
    "Problem": {
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
    },
    "RequestView": {
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
            "updatedAt": _NULLABLE_TIME,
            "completedAt": _NULLABLE_TIME,
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
            "packageExpiresAt": _NULLABLE_TIME,
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
    },
    "AuditEntry": {
        "type": "object",
        "required": ["seq", "at", "actor", "action", "reason", "details", "prev", "mac"],
        "properties": {
            "seq": {"type": "integer"},
            "at": {"type": "string"},
            "actor": {"type": "object"},
            "action": {"type": "string"},
            "reason": {"type": ["string", "null"]},
            "details": {"type": "object"},
            "prev": {"type": "string"},
            "mac": {"type": "string"},
        },
    },
    "SigningKeys": {
        "type": "object",
        "required": ["keys"],
        "properties": {
            "keys": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["kty", "crv", "x", "y", "kid", "alg"],
                    "properties": {
                        "kty": {"const": "EC"},
                        "crv": {"const": "P-256"},
                        "x": {"type": "string"},
                        "y": {"type": "string"},
                        "kid": {"type": "string"},
                        "alg": {"const": "ES256"},
                        "use": {"const": "sig"},
                    },
                },
            }
        },
    },
    "AuditView": {
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
                    "headSeq": {"type": "integer", "minimum": 0},
                    "anchored": {"type": "integer", "minimum": 0},
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
    },
    "RequestSummaryList": {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "array", "items": {"type": "object"}},
            "nextLink": {"type": ["string", "null"]},
        },
    },
}
INFO = {
    "title": "Azure ML data subject requests",
    "version": "1.0.0",
    "description": "GDPR data subject requests (export, erasure) for Azure Machine Learning. Every "
    "operation but this document needs the function key (x-functions-key, checked by the Functions "
    "host) and, when DSR_REQUIRE_ENTRA_TOKEN is on, an Entra ID access token for the API holding one "
    "of the operation's app roles (DSR.Submit, DSR.Approve, DSR.Read). A bearer token that is sent is "
    "always validated. Errors are RFC 7807 problem+json. See docs/security.md.",
}
SECURITY_SCHEMES = {
    "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
    "entraToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}


def document(routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI document of a route table (a new object each call: the caller may change it)."""
    return copy.deepcopy(
        {
            "openapi": "3.1.0",
            "info": INFO,
            "servers": [{"url": "/api"}],
            "security": [{"functionKey": [], "entraToken": []}, {"functionKey": []}],
            "tags": [{"name": tag} for tag in dict.fromkeys(route.tag for route in routes)],
            "paths": _paths(routes),
            "components": {"schemas": _schemas(routes), "securitySchemes": SECURITY_SCHEMES},
        }
    )


def text(routes: Sequence[Route]) -> str:
    """The document as docs/openapi.json holds it."""
    return json.dumps(document(routes), indent=2, ensure_ascii=False) + "\n"


def problem_statuses(route: Route) -> list[int]:
    """The problem+json answers an operation may give: 400, those of a protected route, 404 when its path names
    a request, those of a JSON body, and the route's own (`route.problems`)."""
    statuses = {BAD_REQUEST, *route.problems}
    if route.roles:
        statuses.update(AUTHENTICATION_PROBLEMS)
    if "{id}" in route.path:
        statuses.add(NOT_FOUND)
    if route.body is not None:
        statuses.update(JSON_BODY_PROBLEMS)
    return sorted(statuses)


def _paths(routes: Iterable[Route]) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault("/" + route.path, {})[route.method.lower()] = _operation(route)
    return paths


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "description": _description(route),
        "tags": [route.tag],
    }
    if not route.roles:
        operation["security"] = []
    parameters = [PATH_PARAMETERS[name] for name in _PATH_PARAMETER.findall(route.path)]
    parameters += [_parameter(p) for p in route.parameters]
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {"required": route.body_required, "content": _json(route.body.__name__)}
    responses = {str(status): _answer(answer) for status, answer in route.responses.items()}
    responses.update({str(status): _problem(status) for status in problem_statuses(route)})
    operation["responses"] = responses
    return operation


def _description(route: Route) -> str:
    if not route.roles:
        return route.description
    roles = f"App roles (any one; enforced for bearer tokens): {', '.join(sorted(route.roles))}."
    return f"{roles} {route.description}" if route.description else roles


def _parameter(parameter: Parameter) -> dict[str, Any]:
    rendered: dict[str, Any] = {"name": parameter.name, "in": parameter.where, "required": False}
    if parameter.description:
        rendered["description"] = parameter.description
    rendered["schema"] = parameter.schema
    return rendered


def _json(schema: str | Mapping[str, Any]) -> dict[str, Any]:
    """An application/json content: a component schema by name, or an inline schema."""
    if isinstance(schema, str):
        schema = {"$ref": f"#/components/schemas/{schema}"}
    return {"application/json": {"schema": schema}}


def _answer(answer: Answer) -> dict[str, Any]:
    rendered: dict[str, Any] = {"description": answer.description}
    if answer.schema is not None:
        rendered["content"] = _json(answer.schema)
    if answer.headers:
        rendered["headers"] = {name: _header(header) for name, header in answer.headers.items()}
    return rendered


def _header(header: Header) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    if header.description:
        rendered["description"] = header.description
    rendered["schema"] = header.schema
    if header.required:
        rendered["required"] = True
    return rendered


def _problem(status: int) -> dict[str, Any]:
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


def _schemas(routes: Iterable[Route]) -> dict[str, Any]:
    """The request bodies' schemas (after the models each uses) in BODY_ORDER, then the answers' schemas."""
    models = dict.fromkeys(route.body for route in routes if route.body is not None)
    schemas: dict[str, Any] = {}
    for model in sorted(models, key=_body_rank):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {**schemas, **ANSWER_SCHEMAS}


def _body_rank(model: type[BaseModel]) -> int:
    name = model.__name__
    return BODY_ORDER.index(name) if name in BODY_ORDER else len(BODY_ORDER)
