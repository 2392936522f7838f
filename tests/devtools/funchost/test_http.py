"""HTTP triggers through a real socket: routing, methods, keys, responses, errors, limits."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from devtools.funchost import FunctionHost
from tests.conftest import ROOT
from tests.devtools.funchost.conftest import APP_REF, HOST_JSON, HOST_KEY, RARE_SCHEDULE

GUID = "6f1c2b8e-1111-4a4b-9c9d-0000000000a1"


@pytest.fixture(scope="module")
def http_host() -> Iterator[FunctionHost]:
    """HTTP only (no storage needed): queues and timers off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUNCHOST_SAMPLE_QUEUE", "unused-queue")
        mp.setenv("FUNCHOST_SAMPLE_SCHEDULE", RARE_SCHEDULE)
        mp.setenv("FUNCTIONS_HOST_KEYS", f"other-key,{HOST_KEY}")
        host = FunctionHost(APP_REF, root=ROOT, host_json=HOST_JSON, queues=False, timers=False).start()
        try:
            yield host
        finally:
            host.stop(timeout=5)


def test_route_params_query_headers_and_response(http_host: FunctionHost) -> None:
    response = requests.get(
        f"{http_host.http_url}/api/items/42/bob?q=1&q=2&flag", headers={"X-Demo": "hello"}, timeout=10
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Item"] == "42"
    assert response.json() == {
        "id": "42",
        "name": "bob",
        "q": "1,2",  # repeated query values are joined, as the host does
        "header": "hello",
        "method": "GET",
        "url": f"{http_host.http_url}/api/items/42/bob?q=1&q=2&flag",
    }
    assert requests.get(f"{http_host.http_url}/api/items/7", timeout=10).json()["name"] is None


def test_complex_segment_with_guid_constraint_and_location(http_host: FunctionHost) -> None:
    response = requests.post(
        f"{http_host.http_url}/api/requests/{GUID}:approve", json={"by": "dpo@example.com"}, timeout=10
    )
    assert response.status_code == 202
    assert response.headers["Location"] == f"/api/requests/{GUID}"
    assert response.json() == {"rid": GUID, "approved_by": "dpo@example.com"}
    # not a GUID: that template does not match, and no other takes POST there
    assert (
        requests.post(f"{http_host.http_url}/api/requests/abc:approve", json={}, timeout=10).status_code
        == 405
    )


def test_literal_route_wins_over_parameter(http_host: FunctionHost) -> None:
    assert requests.get(f"{http_host.http_url}/api/requests/pending", timeout=10).text == "pending list"
    assert requests.get(f"{http_host.http_url}/api/requests/r-17", timeout=10).text == "request r-17"
    text = requests.get(f"{http_host.http_url}/api/requests/pending", timeout=10).headers["Content-Type"]
    assert text == "text/plain; charset=utf-8"


def test_async_function_catch_all_and_binary_body(http_host: FunctionHost) -> None:
    payload = bytes(range(256)) * 4
    response = requests.put(f"{http_host.http_url}/api/echo/a/b%2Fc/d", data=payload, timeout=10)
    assert response.status_code == 200
    assert response.content == payload
    assert response.headers["X-Rest"] == "a/b%2Fc/d"  # an encoded slash stays encoded, as in Kestrel
    assert response.headers["X-Thread"] == "funchost-loop"  # async def runs on the event loop thread


def test_404_and_405(http_host: FunctionHost) -> None:
    assert requests.get(f"{http_host.http_url}/api/nothing/here", timeout=10).status_code == 404
    assert requests.get(f"{http_host.http_url}/items/42", timeout=10).status_code == 404  # no route prefix
    assert requests.get(f"{http_host.http_url}/api/items/forty-two", timeout=10).status_code == 404  # int
    response = requests.delete(f"{http_host.http_url}/api/items/42", timeout=10)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    for method in ("TRACE", "QUERY"):  # not http.server's 501 (a 5xx the API never answers)
        response = requests.request(method, f"{http_host.http_url}/api/items/42", timeout=10)
        assert (response.status_code, response.headers["Allow"]) == (405, "GET")


def test_function_level_key(http_host: FunctionHost) -> None:
    url = f"{http_host.http_url}/api/secure/ping"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"x-functions-key": "wrong"}, timeout=10).status_code == 401
    by_header = requests.get(url, headers={"x-functions-key": HOST_KEY}, timeout=10)
    assert (by_header.status_code, by_header.text) == (200, "pong")
    assert requests.get(url, params={"code": HOST_KEY}, timeout=10).status_code == 200
    # anonymous routes need no key
    assert requests.get(f"{http_host.http_url}/api/items/1", timeout=10).status_code == 200


def test_unhandled_exception_is_500_and_counted(http_host: FunctionHost) -> None:
    before = dict(http_host.invocations["boom"])
    response = requests.get(f"{http_host.http_url}/api/boom", timeout=10)
    assert (response.status_code, response.content) == (500, b"")
    assert http_host.invocations["boom"]["failed"] == before["failed"] + 1
    response = requests.get(f"{http_host.http_url}/api/nothing", timeout=10)
    assert response.status_code == 500
    assert http_host.invocations["nothing"] == {"succeeded": 0, "failed": 1}


def test_keep_alive_and_body_limit(http_host: FunctionHost) -> None:
    address = urlsplit(http_host.http_url)
    conn = http.client.HTTPConnection(address.hostname or "", address.port, timeout=10)
    try:
        for n in (1, 2):
            conn.request("POST", f"/api/echo/n{n}", body=b"x" * n)
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"x" * n)
            assert not response.will_close  # the same connection serves the next request
        conn.putrequest("POST", "/api/echo/big")
        conn.putheader("Content-Length", str(100 * 1024 * 1024 + 1))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert response.will_close
    finally:
        conn.close()


def test_admin_api_answers_for_http_functions_and_needs_a_key(http_host: FunctionHost) -> None:
    url = f"{http_host.http_url}/admin/functions/get_item"
    assert requests.post(url, json={"input": ""}, timeout=10).status_code == 401
    response = requests.post(url, json={"input": ""}, headers={"x-functions-key": HOST_KEY}, timeout=10)
    assert response.status_code == 400
    assert "HTTP function" in json.loads(response.text)["error"]
    missing = requests.post(
        f"{http_host.http_url}/admin/functions/nope",
        json={},
        headers={"x-functions-key": HOST_KEY},
        timeout=10,
    )
    assert missing.status_code == 404
