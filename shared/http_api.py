"""HTTP handlers: parse and validate at the edge, call the workflow, answer JSON or problem+json (RFC 7807).

function_app.py routes each trigger here in one line; nothing in this module knows about the host.
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

from shared import workflow
from shared.errors import (
    BadRequestError,
    NotFoundError,
    PayloadTooLargeError,
    ProblemError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from shared.principal import caller
from shared.requests_api import DecisionIn, SubmitIn
from shared.runtime import Runtime, get_runtime

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
        json.dumps(error.body(instance)), status_code=error.status, mimetype="application/problem+json"
    )


def _base_url(req: func.HttpRequest) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


def handle(
    req: func.HttpRequest, action: Callable[[Runtime, func.HttpRequest], func.HttpResponse]
) -> func.HttpResponse:
    """Run one handler; every ProblemError becomes problem+json, anything else a logged 500 problem."""
    path = urlsplit(req.url).path
    try:
        return action(get_runtime(), req)
    except ProblemError as exc:
        return problem_response(exc, path)
    except Exception:
        log.exception("unhandled error on %s %s", req.method, path)
        return problem_response(
            ProblemError("The service failed to handle this request; it was logged."), path
        )


def _body(req: func.HttpRequest) -> dict[str, Any]:
    content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaTypeError("send the request as application/json")
    raw = req.get_body()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(f"the body has {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequestError("the body must be a JSON object")
    return body


def submit(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    body = _body(req)
    try:
        model = SubmitIn.model_validate(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_input=False)
        ]
        raise ValidationFailedError(f"{len(errors)} field(s) failed validation", errors=errors) from None
    key = req.headers.get("Idempotency-Key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise BadRequestError("Idempotency-Key must be 1-200 visible ASCII characters")
    principal = caller(req, rt.settings.trust_easyauth_headers)
    request, replayed = workflow.submit(rt, model, key, principal)
    view = workflow.status_view(rt, request, _base_url(req))
    headers = {
        "Location": view["links"]["self"],
        "Retry-After": str(rt.settings.status_retry_after_seconds),
    }
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(view, 202, headers)


def _request_id(req: func.HttpRequest) -> str:
    request_id = req.route_params.get("id", "")
    if not _REQUEST_ID.match(request_id):
        raise NotFoundError(f"no request with id {request_id[:64]!r}")
    return request_id


def get_request(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    request_id = _request_id(req)
    request = rt.store.get_request(request_id)
    if request is None:
        raise NotFoundError(f"no request with id {request_id}")
    view = workflow.status_view(rt, request, _base_url(req))
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
                errors = [
                    {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
                ]
                raise ValidationFailedError("the decision body does not validate", errors=errors) from None
        request = workflow.decide(
            rt, request_id, action, caller(req, rt.settings.trust_easyauth_headers), reason
        )
        return json_response(workflow.status_view(rt, request, _base_url(req)), 200)

    handler.__name__ = f"{action}_request"
    return handler


approve = _decision("approve")
reject = _decision("reject")
cancel = _decision("cancel")
