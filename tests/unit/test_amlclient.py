"""The Azure ML client's policy: tokens, allow-list, retries, throttling and paging.

A scripted transport adapter stands in for the network, so these tests do no I/O; the same client is exercised
against the simulator over real HTTPS in the integration tests.
"""

from __future__ import annotations

import json
from collections import deque
from types import SimpleNamespace

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from shared.aml.client import AmlError, AzureMLClient, CallStats, RateLimiter, ThrottledError, with_query
from shared.core.outbound import AllowList, DisallowedUrlError
from tests.clock import FakeClock

BASE = "https://management.azure.com/subscriptions/s/providers/x"


class Script(BaseAdapter):
    """Answers each request with the next scripted (status, body, headers) or exception."""

    def __init__(self, answers):
        super().__init__()
        self.answers = deque(answers)
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):
        self.sent.append(request)
        answer = self.answers.popleft()
        if isinstance(answer, Exception):
            raise answer
        status, body, headers = ((*answer, {}))[:3] if len(answer) == 2 else answer
        response = requests.Response()
        response.status_code = status
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers = CaseInsensitiveDict(headers)
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


class Credential:
    def __init__(self):
        self.calls = 0

    def get_token(self, *scopes, **kwargs):
        self.calls += 1
        return SimpleNamespace(token=f"tok{self.calls}", expires_on=4102444800)


def client(answers, **kw):
    session = requests.Session()
    script = Script(answers)
    session.mount("https://", script)
    session.mount("http://", script)
    sleeps: list[float] = []
    c = AzureMLClient(
        Credential(),
        "https://management.azure.com/.default",
        AllowList(["management.azure.com", "*.experiments.azureml.net"]),
        session=session,
        sleep=sleeps.append,
        **kw,
    )
    return c, script, sleeps


def test_token_is_sent_cached_and_redirects_are_not_followed():
    c, script, _ = client([(200, {"value": []}), (302, b"", {"Location": "https://evil.example/x"})])
    assert c.get_json(BASE) == {"value": []}
    with pytest.raises(AmlError) as err:
        c.request("GET", BASE)
    assert err.value.status == 302
    assert [r.headers["Authorization"] for r in script.sent] == ["Bearer tok1", "Bearer tok1"]
    assert len(script.sent) == 2  # the redirect target was never contacted
    assert c.credential.calls == 1


def test_nothing_is_sent_to_a_host_off_the_allow_list():
    c, script, _ = client([])
    with pytest.raises(DisallowedUrlError):
        c.get_json("https://evil.example/subscriptions")
    assert script.sent == []
    assert c.credential.calls == 0


def test_5xx_connection_errors_and_cut_json_are_retried_with_backoff():
    c, script, sleeps = client(
        [
            (500, {"error": {"code": "InternalServerError"}}),
            requests.ConnectionError("reset"),
            (200, b'{"value": [1, 2'),
            (503, {}, {"Retry-After": "2"}),
            (200, {"value": [1]}),
        ]
    )
    stats = CallStats()
    assert c.get_json(BASE, stats=stats) == {"value": [1]}
    assert len(script.sent) == 5
    assert len(sleeps) == 4
    assert stats.as_dict() == {"calls": 5, "retries": 4, "throttled": 0}
    assert sleeps[3] == 2.0  # a 503's short Retry-After is honoured
    assert all(0 <= s <= 8 for s in sleeps)


def test_retries_give_up_after_max_attempts_with_the_error_code():
    c, _, _ = client([(500, {"error": {"code": "Boom", "message": "x"}})] * 3, max_attempts=3)
    stats = CallStats()
    with pytest.raises(AmlError) as err:
        c.get_json(BASE, stats=stats)
    assert (err.value.status, err.value.code) == (500, "Boom")
    assert stats.as_dict() == {"calls": 3, "retries": 2, "throttled": 0}


def test_4xx_is_final_and_carries_the_arm_error_code():
    c, script, _ = client([(404, {"error": {"code": "ResourceNotFound", "message": "gone"}})])
    with pytest.raises(AmlError) as err:
        c.get_json(BASE + "?api-version=1&$skipToken=secret")
    assert (err.value.status, err.value.code, err.value.message) == (404, "ResourceNotFound", "gone")
    assert "secret" not in str(err.value)  # queries stay out of errors and logs
    assert len(script.sent) == 1


