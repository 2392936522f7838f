"""The `dsr` command line, against a fake API behind a requests adapter (no network): argument parsing, the
request bodies and headers it sends, problem+json output, Retry-After, the progress bars, paging, the package
download (no API credentials on the SAS link) and the zip verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from dsr_cli import main as cli
from dsr_cli.client import ApiClient, ApiError, CliError, EntraToken, UsageError, api_base, redact
from dsr_cli.client import retry_after_seconds as retry_after
from dsr_cli.progress import Board, ByteProgress, bar, family_lines
from dsr_cli.render import is_overdue, status_text, table
from dsr_cli.verify import verify_package

BASE = "https://dsr.example.net"
KEY = "key-123"
RID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
OTHER = "0190a1b2-c3d4-7e5f-8a9b-ffffffffffff"
SAS = "https://store.blob.core.windows.net/dsr-exports/" + RID + "/package.zip?sv=2025&sig=SECRETSIG"


# -- a fake API -----------------------------------------------------------------------------------------------
@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None


@dataclass
class Seen:
    method: str
    url: str
    headers: dict[str, str]
    body: Any

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)


class FakeApi(BaseAdapter):
    """Answers (METHOD, path) from queues of replies (the last one repeats) and records every request."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], list[Reply | Callable[[Seen], Reply]]] = {}
        self.seen: list[Seen] = []

    def on(self, method: str, url_or_path: str, *replies: Reply | Callable[[Seen], Reply]) -> None:
        path = urlsplit(url_or_path).path if "://" in url_or_path else "/api/v1" + url_or_path
        self.routes[(method, path)] = list(replies)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = json.loads(request.body) if request.body else None
        seen = Seen(request.method or "", request.url or "", dict(request.headers), body)
        self.seen.append(seen)
        queue = self.routes.get((seen.method, seen.path))
        if not queue:
            reply = Reply(
                404,
                {"title": "No such route", "detail": seen.path},
                {"Content-Type": "application/problem+json"},
            )
        else:
            item = queue.pop(0) if len(queue) > 1 else queue[0]
            reply = item(seen) if callable(item) else item
        response = requests.Response()
        response.status_code = reply.status
        response.reason = HTTPStatus(reply.status).phrase
        response.url = seen.url
        response.request = request
        data = (
            reply.raw
            if reply.raw is not None
            else b""
            if reply.body is None
            else json.dumps(reply.body).encode()
        )
        headers = dict(reply.headers)
        if reply.body is not None and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json"
        response.headers = CaseInsensitiveDict(headers)
        response.raw = io.BytesIO(data)
        return response

    def close(self) -> None:
        pass

    def calls(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path == path]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    """Every requests.Session the CLI makes talks to the fake; sleeps are recorded, not slept."""
    fake = FakeApi()
    real_session = requests.Session

    def session() -> requests.Session:
        s = real_session()
        s.mount("https://", fake)
        s.mount("http://", fake)
        return s

    monkeypatch.setattr(requests, "Session", session)
    fake.sleeps = []  # type: ignore[attr-defined]
    monkeypatch.setattr("time.sleep", fake.sleeps.append)  # type: ignore[attr-defined]
    monkeypatch.setenv("DSR_API_URL", BASE)
    monkeypatch.setenv("DSR_FUNCTION_KEY", KEY)
    monkeypatch.delenv("DSR_API_SCOPE", raising=False)
    return fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def view(status: str = "running", **over: Any) -> dict[str, Any]:
    body = {
        "id": RID,
        "type": "export",
        "status": status,
        "dryRun": False,
        "reference": "T-1",
        "receivedAt": "2026-01-10T09:00:00Z",
        "dueAt": "2026-02-10T09:00:00Z",
        "progress": {
            "runs": {
                "title": "Runs",
                "tasks": 4,
                "queued": 1,
                "running": 1,
                "done": 2,
                "recordsKept": 7,
                "recordsSeen": 20,
                "calls": 9,
            },
            "models": {
                "title": "Models",
                "tasks": 2,
                "done": 2,
                "recordsKept": 3,
                "recordsSeen": 5,
                "calls": 4,
            },
        },
        "errors": [],
        "links": {"self": f"{BASE}/api/v1/requests/{RID}"},
    }
    body.update(over)
    return body


