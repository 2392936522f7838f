"""Injected faults, throttling with token buckets, latency and the request log.

The token buckets run on a FakeClock (the `clock` fixture): refills and Retry-After are asserted exactly. The
delay fault and the latency are real sleeps, asserted as lower bounds only (load can only make them longer)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from devtools.amlsim import Simulator, demo_tenant
from devtools.amlsim.identity import TokenIssuer
from tests.clock import FakeClock

from .conftest import ARM_VERSION, PROD, R1, Client, ws_path

WS_ROUTE = r"^GET /management\.azure\.com/subscriptions/[^/]+/resourceGroups/rg-research/.*/mlw-research-01$"


def ws(client: Client) -> str:
    return client.url("arm", ws_path(*R1))


@pytest.mark.parametrize(
    ("status", "code", "retry"),
    [(429, "TooManyRequests", "7"), (503, "ServiceUnavailable", "7"), (500, "InternalServerError", None)],
)
def test_status_fault_once_then_normal(
    client: Client, sim: Simulator, status: int, code: str, retry: str | None
) -> None:
    sim.inject_fault(route=WS_ROUTE, kind="status", status=status, retry_after=7)
    faulted = client.get(ws(client), ARM_VERSION)
    assert faulted.status_code == status
    assert faulted.json()["error"]["code"] == code
    assert faulted.headers.get("Retry-After") == retry
    assert client.get(ws(client), ARM_VERSION).status_code == 200
    assert [e["fault"] for e in sim.log] == ["status", None]


def test_fault_count_and_route_are_respected(client: Client, sim: Simulator) -> None:
    sim.inject_fault(route=r"^DELETE ", kind="status", status=500, count=2)
    sim.inject_fault(route=WS_ROUTE, kind="status", status=503, count=2)
    computes = client.url("arm", ws_path(*R1) + "/computes")
    assert client.get(computes, ARM_VERSION).status_code == 200  # matches neither
    assert [client.get(ws(client), ARM_VERSION).status_code for _ in range(3)] == [503, 503, 200]
    model = client.url("modelmanagement", "/api" + ws_path(*R1) + "/models/nope")
    assert [client.delete(model, ARM_VERSION).status_code for _ in range(3)] == [500, 500, 204]
    assert sim.faults == []


def test_reset_closes_the_connection_without_an_answer(client: Client, sim: Simulator) -> None:
    assert client.get(ws(client), ARM_VERSION).status_code == 200  # a pooled connection exists
    sim.inject_fault(route=WS_ROUTE, kind="reset")
    with pytest.raises(requests.ConnectionError):
        client.get(ws(client), ARM_VERSION)
    assert client.get(ws(client), ARM_VERSION).status_code == 200
    assert sim.log[-2]["fault"] == "reset"
    assert sim.log[-2]["status"] is None


def test_truncate_sends_a_cut_body_with_a_consistent_length(client: Client, sim: Simulator) -> None:
    whole = client.get(ws(client), ARM_VERSION)
    sim.inject_fault(route=WS_ROUTE, kind="truncate")
    cut = client.get(ws(client), ARM_VERSION)
    assert cut.status_code == 200
    assert int(cut.headers["Content-Length"]) == len(cut.content) == len(whole.content) // 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert whole.content.startswith(cut.content)
    assert client.get(ws(client), ARM_VERSION).json() == whole.json()  # and the connection still works


def test_delay_fault_and_latency(client: Client, sim: Simulator) -> None:
    sim.inject_fault(route=WS_ROUTE, kind="delay", delay_s=0.3)
    started = time.perf_counter()
    assert client.get(ws(client), ARM_VERSION).status_code == 200
    assert time.perf_counter() - started >= 0.3
    assert sim.log[-1]["fault"] == "delay"
    assert sim.log[-1]["duration_ms"] >= 300
    sim.set_latency(100)
    started = time.perf_counter()
    client.get(ws(client), ARM_VERSION)
    assert time.perf_counter() - started >= 0.1


def test_probability_faults_are_reproducible_with_the_seed(
    issuer: TokenIssuer, tls: tuple[Path, Path]
) -> None:
    def pattern() -> list[int]:
        with Simulator(demo_tenant(), issuer, cert=tls[0], key=tls[1], seed=42) as sim:
            sim.inject_fault(route="GET ", kind="status", status=503, probability=0.5)
            session = requests.Session()
            session.trust_env = False
            token = issuer.mint("https://management.azure.com")["access_token"]
            url = sim.service_urls["arm"] + ws_path(*R1)
            codes = [
                session.get(
                    url,
                    params=ARM_VERSION,
                    verify=str(tls[0]),
                    timeout=10,
                    headers={"Authorization": f"Bearer {token}"},
                ).status_code
                for _ in range(40)
            ]
            session.close()
            return codes

    first, second = pattern(), pattern()
    assert first == second
    assert 8 <= first.count(503) <= 32
    assert set(first) == {200, 503}


def test_bad_fault_arguments(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="kind"):
        sim.inject_fault(kind="explode")
    with pytest.raises(ValueError, match="probability"):
        sim.inject_fault(probability=2.0)


@pytest.fixture
def clock(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The simulator's token buckets on a clock that moves only when the test says so."""
    fake = FakeClock()
    monkeypatch.setattr(sim.buckets, "clock", fake)
    return fake


