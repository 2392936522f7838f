"""Operator routes: re-run what failed, extend a deadline."""

from __future__ import annotations

import azure.functions as func
from pydantic import ValidationError

from shared.core.errors import ValidationFailedError
from shared.core.principal import caller
from shared.edge.http_api import (
    _base_url,
    _body,
    _request_id,
    current_principal,
    json_response,
    validation_errors,
)
from shared.lifecycle import deadlines, decisions
from shared.lifecycle.status import status_view
from shared.lifecycle.submission import ExtendIn
from shared.runtime import Runtime


def retry(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """`POST /api/v1/requests/{id}:retry`: re-run only the failed tasks of a request that ended with errors."""
    request_id = _request_id(req)
    request = decisions.retry(rt, request_id, caller(req, rt.settings.trust_easyauth_headers))
    return json_response(
        status_view(rt, request, _base_url(req)),
        202,
        {"Location": f"{_base_url(req)}/api/v1/requests/{request.id}"},
    )


def extend_request(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """`POST /api/v1/requests/{id}:extend` with {"months": 1|2, "reason"}: the one extension GDPR allows."""
    request_id = _request_id(req)
    try:
        body = ExtendIn.model_validate(_body(req))
    except ValidationError as exc:
        raise ValidationFailedError(
            "the extension body does not validate", errors=validation_errors(exc)
        ) from None
    request = deadlines.extend(rt, request_id, body.months, body.reason, current_principal())
    return json_response(status_view(rt, request, _base_url(req)), 200)
