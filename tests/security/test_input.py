"""Invalid input is refused at the edge with problem+json, and stores and enqueues nothing.

Each case runs twice: through the local host (the answer a caller gets), and in process with real
azure.functions.HttpRequest objects against an Azurite no host polls, where "nothing enqueued" can be proven
(a host would take a message off the queue before the test could look)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from azure.data.tables import TableClient
from azure.identity import ManagedIdentityCredential
from azure.storage.queue import QueueClient

from devtools.stack import APP_CLIENT_ID
from shared.core import settings as names
from shared.core.settings import Settings
from shared.edge import http_api, routes
from shared.runtime import Runtime, set_runtime
from tests.security.conftest import Api
from tests.security.idp import OFFICER

SUB = "3f2c1a7e-1111-4a4a-8b8b-0000000000aa"
WS = f"/subscriptions/{SUB}/resourceGroups/rg-ml/providers/Microsoft.MachineLearningServices/workspaces/mlw-one"
OID = "0b9f3c2e-2222-4c4c-9d9d-0000000000bb"


def valid() -> dict[str, Any]:
    return {"type": "export", "subject": {"objectId": OID}, "scope": {"subscriptions": [SUB]}}


def changed(**fields: Any) -> dict[str, Any]:
    body = valid()
    body.update(fields)
    return body


def ws_id(rg: str = "rg-ml", ws: str = "mlw-one", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"


JSON = {"Content-Type": "application/json"}
# (id, raw body, extra headers, expected status, a word the problem names)
CASES: list[tuple[str, bytes, dict[str, str], int, str]] = [
    (id_, json.dumps(body).encode(), {}, status, word)
    for id_, body, status, word in [
        ("unknown field", changed(extra=True), 422, "extra"),
        ("unknown type", changed(type="archive"), 422, "type"),
        ("object id not a GUID", changed(subject={"objectId": "42"}), 422, "objectId"),
        ("empty subject", changed(subject={}), 422, "subject"),
        (
            "UPN with a slash",
            changed(subject={"userPrincipalName": "a/b@contoso.com"}),
            422,
            "userPrincipalName",
        ),
        ("UPN with a query", changed(subject={"email": "a@contoso.com?x=1"}), 422, "email"),
        ("UPN with a NUL", changed(subject={"email": "a\x00b@contoso.com"}), 422, "email"),
        ("UPN too long", changed(subject={"email": "a" * 300 + "@contoso.com"}), 422, "email"),
        ("resource group '..'", changed(scope={"workspaces": [ws_id(rg="..")]}), 422, "workspaces"),
        (
            "resource group '.'",
            changed(scope={"resourceGroups": [f"/subscriptions/{SUB}/resourceGroups/."]}),
            422,
            "resourceGroups",
        ),
        ("resource group ending in '.'", changed(scope={"workspaces": [ws_id(rg="rg.")]}), 422, "workspaces"),
        ("encoded slash", changed(scope={"workspaces": [ws_id(ws="a%2Fb")]}), 422, "workspaces"),
        (
            "query in an ARM id",
            changed(scope={"workspaces": [ws_id(ws="ws?api-version=1")]}),
            422,
            "workspaces",
        ),
        ("fragment in an ARM id", changed(scope={"workspaces": [ws_id(rg="rg#x")]}), 422, "workspaces"),
        ("subscription '../..'", changed(scope={"subscriptions": ["../.."]}), 422, "subscriptions"),
        (
            "another provider",
            changed(scope={"workspaces": [ws_id().replace("MachineLearningServices", "Storage")]}),
            422,
            "workspaces",
        ),
        (
            "pipeline id '..'",
            changed(pipelineIds=[{"workspace": WS, "kind": "graph", "id": ".."}]),
            422,
            "pipelineIds",
        ),
        (
            "pipeline id with '/'",
            changed(pipelineIds=[{"workspace": WS, "kind": "graph", "id": "a/b"}]),
            422,
            "pipelineIds",
        ),
        ("reference with a newline", changed(reference="T-1\nforged log line"), 422, "reference"),
        ("reference too long", changed(reference="T" * 201), 422, "reference"),
        ("string for a boolean", changed(dryRun="true"), 422, "dryRun"),
        ("number for a string", changed(reference=5), 422, "reference"),
        (
            "too many resource groups",
            changed(
                scope={"resourceGroups": [f"/subscriptions/{SUB}/resourceGroups/rg{i}" for i in range(201)]}
            ),
            422,
            "resourceGroups",
        ),
        ("empty scope", changed(scope={}), 422, "scope"),
        (
            "confirm is not the workspace name",
            {"type": "erasure", "scope": {"workspaces": [WS]}, "deleteWorkspace": {"confirm": "other"}},
            422,
            "confirm",
        ),
        ("a JSON array", [valid()], 400, "object"),
    ]
] + [
    ("body over 64 KiB", json.dumps(changed(reference="x" * 70000)).encode(), {}, 413, "limit"),
    ("not JSON", b"{", {}, 400, "JSON"),
    ("a field twice", b'{"type": "export", "type": "erasure"}', {}, 400, "twice"),
    ("NaN", b'{"type": NaN}', {}, 400, "NaN"),
    ("nested 10000 deep", b"[" * 10000 + b"]" * 10000, {}, 400, "JSON"),
    ("text/plain", json.dumps(valid()).encode(), {"Content-Type": "text/plain"}, 415, "application/json"),
    ("no content type", json.dumps(valid()).encode(), {"Content-Type": ""}, 415, "application/json"),
    (
        "Idempotency-Key with a space",
        json.dumps(valid()).encode(),
        {"Idempotency-Key": "a b"},
        400,
        "Idempotency-Key",
    ),
]


@pytest.fixture(scope="module")
def isolated(azurite, rt: Runtime) -> Iterator[tuple[Runtime, TableClient, TableClient, QueueClient]]:
    """The app's runtime on an Azurite of its own (no host polls its queues)."""
    env = {
        **os.environ,
        names.STORAGE_BLOB_URI: azurite.url("blob"),
        names.STORAGE_QUEUE_URI: azurite.url("queue"),
        names.STORAGE_TABLE_URI: azurite.url("table"),
    }
    credential = ManagedIdentityCredential(client_id=APP_CLIENT_ID)
    runtime = Runtime.create(Settings.from_env(env), credential)
    runtime.storage.ensure()
    requests_table = TableClient(azurite.url("table"), names.REQUESTS_TABLE, credential=credential)
    keys_table = TableClient(azurite.url("table"), names.IDEMPOTENCY_TABLE, credential=credential)
    queue = QueueClient(azurite.url("queue"), names.PLAN_QUEUE, credential=credential)
    set_runtime(runtime)
    yield runtime, requests_table, keys_table, queue
    set_runtime(rt)


