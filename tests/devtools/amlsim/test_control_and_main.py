"""The /_sim control API and the standalone `python -m devtools.amlsim`."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

from devtools.amlsim import Simulator

from .conftest import ARM_VERSION, R1, Client, ws_path

ROOT = Path(__file__).resolve().parents[3]


def control(client: Client, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    return client.session.request(
        method, f"{client.sim.base_url}/_sim/{path}", json=body, verify=client.cert, timeout=30
    )


def test_control_api_drives_the_simulator(client: Client, sim: Simulator) -> None:
    health = control(client, "GET", "health").json()
    assert health["status"] == "ok"
    assert health["base_url"] == sim.base_url
    assert health["service_urls"] == sim.service_urls
    assert health["identity"] == sim.identity_environment
    assert control(client, "GET", "truth?person=alice").json() == sim.truth("alice")
    assert control(client, "GET", "truth?person=alice&by=workspace").json() == sim.truth_by_workspace("alice")
    assert control(client, "GET", "truth?person=nobody").status_code == 404
    assert len(control(client, "GET", "state").json()["workspaces"]) == 4

    fault = control(
        client,
        "POST",
        "faults",
        {"route": "mlw-research-01$", "kind": "status", "status": 503, "retry_after": 2},
    )
    assert fault.json()["id"].startswith("fault-")
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 503
    control(client, "POST", "faults", {"route": ".*", "kind": "status", "status": 500, "count": 5})
    assert control(client, "DELETE", "faults").status_code == 200
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 200
    assert control(client, "POST", "faults", {"kind": "explode"}).status_code == 400

    log = control(client, "GET", "log").json()["value"]
    assert [e["status"] for e in log] == [503, 200]  # control calls are not logged
    assert control(client, "DELETE", "log").status_code == 200
    assert sim.log == []

    assert (
        control(client, "POST", "ratelimit", {"read_burst": 1, "read_rate": 0.01}).json()["enabled"] is True
    )
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 200
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 429
    control(client, "POST", "ratelimit", {"enabled": False})

    assert (
        control(client, "POST", "lro", {"polls_in_progress": 0, "outcome": "Failed"}).json()["outcome"]
        == "Failed"
    )
    assert sim.lro.polls_in_progress == 0

    reset = control(
        client,
        "POST",
        "reset",
        {
            "tenant": "large",
            "workspaces": 1,
            "experiments_per_workspace": 2,
            "runs_per_experiment": 2,
            "models_per_workspace": 4,
            "people": 8,
        },
    )
    assert reset.json() == {"tenant": "large", "workspaces": 1}
    assert control(client, "GET", "health").json()["tenant"] == "large"
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 404
    assert control(client, "POST", "reset", {"tenant": "demo"}).json()["workspaces"] == 4
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 200
    assert control(client, "POST", "reset", {"tenant": "nope"}).status_code == 400


def test_hostile_links_point_outside_the_simulator(client: Client, sim: Simulator) -> None:
    sim.set_hostile_links(base="https://evil.example")
    page = client.get(client.url("modelmanagement", "/api" + ws_path(*R1) + "/models"), ARM_VERSION).json()
    assert page["nextLink"].startswith("https://evil.example/")
    ws = client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).json()
    assert ws["properties"]["discoveryUrl"].startswith("https://evil.example/")
    deleted = client.delete(client.url("arm", ws_path(*R1)), ARM_VERSION)
    assert deleted.headers["Azure-AsyncOperation"].startswith("https://evil.example/")
    assert deleted.headers["Location"].startswith("https://evil.example/")
    sim.set_hostile_links(enabled=False)
    page = client.get(client.url("modelmanagement", "/api" + ws_path(*R1) + "/models"), ARM_VERSION).json()
    assert page["nextLink"].startswith(sim.base_url)


def test_standalone_prints_one_json_line_and_serves_until_sigterm(tls: tuple[Path, Path]) -> None:
    cert, key = tls
    env = {k: v for k, v in os.environ.items() if k not in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")}
    proc = subprocess.Popen(  # noqa: S603 - our own module
        [
            sys.executable,
            "-m",
            "devtools.amlsim",
            "--tenant",
            "demo",
            "--port",
            "0",
            "--page-size",
            "3",
            "--cert",
            str(cert),
            "--key",
            str(key),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "no line on stdout"
        info = json.loads(proc.stdout.readline())
        assert set(info) == {
            "base_url",
            "service_urls",
            "graph_url",
            "identity",
            "tenant_id",
            "principal_id",
            "client_id",
        }
        assert info["tenant_id"] == "72f988bf-0000-4000-8000-00000000d5a1"
        session = requests.Session()
        session.trust_env = False
        token_answer = session.get(
            info["identity"]["IDENTITY_ENDPOINT"],
            timeout=10,
            params={"api-version": "2019-08-01", "resource": "https://management.azure.com"},
            headers={"X-IDENTITY-HEADER": info["identity"]["IDENTITY_HEADER"]},
        )
        assert token_answer.status_code == 200
        token = token_answer.json()["access_token"]
        url = (
            info["service_urls"]["modelmanagement"].replace("{location}", "westeurope")
            + "/api"
            + ws_path(*R1)
        )
        models = session.get(
            url + "/models",
            params=ARM_VERSION,
            verify=str(cert),
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert models.status_code == 200
        assert len(models.json()["value"]) == 3  # --page-size
        health = session.get(info["base_url"] + "/_sim/health", verify=str(cert), timeout=10)
        assert health.json()["tenant"] == "demo"
        session.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
