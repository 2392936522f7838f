"""Who may call what: every HTTP function of the app is a row of the route table with its roles, a handler
without a row is refused to every caller, and, through the local Functions host with DSR_REQUIRE_ENTRA_TOKEN on,
every route x every caller (each app role alone, all roles, none, an application) x every bad token (none,
expired, another audience, a forged signature)."""

from __future__ import annotations

import dataclasses
import uuid
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest

from devtools.funchost.functions import HTTP_TRIGGER, index_functions, load_app
from shared.core.principal import ALL_ROLES, EASYAUTH, ENTRA_USER, FUNCTION_KEY_PRINCIPAL, caller
from shared.core.settings import Settings
from shared.edge import routes
from shared.edge.routes import ANONYMOUS, ROUTES, Route
from tests.conftest import ROOT
from tests.security.conftest import Api, subject_of, subscriptions
from tests.security.idp import (
    APPROVER,
    AUTOMATION,
    BAD_KINDS,
    NOBODY,
    OFFICER,
    READER,
    SUBMITTER,
    TENANT_ID,
    Person,
)

CALLERS = (NOBODY, SUBMITTER, APPROVER, READER, OFFICER, AUTOMATION)
PROTECTED = [r for r in ROUTES if r.roles != ANONYMOUS]
CASES = len(PROTECTED) * (len(CALLERS) + len(BAD_KINDS))


def test_every_http_function_of_the_app_is_a_row_of_the_route_table_with_its_roles(monkeypatch) -> None:
    # Given the app's HTTP functions, as the local Functions host indexes them from function_app.py
    _, functions = load_app("function_app:app", ROOT)
    http = index_functions([f for f in functions if f.get_trigger().type == HTTP_TRIGGER], "api")
    rows = {route.function: route for route in ROUTES}
    # Then each is one row: its route, method and key level, and a call reaches the row's handler
    assert sorted(spec.name for spec in http) == sorted(rows)
    assert len(rows) == len(ROUTES) >= 10
    handed: list[object] = []
    monkeypatch.setattr(routes, "handle", lambda req, handler: handed.append(handler))
    for spec in http:
        row = rows[spec.name]
        assert (spec.route_text, spec.methods) == (f"api/{row.path}", {row.method}), spec.name
        assert spec.auth_level == ("anonymous" if row.roles == ANONYMOUS else "function"), spec.name
        spec.user_function(req=func.HttpRequest(row.method, f"https://app/api/{row.path}", body=b""))
        assert handed.pop() is row.handler, spec.name
    # And every protected row names app roles; the anonymous routes are the OpenAPI document and the public key
    # that verifies the packages' signatures (neither holds data)
    assert all(route.roles <= ALL_ROLES for route in ROUTES)
    assert [r.path for r in ROUTES if r.roles == ANONYMOUS] == ["v1/signing-key", "v1/openapi.json"]
    assert len({r.handler for r in ROUTES}) == len(ROUTES)


def test_a_handler_without_a_row_is_refused_to_every_caller(idp, tls, monkeypatch) -> None:
    # Given callers the app lets through to any route: the function-key holder (tokens optional), a trusted
    # Easy Auth person, a token holding every role
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))
    settings = Settings.from_env(
        {
            **idp.settings(),
            **{
                f"AzureWebJobsStorage__{kind}ServiceUri": "https://127.0.0.1:1/x"
                for kind in ("blob", "queue", "table")
            },
            "DSR_PSEUDONYM_KEY": "test",
            "DSR_TENANT_ID": TENANT_ID,
            "DSR_REQUIRE_ENTRA_TOKEN": "false",
            "DSR_TRUST_EASYAUTH_HEADERS": "true",
        }
    )
    monkeypatch.setattr(routes, "get_runtime", lambda: SimpleNamespace(settings=settings))
    callers = (
        {},
        {"X-MS-CLIENT-PRINCIPAL-ID": OFFICER.oid, "X-MS-CLIENT-PRINCIPAL-NAME": OFFICER.upn},
        idp.headers(OFFICER),
    )
    ran: list[str] = []

    def unlisted(rt, req):  # in no row of the table
        ran.append(caller(req, True).source)
        return func.HttpResponse("ran")

    def get_openapi(rt, req):  # the name of a row's handler, but not that function
        ran.append("namesake")
        return func.HttpResponse("ran")

    def answers(handler) -> list[int]:
        requests = [func.HttpRequest("GET", "https://app/api/v1/x", headers=h, body=b"") for h in callers]
        return [routes.handle(req, handler).status_code for req in requests]

    # Then neither handler runs, whoever calls: 403
    assert answers(unlisted) == answers(get_openapi) == [403, 403, 403]
    assert ran == []
    # While a row for the handler lets the same callers through
    row = dataclasses.replace(ROUTES[0], handler=unlisted, roles=ALL_ROLES)
    monkeypatch.setattr(routes, "ROUTES", (*ROUTES, row))
    assert answers(unlisted) == [200, 200, 200]
    assert ran == [FUNCTION_KEY_PRINCIPAL, EASYAUTH, ENTRA_USER]


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


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.method} {r.path}")
def test_route_answers_each_caller_as_its_roles_allow(
    api: Api, sim: Any, existing: str, route: Route
) -> None:
    wrong: list[str] = []
    # Bad credentials: 401 with a Bearer challenge, whatever roles the token claims
    for kind in BAD_KINDS:
        response = _call(api, route.path, route.method, existing, OFFICER, kind, sim)
        challenge = response.headers.get("WWW-Authenticate", "")
        if (
            response.status_code != 401
            or not challenge.startswith("Bearer")
            or not response.headers.get("Content-Type", "").startswith("application/problem+json")
        ):
            wrong.append(f"{kind}: {response.status_code} {challenge!r}")
        elif kind != "none" and 'error="invalid_token"' not in challenge:
            wrong.append(f"{kind}: challenge without invalid_token: {challenge!r}")
    # Valid tokens: 403 without a role of the route's row, otherwise through to the handler
    for who in CALLERS:
        response = _call(api, route.path, route.method, existing, who, "valid", sim)
        permitted = bool(set(who.roles) & route.roles)
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
