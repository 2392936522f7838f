"""Operator routes: re-run what failed."""

from __future__ import annotations

import azure.functions as func

from shared import workflow
from shared.errors import NotFoundError
from shared.http_api import _REQUEST_ID, _base_url, json_response
from shared.principal import caller
from shared.runtime import Runtime


def retry(rt: Runtime, req: func.HttpRequest) -> func.HttpResponse:
    """`POST /api/v1/requests/{id}:retry`: re-run only the failed tasks of a request that ended with errors."""
    request_id = req.route_params.get("id", "")
    if not _REQUEST_ID.match(request_id):
        raise NotFoundError(f"no request with id {request_id[:64]!r}")
    request = workflow.retry(rt, request_id, caller(req, rt.settings.trust_easyauth_headers))
    return json_response(
        workflow.status_view(rt, request, _base_url(req)),
        202,
        {"Location": f"{_base_url(req)}/api/v1/requests/{request.id}"},
    )