def _state(requests_table: TableClient, keys_table: TableClient, queue: QueueClient) -> tuple[int, int, int]:
    rows = len(list(requests_table.list_entities(select=["PartitionKey"])))
    keys = len(list(keys_table.list_entities(select=["PartitionKey"])))
    return rows, keys, queue.get_queue_properties().approximate_message_count


def _in_process(body: bytes, headers: dict[str, str], token: dict[str, str]) -> func.HttpResponse:
    request = func.HttpRequest(
        "POST",
        "https://dsr.example/api/v1/requests",
        headers={**JSON, "Idempotency-Key": "input-test", **headers, **token},
        body=body,
    )
    return routes.handle(request, http_api.submit)


@pytest.mark.parametrize(
    ("body", "headers", "status", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_invalid_input_is_refused_and_changes_nothing(
    api: Api, isolated, body: bytes, headers: dict[str, str], status: int, word: str
) -> None:
    _runtime, requests_table, keys_table, queue = isolated
    before = _state(requests_table, keys_table, queue)
    # In process: the answer, and nothing stored (request, idempotency key) or enqueued
    response = _in_process(body, headers, api.idp.headers(OFFICER))
    problem = json.loads(response.get_body())
    assert (response.status_code, problem["status"]) == (status, status), problem
    assert response.mimetype == "application/problem+json"
    assert word.lower() in json.dumps(problem).lower(), problem
    assert _state(requests_table, keys_table, queue) == before
    # Through the host: the same answer
    over_http = api.session.post(
        f"{api.stack.api_url}/v1/requests",
        data=body,
        headers={"x-functions-key": api.stack.function_key, **JSON, **headers, **api.idp.headers(OFFICER)},
        timeout=30,
    )
    assert over_http.status_code == status, over_http.text
    assert over_http.headers["Content-Type"].startswith("application/problem+json")


def test_the_storage_check_sees_a_valid_request(api: Api, isolated) -> None:
    # The control: a valid body stores one request and one idempotency key, and enqueues one message
    _runtime, requests_table, keys_table, queue = isolated
    before = _state(requests_table, keys_table, queue)
    response = _in_process(json.dumps(valid()).encode(), {}, api.idp.headers(OFFICER))
    assert response.status_code == 202, response.get_body()
    assert _state(requests_table, keys_table, queue) == (before[0] + 1, before[1] + 1, before[2] + 1)


def test_a_decision_with_a_bad_reason_changes_nothing(api: Api, isolated) -> None:
    _runtime, requests_table, _keys_table, _queue = isolated
    body = {**valid(), "type": "erasure"}
    created = _in_process(
        json.dumps(body).encode(), {"Idempotency-Key": "decision-test"}, api.idp.headers(OFFICER)
    )
    request_id = json.loads(created.get_body())["id"]
    before = requests_table.get_entity(request_id, "request")
    for reason, status in (("ok\r\nforged", 422), ("x" * 501, 422), (5, 422)):
        request = func.HttpRequest(
            "POST",
            f"https://dsr.example/api/v1/requests/{request_id}:approve",
            headers={**JSON, **api.idp.headers(OFFICER)},
            route_params={"id": request_id},
            body=json.dumps({"reason": reason}).encode(),
        )
        assert routes.handle(request, http_api.approve).status_code == status
    after = requests_table.get_entity(request_id, "request")
    assert (after["Status"], after.metadata["etag"]) == ("awaiting_approval", before.metadata["etag"])
