"""scripts/smoke.py against a stub of the HTTP API on 127.0.0.1: arguments, steps, verdicts."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from scripts import smoke

WORKSPACE = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.MachineLearningServices/workspaces/ws1"
KEY = "function-key-1"


class StubApi:
    """Answers like the app: 404 problem+json for an unknown id, 202 for a submit, then the given statuses."""

    def __init__(self, statuses: list[str], require_token: bool = False) -> None:
        self.statuses = statuses
        self.require_token = require_token
        self.submitted: list[dict[str, Any]] = []
        self.seen_keys: list[str | None] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def answer(self, status: int, body: dict[str, Any], kind: str, **headers: str) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.end_headers()
                self.wfile.write(data)

            def authorized(self) -> bool:
                stub.seen_keys.append(self.headers.get("x-functions-key"))
                if stub.require_token and not self.headers.get("Authorization", "").startswith("Bearer "):
                    self.answer(401, {}, "application/json")
                    return False
                if self.headers.get("x-functions-key") != KEY:
                    self.answer(401, {}, "application/json")
                    return False
                return True

            def do_GET(self) -> None:
                if not self.authorized():
                    return
                if self.path == "/api/v1/requests/r-1" and stub.statuses:
                    status = stub.statuses.pop(0)
                    self.answer(
                        200,
                        {"id": "r-1", "status": status, "errors": []},
                        "application/json",
                        Retry_After="0",
                    )
                else:
                    problem = {"title": "Not Found", "status": 404}
                    self.answer(404, problem, "application/problem+json")

            def do_POST(self) -> None:
                if not self.authorized():
                    return
                length = int(self.headers.get("Content-Length", "0"))
                stub.submitted.append(json.loads(self.rfile.read(length)))
                location = f"http://127.0.0.1:{stub.port}/api/v1/requests/r-1"
                self.answer(202, {"id": "r-1", "status": "accepted"}, "application/json", Location=location)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StubApi:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lines() -> list[str]:
    return []


def run(stub: StubApi, lines: list[str], *extra: str) -> None:
    args = smoke.parse_args(
        ["--base-url", stub.url + "/", "--function-key", KEY, "--workspace-id", WORKSPACE, *extra]
    )
    smoke.Smoke(args, sleep=lambda seconds: None, out=lines.append).run()


def test_passes_when_health_answers_404_and_the_dry_run_completes(lines: list[str]) -> None:
    # Given an API whose dry run runs once, then completes
    with StubApi(["running", "completed"]) as stub:
        # When the smoke test runs
        run(stub, lines)

    # Then it submitted a dry-run export of exactly that workspace, with the key on every call
    (body,) = stub.submitted
    assert body["type"] == "export"
    assert body["dryRun"] is True
    assert body["scope"] == {"workspaces": [WORKSPACE]}
    assert set(body["subject"]) == {"objectId"}
    assert stub.seen_keys == [KEY] * 4
    assert any("404 problem+json" in line for line in lines)
    assert [line for line in lines if "status:" in line] == ["  status: running", "  status: completed"]


def test_fails_when_the_dry_run_ends_with_errors(lines: list[str]) -> None:
    with (
        StubApi(["completed_with_errors"]) as stub,
        pytest.raises(smoke.SmokeFailure, match="completed_with_errors"),
    ):
        run(stub, lines)


def test_fails_when_health_does_not_answer_problem_json(lines: list[str]) -> None:
    # Given a wrong function key (the API answers 401)
    with StubApi([]) as stub:
        args = smoke.parse_args(
            ["--base-url", stub.url, "--function-key", "wrong", "--workspace-id", WORKSPACE]
        )
        check = smoke.Smoke(args, sleep=lambda s: None, out=lines.append)

        # Then the health step fails, naming what it got
        with pytest.raises(smoke.SmokeFailure, match="expected 404 problem\\+json, got 401"):
            check.run()


def test_expect_entra_fails_when_a_request_without_token_is_served(lines: list[str]) -> None:
    with (
        StubApi(["completed"]) as stub,
        pytest.raises(smoke.SmokeFailure, match="Easy Auth is not enforcing"),
    ):
        run(stub, lines, "--expect-entra")


def test_expect_entra_passes_with_a_token_when_the_api_demands_one(lines: list[str]) -> None:
    with StubApi(["completed"], require_token=True) as stub:
        run(stub, lines, "--expect-entra", "--access-token", "t0ken")

    assert "  ok: 401" in lines


def test_main_exits_1_on_failure_and_0_on_success(capsys: pytest.CaptureFixture[str]) -> None:
    with StubApi(["failed"]) as stub:
        argv = [
            "--base-url",
            stub.url,
            "--function-key",
            KEY,
            "--workspace-id",
            WORKSPACE,
            "--poll-interval",
            "0",
        ]
        assert smoke.main(argv) == 1
    assert "FAILED: the dry run ended failed" in capsys.readouterr().err


def test_function_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DSR_FUNCTION_KEY", "from-env")

    args = smoke.parse_args(["--base-url", "https://x", "--workspace-id", WORKSPACE])

    assert args.function_key == "from-env"


@pytest.mark.parametrize(
    "argv",
    [
        ["--base-url", "https://x", "--workspace-id", WORKSPACE],  # no key anywhere
        ["--base-url", "https://x", "--function-key", KEY, "--workspace-id", "ws1"],  # not an ARM id
        ["--function-key", KEY, "--workspace-id", WORKSPACE],  # no base URL
    ],
)
def test_bad_arguments_exit_2(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSR_FUNCTION_KEY", raising=False)

    with pytest.raises(SystemExit) as exit_:
        smoke.parse_args(argv)

    assert exit_.value.code == 2


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests honours proxy variables; the stub is on loopback.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
