"""The simulator hands out hostile absolute URLs (nextLink, discovery, Azure-AsyncOperation, Location): another
port, plain http, user-info tricks, another host name. The app refuses each before sending anything, so an
"attacker" listening there receives no request (no token, no data), and the request names the refusal."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from devtools.amlsim.fixture import demo_tenant
from tests.security.conftest import Api, subject_of, subscriptions
from tests.security.idp import OFFICER, OFFICER_2


class Attacker:
    """Two listeners (https and plain http) that record every request they get."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.requests: list[dict[str, Any]] = []
        attacker = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                attacker.requests.append(
                    {"method": self.command, "path": self.path, "auth": self.headers.get("Authorization")}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = do_DELETE = _record

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.https = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.https.socket = context.wrap_socket(self.https.socket, server_side=True)
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        for server in (self.https, self.http):
            threading.Thread(target=server.serve_forever, daemon=True).start()

    @property
    def https_port(self) -> int:
        return self.https.server_address[1]

    @property
    def http_port(self) -> int:
        return self.http.server_address[1]

    def stop(self) -> None:
        for server in (self.https, self.http):
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def attacker(tls: tuple[Path, Path]) -> Iterator[Attacker]:
    server = Attacker(*tls)
    # The control: both listeners answer and record (so "no request" below means something)
    for url in (f"https://127.0.0.1:{server.https_port}/x", f"http://127.0.0.1:{server.http_port}/x"):
        assert requests.get(url, headers={"Authorization": "Bearer probe"}, timeout=5).status_code == 200
    assert [r["auth"] for r in server.requests] == ["Bearer probe", "Bearer probe"]
    server.requests.clear()
    yield server
    server.stop()


def _bases(sim_host: str, attacker: Attacker) -> dict[str, str]:
    return {
        "another port": f"https://127.0.0.1:{attacker.https_port}",
        "plain http": f"http://127.0.0.1:{attacker.http_port}",
        "user info naming the real host": f"https://{sim_host}@127.0.0.1:{attacker.https_port}",
        "another host name": f"https://localhost:{attacker.https_port}",
    }


HOSTILE_CASES = ["another port", "plain http", "user info naming the real host", "another host name"]


@pytest.fixture
def hostile(secure_stack: Any) -> Iterator[Any]:
    sim = secure_stack.simulator
    sim.reset(demo_tenant())
    sim.clear_log()
    yield sim
    sim.set_hostile_links(False)
    sim.reset(demo_tenant())


@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_no_request_reaches_a_hostile_link_of_an_export(
    api: Api, hostile: Any, attacker: Attacker, case: str
) -> None:
    sim_host = urlsplit(hostile.base_url).netloc
    hostile.set_hostile_links(True, base=_bases(sim_host, attacker)[case], kinds=["nextLink", "discovery"])
    body = {
        "type": "export",
        "subject": subject_of(hostile),
        "scope": {"subscriptions": subscriptions(hostile)},
    }
    submitted = api.call("POST", "v1/requests", OFFICER, body=body)
    assert submitted.status_code == 202, submitted.text
    view = api.wait(submitted.json()["id"])
    assert view["status"] == "completed_with_errors"
    assert any("refused to follow an outbound URL" in str(e["reason"]) for e in view["errors"]), view[
        "errors"
    ]
    assert attacker.requests == []
    # Every call that was made went to the simulator, with a valid token
    assert {e["auth"] for e in hostile.log if not e["path"].startswith("/_sim")} <= {"valid"}


def test_a_hostile_operation_url_of_a_workspace_deletion_is_not_polled(
    api: Api, hostile: Any, attacker: Attacker
) -> None:
    hostile.set_lro(polls_in_progress=2, outcome="Succeeded", retry_after=1, initial_status=202)
    hostile.set_hostile_links(
        True, base=f"https://127.0.0.1:{attacker.https_port}", kinds=["asyncOperation", "location"]
    )
    name = "mlw-research-02"
    arm_id = next(ws.arm_id for ws in hostile.tenant.workspaces.values() if ws.name == name)
    body = {"type": "erasure", "scope": {"workspaces": [arm_id]}, "deleteWorkspace": {"confirm": name}}
    submitted = api.call("POST", "v1/requests", OFFICER, body=body)
    assert api.call("POST", f"v1/requests/{submitted.json()['id']}:approve", OFFICER_2).status_code == 200
    view = api.wait(submitted.json()["id"])
    assert view["status"] == "completed_with_errors"
    assert any("refused to follow an outbound URL" in str(e["reason"]) for e in view["errors"]), view[
        "errors"
    ]
    assert attacker.requests == []


def test_a_hostile_operation_url_of_a_service_deletion_is_not_polled(
    api: Api, hostile: Any, attacker: Attacker
) -> None:
    # Given service DELETEs that answer 202 with an Operation-Location on a foreign host
    assert hostile.service_lro.initial_status == 202  # the simulator's default
    hostile.set_hostile_links(
        True, base=f"https://127.0.0.1:{attacker.https_port}", kinds=["operationLocation"]
    )
    services = set(hostile.truth("alice")["services"])
    body = {
        "type": "erasure",
        "subject": subject_of(hostile),
        "scope": {"subscriptions": subscriptions(hostile)},
    }
    submitted = api.call("POST", "v1/requests", OFFICER, body=body)
    assert api.call("POST", f"v1/requests/{submitted.json()['id']}:approve", OFFICER_2).status_code == 200
    view = api.wait(submitted.json()["id"])
    # Then nothing reached the foreign host, no operation was polled anywhere, each service got one DELETE,
    # and each is reported pending (its deletion cannot be followed), never deleted
    assert attacker.requests == []
    assert [e for e in hostile.log if "/operations/" in e["path"]] == []
    sent = sorted(
        e["path"].rsplit("/", 1)[-1]
        for e in hostile.log
        if e["method"] == "DELETE" and "/services/" in e["path"]
    )
    assert sent == sorted(services)
    assert view["status"] == "completed_with_errors"
    pending = {e["reason"] for e in view["errors"] if e["family"] == "services"}
    assert pending == {f"{s}: pending" for s in services}
