"""Who may call what, through the local Functions host with DSR_REQUIRE_ENTRA_TOKEN on: every route x every
caller (each app role alone, all roles, none, an application) x every bad token (none, expired, another
audience, a forged signature)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from shared.edge.auth import POLICIES
from tests.security.conftest import Api, subject_of, subscriptions
from tests.security.idp import (
    APPROVER,
    AUTOMATION,
    BAD_KINDS,
    NOBODY,
    OFFICER,
    READER,
    SUBMITTER,
    Person,
)
from tests.security.routes import http_routes

CALLERS = (NOBODY, SUBMITTER, APPROVER, READER, OFFICER, AUTOMATION)
PROTECTED = [r for r in http_routes() if not r.anonymous]
CASES = len(PROTECTED) * (len(CALLERS) + len(BAD_KINDS))


def test_every_http_route_has_a_policy_and_every_protected_route_needs_a_role() -> None:
    routes = http_routes()
    assert len(routes) >= 10
    for route in routes:
        assert route.handler in POLICIES, f"{route.function}: handler {route.handler} has no access policy"
        assert bool(POLICIES[route.handler]) != route.anonymous, route.function
    assert [r.route for r in routes if r.anonymous] == ["v1/openapi.json"]


@pytest.fixture(scope="module")
def existing(api: Api, secure_stack: Any) -> str:
    """A request that exists (an export of a workspace that does not: it ends quickly)."""
    sim = secure_stack.simulator
    ghost = (
        f"/subscriptions/{subscriptions(sim)[0]}/resourceGroups/rg-none"
        "/providers/Microsoft.MachineLearningServices/workspaces/ws-ghost"
    )
    body = {"type": "export", "subject": subject_of(sim), "scope": {"workspaces": [ghost]}}
    response = api.call("POST", "v1/requests", SUBMITTER, body=body)
    assert response.status_code == 202, response.text
    request_id: str = response.json()["id"]
    api.wait(request_id)
    return request_id


def _call(api: Api, route_path: str, method: str, request_id: str, who: Person | None, kind: str, sim: Any):
    path = route_path.replace("{id}", request_id)
    body = None
    params: dict[str, str] = {}
    if method == "POST" and path == "v1/requests":
        body = {
            "type": "export",
            "subject": {"objectId": str(uuid.uuid4())},
            "scope": {"subscriptions": [str(uuid.uuid4())]},
            "dryRun": True,
        }
    if path == "v1/requests" and method == "GET":
        params = {"subjectObjectId": str(uuid.uuid4())}
    if path == "v1/offboarding/events":
        params = {"status": "rejected"}
    return api.call(method, path, who, kind, body=body, params=params)


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{'+'.join(r.methods)} {r.route}")
def test_route_answers_each_caller_as_its_roles_allow(api: Api, sim: Any, existing: str, route) -> None:
    allowed_roles = POLICIES[route.handler]
    wrong: list[str] = []
    for method in route.methods:
        # Bad credentials: 401 with a Bearer challenge, whatever roles the token claims
        for kind in BAD_KINDS:
            response = _call(api, route.route, method, existing, OFFICER, kind, sim)
            challenge = response.headers.get("WWW-Authenticate", "")
            if (
                response.status_code != 401
                or not challenge.startswith("Bearer")
                or not response.headers.get("Content-Type", "").startswith("application/problem+json")
            ):
                wrong.append(f"{kind}: {response.status_code} {challenge!r}")
            elif kind != "none" and 'error="invalid_token"' not in challenge:
                wrong.append(f"{kind}: challenge without invalid_token: {challenge!r}")
        # Valid tokens: 403 without a role of the route's policy, otherwise through to the handler
        for who in CALLERS:
            response = _call(api, route.route, method, existing, who, "valid", sim)
            permitted = bool(set(who.roles) & allowed_roles)
            if permitted and response.status_code in (401, 403):
                wrong.append(f"{who.upn}: {response.status_code} {response.text[:200]}")
            if not permitted and (response.status_code != 403 or response.json().get("status") != 403):
                wrong.append(f"{who.upn}: expected 403, got {response.status_code}")
            if response.status_code >= 500:
                wrong.append(f"{who.upn}: {response.status_code}")
    assert wrong == [], f"{route.function}: {wrong}"


def test_the_matrix_size(capsys: Any) -> None:
    with capsys.disabled():
        print(
            f"\n[authorization matrix] {len(PROTECTED)} routes x {len(CALLERS) + len(BAD_KINDS)} callers = {CASES} cases"
        )
    assert CASES >= 100


def test_without_the_function_key_the_host_refuses_before_the_app(api: Api) -> None:
    response = api.session.get(
        f"{api.stack.api_url}/v1/requests/{uuid.uuid4()}", headers=api.idp.headers(OFFICER), timeout=10
    )
    assert response.status_code == 401
    assert response.content == b""  # the host's answer: the code never ran


def test_the_openapi_document_is_anonymous(api: Api) -> None:
    response = api.session.get(f"{api.stack.api_url}/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json()["openapi"] == "3.1.0"
