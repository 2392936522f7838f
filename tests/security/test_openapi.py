"""The OpenAPI 3.1 document: current in the repository, complete (every row of the route table), served
anonymously, and true (schemathesis property-based tests against the local host: no 5xx, every response
conforms)."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
import schemathesis

from shared.edge import openapi, routes
from shared.edge.routes import ANONYMOUS, ROUTES
from tests.security import fuzzing
from tests.security.conftest import Api
from tests.security.idp import OFFICER


def test_the_document_in_the_repository_is_current() -> None:
    assert openapi.DOCUMENT_PATH.read_text() == openapi.text(ROUTES), "run: python -m shared.edge.openapi"


def test_every_route_is_in_the_document_with_its_method_roles_and_problem_answers() -> None:
    document = routes.document()
    for route in ROUTES:
        operations = document["paths"].get("/" + route.path)
        assert operations is not None, f"{route.path} is not in the OpenAPI document"
        operation = operations.get(route.method.lower())
        assert operation is not None, f"{route.method} {route.path}"
        assert operation["operationId"] == route.handler.__name__
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        assert declared == route.query, route.path  # what routes.handle lets through
        # routes.handle refuses a query parameter the route does not take, on every route: 400 problem+json
        assert list(operation["responses"]["400"]["content"]) == ["application/problem+json"], route.path
        if route.roles == ANONYMOUS:
            assert operation["security"] == []
        else:
            assert "security" not in operation  # the document's: function key, and a token when required
            assert all(role in operation["description"] for role in route.roles), route.path
            assert "401" in operation["responses"]
            assert list(operation["responses"]["403"]["content"]) == ["application/problem+json"], route.path


def test_the_anonymous_document_route_answers_an_unknown_query_parameter_as_documented() -> None:
    # Given a call of the one anonymous route with a parameter it does not take
    url = "https://app/api/v1/openapi.json?format=yaml"
    response = routes.handle(
        func.HttpRequest("GET", url, params={"format": "yaml"}, body=b""), routes.get_openapi
    )
    # Then it is the 400 problem the document lists for it
    assert (response.status_code, response.mimetype) == (400, "application/problem+json")
    assert "400" in routes.document()["paths"]["/v1/openapi.json"]["get"]["responses"]


def test_the_document_is_valid_openapi_3_1() -> None:
    schema = schemathesis.openapi.from_dict(routes.document())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(ROUTES)


def test_the_host_serves_the_document_anonymously(api: Api) -> None:
    response = api.session.get(f"{api.stack.api_url}/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == json.loads(openapi.text(ROUTES))


def test_property_based_every_answer_conforms_and_none_is_a_server_error(api: Api, capsys: Any) -> None:
    # Given the document the host serves, and a caller with the function key and a token holding every role,
    # when schemathesis runs its four phases within a budget that keeps this test to about 25 s (examples;
    # coverage: the boundary values of every parameter, positive, and TRACE on every path; fuzzing: positive and
    # negative; stateful: chains through the links the Location headers give). `make fuzz` runs >= 3,000.
    document = api.session.get(f"{api.stack.api_url}/v1/openapi.json").json()
    headers = {"x-functions-key": api.stack.function_key, **api.idp.headers(OFFICER)}
    budget = fuzzing.config(
        api.stack.api_url,
        headers,
        phases=fuzzing.PHASES,
        max_examples=5,
        max_steps=5,
        unexpected_methods=["trace"],
        coverage_mode="positive",
    )
    figures = fuzzing.run(document, budget)
    with capsys.disabled():
        print(f"\n[schemathesis] {figures.line()}")
    # Then every phase ran, nothing answered 5xx, and every answer is the one the document describes
    assert (figures.errors, figures.failures) == ([], [])
    assert figures.server_errors == 0
    assert {phase: figures.cases[phase] > 0 for phase in fuzzing.PHASES} == dict.fromkeys(
        fuzzing.PHASES, True
    )
    assert figures.total >= 200
    assert (figures.statuses[202] > 0, figures.statuses[422] > 0) == (True, True)  # accepted and refused both


def test_an_empty_due_before_is_refused_as_the_document_says(api: Api) -> None:
    # Found by the coverage phase: `dueBefore=` (not a date-time) was taken as no filter
    refused = api.call("GET", "v1/requests?dueBefore=")
    assert (refused.status_code, refused.headers["Content-Type"]) == (400, "application/problem+json")
    assert "dueBefore" in refused.json()["detail"]
    assert api.call("GET", "v1/requests?dueBefore=2030-01-01T00:00:00Z").status_code == 200
