"""The OpenAPI 3.1 document: current in the repository, complete (every row of the route table), served
anonymously, and true (schemathesis property-based tests against the local host: no 5xx, every response
conforms)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import azure.functions as func
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.edge import openapi, routes
from shared.edge.routes import ANONYMOUS, ROUTES
from tests.security.conftest import Api
from tests.security.idp import OFFICER

MAX_EXAMPLES = 12  # per operation and generation mode: bounded, so the run adds seconds, not minutes
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


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


# Invalid input is refused with the statuses schemathesis expects by default, and 413 too: an oversized body
# (the app's 64 KiB limit, documented for every route that takes a body) is refused before it is read.
REJECTIONS = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    *SchemathesisConfig().projects.default.checks.negative_data_rejection.expected_statuses,
                    "413",
                ]
            }
        }
    }
)


def _runner(strategy: Any, label: str, body: Any) -> Any:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        body(case)

    return run


@pytest.fixture(scope="module")
def cases_run() -> Counter[str]:
    return Counter()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_property_based_every_answer_conforms_and_none_is_a_server_error(
    api: Api, mode: GenerationMode, cases_run: Counter[str], capsys: Any
) -> None:
    # Given the document the host serves, and a caller with the function key and a token holding every role
    schema = schemathesis.openapi.from_dict(
        api.session.get(f"{api.stack.api_url}/v1/openapi.json").json(), config=REJECTIONS
    )
    headers = {"x-functions-key": api.stack.function_key, **api.idp.headers(OFFICER)}
    failures: list[str] = []
    checks = [*CHECKS, negative_data_rejection] if mode == GenerationMode.NEGATIVE else CHECKS

    def _one(case: Any, label: str) -> None:
        response = case.call(base_url=api.stack.api_url, headers=headers, session=api.session)
        cases_run[mode.value] += 1
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except AssertionError as exc:
            failures.append(f"{label} {response.status_code}: {str(exc)[:600]}")
            raise

    statuses: Counter[int] = Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        # Every operation yields a strategy in both modes (checked: none raises); an error here fails the test.
        strategy = operation.as_strategy(generation_mode=mode)
        run = _runner(strategy, label, lambda case, label=label: _one(case, label))
        try:
            run()
        except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
            cases_run[f"{mode.value} unsatisfiable"] += 1
        except Exception as exc:  # the failure is recorded above (hypothesis re-raises the shrunk one)
            if not failures:
                failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:600]}")
    with capsys.disabled():
        print(f"\n[schemathesis] {mode.value}: {cases_run[mode.value]} cases run, statuses {dict(statuses)}")
    assert failures == []
    assert cases_run[mode.value] >= 50