PROBLEM = {"Content-Type": "application/problem+json"}


# -- arguments and connection ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["status", "../etc/passwd"], "is not a request id"),
        (["extend", RID, "--months", "3", "--reason", "complex"], "invalid choice: 3"),
        (["extend", RID, "--months", "1"], "--reason"),
        (["list", "--page-size", "500"], "from 1 to 200"),
        (["list", "--due-before", "next week"], "ISO 8601"),
        (["list", "--subject-upn", "a@b.c", "--subject-email", "a@b.c"], "not allowed with"),
        (["submit", "export", "--subscription", "s"], "name the person"),
        (["submit", "erasure", "--upn", "a@b.c"], "name where to look"),
        (["submit", "portability", "--upn", "a@b.c"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2_and_send_nothing(
    api: FakeApi, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)

    assert code == 2
    assert message in err
    assert out == ""
    assert api.seen == []


def test_connection_needs_a_url_and_a_credential(
    api: FakeApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DSR_FUNCTION_KEY")
    code, _, err = run(capsys, "status", RID)
    assert (code, "give a credential" in err) == (2, True)

    monkeypatch.delenv("DSR_API_URL")
    code, _, err = run(capsys, "status", RID, "--function-key", KEY)
    assert (code, "--url or DSR_API_URL" in err) == (2, True)
    assert api.seen == []


def test_api_base_accepts_the_app_url_with_or_without_api_and_refuses_clear_text_to_other_hosts() -> None:
    assert api_base("https://app.azurewebsites.net/") == "https://app.azurewebsites.net"
    assert api_base("https://app.azurewebsites.net/api") == "https://app.azurewebsites.net"
    assert api_base("http://127.0.0.1:7071/api") == "http://127.0.0.1:7071"
    with pytest.raises(UsageError, match="https"):
        api_base("http://app.azurewebsites.net")
    with pytest.raises(UsageError):
        api_base("ftp://app")


def test_options_work_before_or_after_the_command(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.on("GET", f"/requests/{RID}", Reply(200, view("completed")))

    code, _, _ = run(capsys, "--url", "https://a.example.net", "status", RID)
    code2, _, _ = run(capsys, "status", RID, "--url", "https://b.example.net", "--function-key", "k2")

    assert (code, code2) == (0, 0)
    assert [urlsplit(s.url).netloc for s in api.seen] == ["a.example.net", "b.example.net"]
    assert [s.headers["x-functions-key"] for s in api.seen] == [KEY, "k2"]


# -- submit and decisions -------------------------------------------------------------------------------------
def test_submit_sends_the_body_and_idempotency_key_and_prints_only_the_id(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on(
        "POST", "/requests", Reply(202, view("accepted"), {"Location": "x", "Idempotent-Replayed": "true"})
    )
    ws = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w1"

    code, out, err = run(
        capsys, "submit", "erasure", "--dry-run", "--object-id", "oid-1", "--email", "a@contoso.com",
        "--workspace", ws, "--workspace", ws + "x", "--subscription", "s2",
        "--resource-group", "/subscriptions/s1/resourceGroups/rg",
        "--reference", "T-9", "--callback-url", "https://hooks.example.net/dsr", "--idempotency-key", "idem-1",
    )  # fmt: skip

    assert code == 0
    assert out == RID + "\n"
    assert "replayed" in err
    (sent,) = api.calls("POST", "/api/v1/requests")
    assert sent.body == {
        "type": "erasure",
        "subject": {"objectId": "oid-1", "email": "a@contoso.com"},
        "scope": {
            "workspaces": [ws, ws + "x"],
            "resourceGroups": ["/subscriptions/s1/resourceGroups/rg"],
            "subscriptions": ["s2"],
        },
        "dryRun": True,
        "reference": "T-9",
        "callbackUrl": "https://hooks.example.net/dsr",
    }
    assert sent.headers["Idempotency-Key"] == "idem-1"
    assert sent.headers["x-functions-key"] == KEY
    assert "Authorization" not in sent.headers


@pytest.mark.parametrize("action", ["approve", "reject", "cancel"])
def test_decisions_post_the_reason_and_report_the_new_status(
    action: str, api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    after = view({"approve": "accepted", "reject": "rejected", "cancel": "cancelled"}[action])
    after["decision"] = {
        "action": action + "d" if action != "cancel" else "cancelled",
        "by": {"name": "officer"},
    }
    api.on("POST", f"/requests/{RID}:{action}", Reply(200, after))

    code, out, _ = run(capsys, action, RID, "--reason", "ticket T-1")

    assert code == 0
    assert api.seen[0].body == {"reason": "ticket T-1"}
    assert out == f"{RID}: {after['decision']['action']} by officer; now {after['status']}\n"


def test_decision_without_reason_sends_no_body(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.on("POST", f"/requests/{RID}:approve", Reply(200, view("accepted")))

    assert run(capsys, "approve", RID)[0] == 0
    assert api.seen[0].body is None


def test_extend_and_retry_post_to_their_routes(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    extended = view(
        "running", dueAt="2026-04-10T09:00:00Z", extension={"months": 2, "reason": "many systems"}
    )
    api.on("POST", f"/requests/{RID}:extend", Reply(200, extended))
    api.on("POST", f"/requests/{RID}:retry", Reply(202, view("running")))

    code, out, _ = run(capsys, "extend", RID, "--months", "2", "--reason", "many systems")
    assert code == 0
    assert api.seen[0].body == {"months": 2, "reason": "many systems"}
    assert "now due 2026-04-10 09:00Z" in out

    code, out, _ = run(capsys, "retry", RID)
    assert code == 0
    assert api.seen[1].path == f"/api/v1/requests/{RID}:retry"
    assert out == f"{RID}: failed tasks queued again; now running\n"


# -- errors ---------------------------------------------------------------------------------------------------
def test_problem_json_is_printed_as_title_detail_and_field_errors(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    problem = {
        "type": "https://aml-dsr.invalid/problems/validation-failed",
        "title": "The request body does not validate",
        "status": 422,
        "detail": "1 field(s) failed validation",
        "errors": [{"field": "subject.objectId", "message": "String should match pattern"}],
    }
    api.on("POST", "/requests", Reply(422, problem, PROBLEM))

    code, out, err = run(capsys, "submit", "export", "--object-id", "nope", "--subscription", "s")

    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        "dsr: The request body does not validate: 1 field(s) failed validation",
        "  subject.objectId: String should match pattern",
    ]


def test_conflict_and_plain_http_errors_exit_1(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    conflict = {
        "title": "The request conflicts with the current state",
        "detail": "already extended",
        "status": 409,
    }
    api.on("POST", f"/requests/{RID}:extend", Reply(409, conflict, PROBLEM))
    api.on("GET", f"/requests/{RID}", Reply(401, None, {}))

    assert run(capsys, "extend", RID, "--months", "1", "--reason", "why not")[2].strip() == (
        "dsr: The request conflicts with the current state: already extended"
    )
    code, _, err = run(capsys, "status", RID)
    assert code == 1
    assert "HTTP 401 Unauthorized: check the function key" in err


def test_redact_removes_query_strings_from_error_text() -> None:
    text = "HTTPSConnectionPool(host='s', port=443): Max retries exceeded with url: /c/b.zip?sv=1&sig=SECRET (Caused by X)"
    assert "SECRET" not in redact(text)
    assert "/c/b.zip?..." in redact(text)


# -- Retry-After and watching ---------------------------------------------------------------------------------
def test_retry_after_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert retry_after("7", 2.0) == 7.0
    assert retry_after(None, 2.0) == 2.0
    assert retry_after("soon", 2.0) == 2.0
    assert retry_after("Thu, 01 Jan 2026 12:00:30 GMT", 2.0, now) == 30.0
    assert retry_after("Thu, 01 Jan 2026 11:00:00 GMT", 2.0, now) == 0.0
    assert retry_after("86400", 2.0) == 300.0


def test_watch_honours_retry_after_and_prints_a_line_per_family(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    done = view("completed", completedAt="2026-01-10T09:05:00Z")
    done["progress"]["runs"].update(queued=0, running=0, done=4)
    api.on(
        "GET",
        f"/requests/{RID}",
        Reply(200, view("accepted", progress={}), {"Retry-After": "3"}),
        Reply(200, view("running"), {"Retry-After": "1"}),
        Reply(200, done),
    )

    code, out, err = run(capsys, "status", RID, "--watch")

    assert code == 0
    assert api.sleeps == [3.0, 1.0]  # type: ignore[attr-defined]
    lines = err.splitlines()
    assert any(line.lstrip().startswith("Runs ") and "2/4" in line for line in lines)
    assert any(line.lstrip().startswith("Models ") and "2/2" in line for line in lines)
    assert lines[-2].startswith("completed ")  # then only what changed: Runs finished, Models as it was
    assert lines[-1].lstrip().startswith("Runs ")
    assert "4/4" in lines[-1]
    assert "\r" not in err  # not a terminal: plain lines
    assert "\nstatus        completed\n" in out


def test_watch_ending_other_than_completed_exits_3(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    errors = [{"task": "t1", "family": "runs", "reason": "403 from the workspace"}]
    api.on("GET", f"/requests/{RID}", Reply(200, view("completed_with_errors", errors=errors)))

    code, out, err = run(capsys, "status", RID, "--watch", "--json")

    assert code == 3
    assert json.loads(out)["errors"] == errors
    assert "ended completed_with_errors" in err


def test_get_is_retried_on_503_with_its_retry_after(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.on(
        "GET",
        f"/requests/{RID}",
        Reply(503, {"title": "Unavailable", "detail": "storage"}, {**PROBLEM, "Retry-After": "4"}),
        Reply(200, view("completed")),
    )

    code, _, _ = run(capsys, "status", RID)

    assert code == 0
    assert api.sleeps == [4.0]  # type: ignore[attr-defined]
    assert len(api.seen) == 2


def test_post_is_never_retried(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.on(
        "POST",
        f"/requests/{RID}:retry",
        Reply(503, {"title": "Unavailable"}, {**PROBLEM, "Retry-After": "1"}),
    )

    assert run(capsys, "retry", RID)[0] == 1
    assert len(api.seen) == 1


def test_watch_gives_up_after_its_timeout(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.on(
        "GET", f"/requests/{RID}", Reply(200, view("awaiting_approval", progress={}), {"Retry-After": "1"})
    )
    ticks = iter(range(0, 1000, 10))
    client = ApiClient(BASE, function_key=KEY, sleep=lambda _s: None)

    with pytest.raises(CliError, match="still awaiting_approval after 25s"):
        cli.watch(client, RID, Board(io.StringIO(), tty=False), timeout=25, clock=lambda: next(ticks))


# -- progress bars --------------------------------------------------------------------------------------------
def test_bar_fills_in_proportion() -> None:
    assert bar(0, 4, width=8) == "[--------]"
    assert bar(1, 4, width=8) == "[##------]"
    assert bar(4, 4, width=8) == "[########]"
    assert bar(3, 0, width=4) == "[----]"


def test_family_lines_total_the_families() -> None:
    lines = family_lines(view("running"))

    assert lines[0].startswith("running")
    assert lines[0].split()[2:] == ["4/6", "tasks", "10", "records", "kept", "13", "calls"]
    runs = next(line for line in lines if "Runs" in line)
    assert "kept     7 of    20 seen" in runs
    assert runs.endswith("(1 running, 1 queued)")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_board_redraws_in_place_on_a_terminal() -> None:
    stream = Tty()
    board = Board(stream)

    board.update(["a 1", "b 1"])
    board.update(["a 2", "b 2"])
    board.close()

    assert stream.getvalue() == "\ra 1\x1b[K\nb 1\x1b[K" + "\x1b[1A\ra 2\x1b[K\nb 2\x1b[K" + "\n"


def test_board_prints_only_changed_lines_elsewhere() -> None:
    stream = io.StringIO()
    board = Board(stream)

    board.update(["status running", "  Runs 1/4"])
    board.update(["status running", "  Runs 2/4"])
    board.update(["status running", "  Runs 2/4"])

    board.update(["status running 2", "  Models 0/1", "  Runs 2/4"])  # a family appears before another

    assert stream.getvalue().splitlines() == [
        "status running",
        "  Runs 1/4",
        "  Runs 2/4",
        "status running 2",
        "  Models 0/1",
    ]


def test_byte_progress_prints_each_tenth_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = ByteProgress(Board(stream), "package.zip", 1000)

    for _ in range(100):
        progress.advance(10)
    progress.finish()

    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # the start, then 10% .. 100% each once
    assert lines[-1] == "package.zip [####################] 1000 B of 1000 B 100%"


def test_byte_progress_on_a_terminal_is_throttled_and_ends_with_a_newline() -> None:
    stream = Tty()
    clock = iter([0.0, 0.01, 0.02, 0.5, 0.51])
    progress = ByteProgress(Board(stream), "package.zip", 500, clock=lambda: next(clock))

    for _ in range(5):
        progress.advance(100)
    progress.finish()

    text = stream.getvalue()
    assert text.count("\r") == 3  # at 0.0 and 0.5, then the final draw
    assert text.endswith("100%\x1b[K\n")


# -- status text and list table -------------------------------------------------------------------------------
def test_status_text_shows_deadline_extension_decision_package_and_errors() -> None:
    lines = status_text(
        view(
            "completed_with_errors",
            deadline={"state": "near_due", "extension": {"months": 1, "reason": "volume"}},
            decision={
                "action": "approved",
                "by": {"name": "dpo@contoso.com", "source": "easyauth"},
                "at": "2026-01-10T10:00:00Z",
                "reason": "ok",
            },
            links={"package": f"{BASE}/api/v1/requests/{RID}/package"},
            packageExpiresAt="2026-02-11T09:00:00Z",
            callback={
                "url": "https://hooks.example.net/dsr",
                "deliveries": [
                    {"event": "completed", "status": "delivered", "attempts": 1, "lastStatus": 200}
                ],
            },
            errors=[{"family": "runs", "task": "t1", "reason": "403"}],
        )
    )
    text = "\n".join(lines)

    assert "due           2026-02-10 09:00Z  near due  (extended by 1 month(s): volume)" in text
    assert "approved by dpo@contoso.com (easyauth) at 2026-01-10 10:00Z: ok" in text
    assert f"package       dsr download {RID}, until 2026-02-11 09:00Z" in text
    assert (
        "callback      https://hooks.example.net/dsr: 1 delivery; last: event completed, status delivered, "
        "attempts 1, lastStatus 200"
    ) in text
    assert "  - runs t1: 403" in text


def test_overdue_is_the_apis_flag_or_computed_for_open_requests() -> None:
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert is_overdue({"overdue": False, "status": "running", "dueAt": "2026-02-01T00:00:00Z"}, now) is False
    assert is_overdue({"status": "running", "dueAt": "2026-02-01T00:00:00Z"}, now) is True
    assert is_overdue({"status": "completed", "dueAt": "2026-02-01T00:00:00Z"}, now) is False
    assert (
        is_overdue({"status": "running", "deadline": {"state": "overdue"}, "dueAt": "2099-01-01"}, now)
        is True
    )


def test_table_aligns_columns() -> None:
    lines = table(
        [
            {**summary(RID, "running"), "overdue": True, "reference": "T-1"},
            {"id": OTHER, "type": "erasure", "dryRun": True, "status": "completed", "source": "offboarding"},
        ]
    )

    assert lines[0].split() == ["ID", "TYPE", "STATUS", "RECEIVED", "DUE", "OVERDUE", "SOURCE", "REFERENCE"]
    assert lines[1].split() == [
        RID,
        "export",
        "running",
        "2026-01-10",
        "09:00Z",
        "2026-02-10",
        "09:00Z",
        "yes",
        "api",
        "T-1",
    ]
    assert lines[2].split() == [OTHER, "erasure", "(dry", "run)", "completed", "offboarding"]
    assert lines[0].index("STATUS") == lines[1].index("running") == lines[2].index("completed")


# -- list -----------------------------------------------------------------------------------------------------
def summary(rid: str, status: str = "running") -> dict[str, Any]:
    return {
        "id": rid,
        "type": "export",
        "status": status,
        "receivedAt": "2026-01-10T09:00:00Z",
        "dueAt": "2026-02-10T09:00:00Z",
        "overdue": False,
        "source": "api",
        "reference": None,
    }


def test_list_sends_the_filters_and_follows_next_link_with_all(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on(
        "GET",
        "/requests",
        lambda seen: (
            Reply(
                200,
                {
                    "value": [summary(RID)],
                    "nextLink": f"{BASE}/api/v1/requests?continuationToken=abc&pageSize=1",
                },
            )
            if "continuationToken" not in seen.query
            else Reply(200, {"value": [summary(OTHER)], "nextLink": None})
        ),
    )

    code, out, err = run(
        capsys,
        "list",
        "--status",
        "running",
        "--status",
        "accepted",
        "--overdue",
        "--due-before",
        "2026-03-01",
        "--page-size",
        "1",
        "--all",
    )

    assert code == 0
    assert api.seen[0].query == {
        "status": ["running,accepted"],
        "overdue": ["true"],
        "dueBefore": ["2026-03-01"],
        "pageSize": ["1"],
    }
    assert api.seen[1].query == {"continuationToken": ["abc"], "pageSize": ["1"]}
    assert [line.split()[0] for line in out.splitlines()] == ["ID", RID, OTHER]
    assert err == ""


def test_list_without_all_shows_one_page_and_says_there_is_more(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on(
        "GET",
        "/requests",
        Reply(200, {"value": [summary(RID)], "nextLink": f"{BASE}/api/v1/requests?continuationToken=abc"}),
    )

    code, out, err = run(capsys, "list")

    assert (code, len(api.seen), len(out.splitlines())) == (0, 1, 2)
    assert "--all" in err


def test_list_refuses_a_next_link_to_another_host(api: FakeApi, capsys: pytest.CaptureFixture[str]) -> None:
    api.on(
        "GET",
        "/requests",
        Reply(200, {"value": [summary(RID)], "nextLink": "https://evil.example.com/api/v1/requests?x=1"}),
    )

    code, _, err = run(capsys, "list", "--all")

    assert code == 1
    assert "another host (evil.example.com)" in err
    assert all(urlsplit(s.url).netloc == "dsr.example.net" for s in api.seen)


def test_list_of_one_person_uses_search_and_filters_here(
    api: FakeApi, capsys: pytest.CaptureFixture[str]
) -> None:
    api.on(
        "POST",
        "/requests:search",
        Reply(200, {"value": [summary(RID, "running"), summary(OTHER, "completed")]}),
    )

    code, out, _ = run(
        capsys, "list", "--subject-upn", "alice@contoso.com", "--status", "completed", "--json"
    )

    assert code == 0
    assert api.seen[0].body == {"subjectUserPrincipalName": "alice@contoso.com"}
    assert "alice" not in api.seen[0].url  # the identifier stays out of the URL
    assert [item["id"] for item in json.loads(out)] == [OTHER]


# -- download and verification --------------------------------------------------------------------------------
def package_zip(
    rid: str = RID,
    tamper: str | None = None,
    drop: str | None = None,
    erasure: bool = False,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    files = {
        "s1/rg/w1/runs.jsonl": b'{"endpoint": "E5", "record": {"runId": "r1"}}\n',
        "s1/rg/w1/experiments/e1/metrics.jsonl": b'{"endpoint": "E8", "record": {"id": "m1"}}\n',
    }
    record = b'{"items": []}'
    manifest: dict[str, Any] = {
        "request": {"id": rid},
        "files": [
            {"path": f"{rid}/{name}", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in files.items()
        ],
        "erasureRecord": {
            "path": f"{rid}/erasure-record.json",
            "bytes": len(record),
            "sha256": hashlib.sha256(record).hexdigest(),
        }
        if erasure
        else None,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        archive.writestr("index.html", "<html></html>")
        archive.writestr("manifest.json", json.dumps(manifest))
        if erasure:
            archive.writestr(
                "erasure-record.json", record if tamper != "erasure-record.json" else b'{"items": [1]}'
            )
        for name, data in files.items():
            if name != drop:
                archive.writestr(name, data + b"x" if name == tamper else data)
    return buffer.getvalue()


def serve_package(api: FakeApi, data: bytes, location: str = SAS) -> None:
    api.on(
        "GET",
        f"/requests/{RID}/package",
        Reply(302, None, {"Location": location, "Cache-Control": "no-store"}),
    )
    api.on(
        "GET",
        location,
        Reply(200, None, {"Content-Length": str(len(data)), "Content-Type": "application/zip"}, raw=data),
    )


def test_download_fetches_the_link_without_api_credentials_and_verifies_it(
    api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSR_API_SCOPE", "api://dsr/.default")
    monkeypatch.setattr(EntraToken, "__call__", lambda self: "TOKEN")
    data = package_zip(erasure=True)
    serve_package(api, data)

    code, out, err = run(capsys, "download", RID, "-o", str(tmp_path / "out"))

    assert code == 0, err
    api_call, blob_call = api.seen
    assert api_call.headers["x-functions-key"] == KEY
    assert api_call.headers["Authorization"] == "Bearer TOKEN"
    assert {k.lower() for k in blob_call.headers} & {"x-functions-key", "authorization"} == set()
    assert (tmp_path / "out" / f"{RID}.zip").read_bytes() == data
    assert not list((tmp_path / "out").glob("*.part"))
    assert "verified: all 3 files match" in out
    assert "not checked): index.html" in out
    assert "SECRETSIG" not in out + err
    assert err.splitlines()[-1].endswith("100%")


@pytest.mark.parametrize(
    ("tamper", "drop", "expected"),
    [
        ("s1/rg/w1/runs.jsonl", None, "MISMATCH s1/rg/w1/runs.jsonl: sha-256"),
        (
            None,
            "s1/rg/w1/experiments/e1/metrics.jsonl",
            "metrics.jsonl: listed in the manifest, missing from the zip",
        ),
        ("erasure-record.json", None, "MISMATCH erasure-record.json: sha-256"),
    ],
)
def test_download_of_a_tampered_package_exits_4(
    tamper: str | None,
    drop: str | None,
    expected: str,
    api: FakeApi,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    serve_package(api, package_zip(tamper=tamper, drop=drop, erasure=True))

    code, out, _ = run(capsys, "download", RID, "-o", str(tmp_path))

    assert code == 4
    assert expected in out
    assert "verification FAILED: 1 of 3 checks" in out


def test_download_refuses_a_clear_text_link_and_hides_the_sas_on_errors(
    api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    serve_package(api, b"", location="http://store.example.net/c/p.zip?sig=SECRETSIG")
    code, _, err = run(capsys, "download", RID, "-o", str(tmp_path))
    assert (code, "not https" in err, "SECRETSIG" in err) == (1, True, False)

    api.on("GET", f"/requests/{RID}/package", Reply(302, None, {"Location": SAS}))
    api.on("GET", SAS, Reply(403, None, {"x-ms-error-code": "AuthenticationFailed"}, raw=b"<Error/>"))
    code, _, err = run(capsys, "download", RID, "-o", str(tmp_path))
    assert code == 1
    assert err.strip() == "dsr: the package link answered 403 AuthenticationFailed"
    assert list(tmp_path.iterdir()) == []


def test_download_of_a_package_not_written_yet_prints_the_problem(
    api: FakeApi, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    problem = {
        "title": "The request conflicts with the current state",
        "detail": "the request is running: its package is not written yet",
    }
    api.on("GET", f"/requests/{RID}/package", Reply(409, problem, PROBLEM))

    code, _, err = run(capsys, "download", RID, "-o", str(tmp_path))

    assert code == 1
    assert (
        err
        == "dsr: The request conflicts with the current state: the request is running: its package is not written yet\n"
    )


def test_verify_names_the_wrong_request_and_a_file_that_is_not_a_zip(tmp_path: Path) -> None:
    other = tmp_path / "other.zip"
    other.write_bytes(package_zip(rid=OTHER))
    result = verify_package(other, RID)
    assert not result.ok
    assert result.failures == [f"manifest.json: it is the manifest of request {OTHER}"]

    junk = tmp_path / "junk.zip"
    junk.write_bytes(b'{"files": []}')
    result = verify_package(junk, RID)
    assert not result.ok
    assert result.failures[0].startswith("junk.zip: not a readable zip")


def test_verify_reports_a_corrupted_entry_and_checks_the_rest(tmp_path: Path) -> None:
    # Given a zip whose runs.jsonl bytes were flipped on disk (stored, not deflated, so the flip is exact)
    data = bytearray(package_zip(compression=zipfile.ZIP_STORED))
    at = data.index(b'{"endpoint": "E5"')
    data[at + 2] ^= 0x20
    path = tmp_path / "bad.zip"
    path.write_bytes(bytes(data))

    result = verify_package(path, RID)

    # Then that entry fails its CRC (or hash) check and the other one is still verified
    assert not result.ok
    assert len(result.failures) == 1
    assert result.failures[0].startswith("s1/rg/w1/runs.jsonl: ")
    assert result.matched == ["s1/rg/w1/experiments/e1/metrics.jsonl"]


# -- Entra tokens ---------------------------------------------------------------------------------------------
class FakeCredential:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str) -> Any:
        self.calls.append(scopes)

        @dataclass
        class Access:
            token: str
            expires_on: int

        return Access(f"t{len(self.calls)}", 1000 + 3600 * len(self.calls))


def test_entra_token_is_cached_until_five_minutes_before_expiry() -> None:
    credential = FakeCredential()
    now = [1000.0]
    token = EntraToken("api://dsr/.default", credential, clock=lambda: now[0])

    first = token()
    now[0] = 1000 + 3600 - 301
    second = token()
    now[0] = 1000 + 3600 - 299
    third = token()

    assert (first, second, third) == ("t1", "t1", "t2")
    assert credential.calls == [("api://dsr/.default",), ("api://dsr/.default",)]


def test_api_error_from_a_non_json_body_keeps_a_short_text() -> None:
    response = requests.Response()
    response.status_code, response.reason = 502, "Bad Gateway"
    response.headers = CaseInsensitiveDict({"Content-Type": "text/html"})
    response._content = b"<html>  upstream   down </html>" * 20

    error = ApiError.from_response(response)

    assert str(error).startswith("HTTP 502 Bad Gateway: <html> upstream down </html>")
    assert len(error.detail or "") == 200