def test_model_management_and_aether_errors_are_read_in_their_own_shapes():
    # modelManagement.json 2019-09-30 ModelErrorResponse: {code, statusCode, message, details} at the top
    mms = {
        "code": "Conflict",
        "statusCode": 409,
        "message": "Model 'm:1' is used by image i:1.",
        "details": [{"code": "DependentResourceExists", "target": "i:1", "message": "used"}],
    }
    c, _, _ = client(
        [
            (409, mms),
            (404, {"code": "ServiceNotFound", "statusCode": 404, "message": "Service 's' was not found."}),
            (400, {"error": {"code": "BadArm", "message": "arm shape"}}),
            (404, {"Error": {"Code": "GraphNotFound", "Message": "aether shape"}}),  # pipelines: PascalCase
            (400, {"unexpected": True}),
        ]
    )
    found = []
    for _ in range(5):
        with pytest.raises(AmlError) as err:
            c.request("DELETE", BASE)
        found.append((err.value.status, err.value.code, err.value.message))
    assert found == [
        (409, "Conflict", "Model 'm:1' is used by image i:1."),
        (404, "ServiceNotFound", "Service 's' was not found."),
        (400, "BadArm", "arm shape"),
        (404, "GraphNotFound", "aether shape"),
        (400, "HTTP400", '{"unexpected": true}'),
    ]


def test_short_429_waits_in_process_long_429_goes_back_to_the_caller():
    c, _, sleeps = client([(429, {}, {"Retry-After": "3"}), (200, {"value": []})], max_inprocess_wait=5)
    stats = CallStats()
    assert c.get_json(BASE, stats=stats) == {"value": []}
    assert sleeps == [3.0]
    assert stats.as_dict() == {"calls": 2, "retries": 1, "throttled": 1}
    c, script, sleeps = client([(429, {}, {"Retry-After": "120"})], max_inprocess_wait=5)
    with pytest.raises(ThrottledError) as err:
        c.get_json(BASE)
    assert err.value.retry_after == 120.0
    assert sleeps == []
    assert len(script.sent) == 1


def test_paging_follows_nextlink_continuation_token_and_checks_each_link():
    first = "https://westeurope.experiments.azureml.net/history/v1.0/x/runs"
    c, script, _ = client(
        [
            (200, {"value": [1, 2], "continuationToken": "abc", "nextLink": None}),
            (200, {"value": [3], "nextLink": first + "?continuationToken=def"}),
            (200, {"value": [4], "continuationToken": None}),
        ]
    )
    pages = list(c.pages(first, continuation_param="continuationToken"))
    assert [p.items for p in pages] == [[1, 2], [3], [4]]
    assert script.sent[1].url == first + "?continuationToken=abc"
    assert script.sent[2].url == first + "?continuationToken=def"
    assert pages[-1].next_url is None


def test_a_hostile_next_link_is_refused_before_it_is_followed():
    c, script, _ = client([(200, {"value": [1], "nextLink": "https://evil.example/steal"})])
    with pytest.raises(DisallowedUrlError):
        list(c.pages(BASE))
    assert len(script.sent) == 1


def test_with_query_merges_and_replaces():
    assert with_query("https://h/p?a=1&b=2", {"b": "3", "c": "x y"}) == "https://h/p?a=1&b=3&c=x+y"


def test_rate_limiter_allows_the_burst_then_paces_at_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(read_rate=10, read_burst=5, delete_rate=1, delete_burst=2, clock=clock)
    key = RateLimiter.key("GET", "https://management.azure.com/subscriptions/SUB-1/resourceGroups/rg?x=1")
    assert key == ("sub-1", "management.azure.com", "reads")
    assert [limiter.reserve(key) for _ in range(5)] == [0.0] * 5
    assert limiter.reserve(key) == pytest.approx(0.1)  # the 6th waits for one token at 10/s
    clock.advance(1.0)  # ten tokens' worth of time: the debt is repaid and the bucket refills to its burst
    assert limiter.reserve(key) == 0.0
    deletes = RateLimiter.key("DELETE", "https://h.example/api/subscriptions/SUB-1/x")
    assert deletes[2] == "deletes"
    assert [limiter.reserve(deletes) for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_rate_limiter_follows_the_services_remaining_count():
    limiter = RateLimiter(read_rate=25, read_burst=250, clock=FakeClock())
    key = ("s", "management.azure.com", "reads")
    limiter.observe(key, "1")  # other callers used the budget
    assert limiter.reserve(key) == 0.0
    assert limiter.reserve(key) == pytest.approx(1 / 25)


def test_a_long_client_side_wait_goes_back_to_the_caller_without_sending():
    c, script, sleeps = client([], limiter=RateLimiter(read_rate=0.01, read_burst=1), max_inprocess_wait=5)
    c.limiter.reserve(RateLimiter.key("GET", BASE))  # the only token is gone; the next one is 100 s away
    with pytest.raises(ThrottledError) as err:
        c.get_json(BASE)
    assert err.value.retry_after == pytest.approx(100, rel=0.01)
    assert script.sent == []
    assert sleeps == []