def test_rate_limit_burst_then_429_then_refill(client: Client, sim: Simulator, clock: FakeClock) -> None:
    sim.set_rate_limit(read_burst=3, read_rate=0.5)
    responses = [client.get(ws(client), ARM_VERSION) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert [r.headers["x-ms-ratelimit-remaining-subscription-reads"] for r in responses] == [
        "2",
        "1",
        "0",
        "0",
    ]
    throttled = responses[3]
    assert throttled.json()["error"]["code"] == "SubscriptionRequestsThrottled"  # ARM's code
    assert throttled.headers["Retry-After"] == "2"  # a whole token at half a token a second
    # buckets are per subscription and per host: other ones still have budget
    other_sub = client.url(
        "arm", ws_path("9e8d7c6b-5a49-4382-b1f0-e2d3c4b5a602", "rg-analytics", "mlw-analytics")
    )
    assert client.get(other_sub, ARM_VERSION).status_code == 200
    assert (
        client.get(client.url("experiments", "/history/v1.0" + ws_path(*R1) + "/experiments")).status_code
        == 200
    )
    clock.advance(1.0)  # half a token back: still throttled, for the half that is missing
    half = client.get(ws(client), ARM_VERSION)
    assert (half.status_code, half.headers["Retry-After"]) == (429, "1")
    clock.advance(1.0)  # a whole token
    refilled = client.get(ws(client), ARM_VERSION)
    assert (refilled.status_code, refilled.headers["x-ms-ratelimit-remaining-subscription-reads"]) == (
        200,
        "0",
    )
    assert client.get(ws(client), ARM_VERSION).status_code == 429


def test_deletes_have_their_own_bucket(client: Client, sim: Simulator, clock: FakeClock) -> None:
    sim.set_rate_limit(read_burst=1, read_rate=0.1, delete_burst=2, delete_rate=0.1)
    missing = client.url("arm", ws_path(R1[0], R1[1], "mlw-nope"))  # ARM answers a DELETE of nothing with 204
    assert client.get(ws(client), ARM_VERSION).status_code == 200
    assert client.get(ws(client), ARM_VERSION).status_code == 429
    deletes = [client.delete(missing, ARM_VERSION) for _ in range(3)]
    assert [d.status_code for d in deletes] == [204, 204, 429]
    assert [d.headers["x-ms-ratelimit-remaining-subscription-deletes"] for d in deletes] == ["1", "0", "0"]
    assert deletes[2].headers["Retry-After"] == "10"  # one token at a tenth of a token a second
    clock.advance(10.0)
    assert client.delete(missing, ARM_VERSION).status_code == 204
    assert client.get(ws(client), ARM_VERSION).status_code == 200


def test_rate_limit_is_off_by_default_but_headers_count_down(
    client: Client, sim: Simulator, clock: FakeClock
) -> None:
    sim.set_rate_limit(enabled=False, read_burst=2)
    responses = [client.get(ws(client), ARM_VERSION) for _ in range(4)]
    assert [r.status_code for r in responses] == [200] * 4
    assert [r.headers["x-ms-ratelimit-remaining-subscription-reads"] for r in responses] == [
        "1",
        "0",
        "0",
        "0",
    ]
    clock.advance(1.0)  # 25 a second: full again
    assert client.get(ws(client), ARM_VERSION).headers["x-ms-ratelimit-remaining-subscription-reads"] == "1"


def test_a_pooled_client_reuses_one_connection(client: Client, sim: Simulator) -> None:
    before = sim.connections_accepted
    for _ in range(20):
        assert client.get(ws(client), ARM_VERSION).status_code == 200
    client.delete(client.url("modelmanagement", "/api" + ws_path(*R1) + "/models/nope"), ARM_VERSION)
    client.get(ws(client), ARM_VERSION, token=None)  # a 401 keeps the connection too
    client.get(ws(client), ARM_VERSION)
    assert sim.connections_accepted - before <= 1


def test_request_log_entries_never_hold_the_token(
    client: Client, sim: Simulator, issuer: TokenIssuer
) -> None:
    client.get(
        client.url("experiments", "/history/v1.0" + ws_path(*PROD) + "/experiments", "northeurope"),
        {"$top": "2"},
    )
    client.get(ws(client), ARM_VERSION, token=None)
    client.get(ws(client), ARM_VERSION, token="x.y.z")
    log = sim.log
    assert len(log) == 3
    first, missing, invalid = log
    assert set(first) == {
        "seq",
        "time",
        "method",
        "host",
        "path",
        "query",
        "status",
        "auth",
        "principal",
        "fault",
        "duration_ms",
    }
    assert first["host"] == "northeurope.experiments.azureml.net"
    assert first["path"] == "/history/v1.0" + ws_path(*PROD) + "/experiments"
    assert first["query"] == {"$top": "2"}
    assert (first["method"], first["status"], first["auth"], first["fault"]) == ("GET", 200, "valid", None)
    assert first["principal"] == issuer.principal_id
    assert (missing["auth"], missing["status"], missing["principal"]) == ("missing", 401, None)
    assert (invalid["auth"], invalid["status"]) == ("invalid", 401)
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)
    assert first["time"] <= missing["time"] <= invalid["time"]
    assert client.token not in json.dumps(log)
    log[0]["status"] = 999  # a copy
    assert sim.log[0]["status"] == 200
    sim.clear_log()
    assert sim.log == []
