"""HTTP handlers: parse and validate at the edge, call the workflow, answer JSON or problem+json (RFC 7807).

Nothing in this module knows about the host. Every handler runs through `routes.handle`, which first
establishes the caller (shared/edge/auth.py) and checks the app roles the handler's row of the route table
names (shared/edge/routes.py); a handler without a row is refused to everyone.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func
from pydantic import ValidationError

from shared.core.errors import (
    BadRequestError,
    ConflictError,
    GoneError,
    NotFoundError,
    PayloadTooLargeError,
    ProblemError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from shared.core.model import iso, utcnow
from shared.core.principal import SYSTEM, Principal, authenticated
from shared.evidence import audit, signing
from shared.lifecycle import decisions, intake, retention
from shared.lifecycle.status import status_view
from shared.lifecycle.submission import DecisionIn, SubmitIn
from shared.runtime import Runtime, get_runtime
from shared.storage.links import links

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
_REQUEST_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, ensure_ascii=False),
        status_code=status,
        headers=headers or {},
        mimetype="application/json",
    )


def problem_response(error: ProblemError, instance: str | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(error.body(instance)),
        status_code=error.status,
        headers=error.headers,
        mimetype="application/problem+json",
    )


def _base_url(req: func.HttpRequest) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


def _body(req: func.HttpRequest) -> dict[str, Any]:
    content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaTypeError("send the request as application/json")
    raw = req.get_body()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the body has {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        body = json.loads(raw, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"the body is not valid JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise BadRequestError("the body is not valid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object")
    return body


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object naming a field twice is ambiguous (which one did a proxy or WAF look at?): refused."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"the field {key[:40]!r} appears twice")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """A body's validation errors as the problem's `errors`: field path and message (never the input)."""
    return [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
        for e in exc.errors(include_input=False)
    ]


def current_principal() -> Principal:
    """The caller `routes.handle` authenticated for this invocation (principal.caller() answers the same)."""
    return authenticated() or SYSTEM


def submit(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    body = _body(req)
    try:
        model = SubmitIn.model_validate(body)
    except ValidationError as exc:
        errors = validation_errors(exc)
        raise ValidationFailedError(f"{len(errors)} field(s) failed validation", errors=errors) from None
    key = req.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        raise BadRequestError("Idempotency-Key must be 1-200 visible ASCII characters")
    request, replayed = intake.submit(rt, model, key, current_principal())
    view = status_view(rt, request, _base_url(req))
    headers = {
        "Location": view["links"]["self"],
        "Retry-After": str(rt.settings.status_retry_after_seconds),
    }
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(view, 202, headers)


def _request_id(req: func.HttpRequest) -> str:
    request_id = req.route_params.get("id", "")
    if not _REQUEST_ID.fullmatch(request_id):
        raise NotFoundError(f"no request with id {request_id[:64]!r}")
    return request_id


def get_request(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    request_id = _request_id(req)
    request = rt.store.get_request(request_id)
    if request is None:
        raise NotFoundError(f"no request with id {request_id}")
    view = status_view(rt, request, _base_url(req))
    headers = {}
    if request.status not in ("completed", "completed_with_errors", "failed"):
        headers["Retry-After"] = str(rt.settings.status_retry_after_seconds)
    return json_response(view, 200, headers)


def _decision(action: str) -> Callable[[Runtime, func.HttpRequest], func.HttpResponse]:
    def handler(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
        request_id = _request_id(req)
        reason = None
        if req.get_body():
            try:
                reason = DecisionIn.model_validate(_body(req)).reason
            except ValidationError as exc:
                raise ValidationFailedError(
                    "the decision body does not validate", errors=validation_errors(exc)
                ) from None
        request = decisions.decide(rt, request_id, action, current_principal(), reason)
        return json_response(status_view(rt, request, _base_url(req)), 200)

    handler.__name__ = f"{action}_request"
    return handler


approve = _decision("approve")
reject = _decision("reject")
cancel = _decision("cancel")


def get_audit(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """`GET /api/v1/requests/{id}/audit`: the request's audit trail and whether its keyed chain holds
    (every MAC, every link, and the anchor log outside the table)."""
    request_id = _request_id(req)
    trail = audit.trail(rt)
    entries = trail.entries(request_id)
    if not entries and rt.store.get_request(request_id) is None:
        raise NotFoundError(f"no request with id {request_id}")
    return json_response(
        {
            "requestId": request_id,
            "entries": [e.view() for e in entries],
            "verification": trail.verify(request_id, entries),
        },
        200,
        {"Cache-Control": "no-store"},
    )


def get_signing_key(_rt: Runtime | None, req: func.HttpRequest) -> func.HttpResponse:
    """`GET /api/v1/signing-key`: the public key (a JWK Set) that verifies the signatures of manifest.json and
    erasure-record.json in the packages (anonymous: a public key is no secret); 404 when packages are not
    signed."""
    key = signing.signer(get_runtime())
    if key is None:
        raise NotFoundError("packages are not signed here (DSR_SIGNING_KEY_ID is not set)")
    return json_response({"keys": [key.public_jwk()]}, 200, {"Cache-Control": "public, max-age=300"})


def get_package(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """`GET /api/v1/requests/{id}/package`: 302 to a fresh short-lived read-only link to the package zip. The
    route itself is the stable link: it works for the package's whole retention period, then answers 410."""

    request_id = _request_id(req)
    request = rt.store.get_request(request_id)
    if request is None:
        raise NotFoundError(f"no request with id {request_id}")
    path = request.package_path or request.manifest_path
    if not path:
        raise ConflictError(f"the request is {request.status}: its package is not written yet")
    expires = retention.package_expiry(rt, request)
    if request.links.get("packagePurgedAt") or (expires and utcnow() >= expires):
        raise GoneError(f"the package's retention period ended on {iso(expires)}; it is deleted")
    url, expiry = links(rt).read_url(path)
    log.info(
        "package link for request %s issued to %s, valid until %s",
        request_id,
        current_principal().source,
        expiry,
    )
    return func.HttpResponse(
        status_code=302,
        headers={"Location": url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
