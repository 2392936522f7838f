"""`python -m devtools.funchost` in a subprocess: the ready line, HTTP, a queue message, SIGTERM."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests
from azure.storage.queue import QueueClient

from devtools import processes
from tests.conftest import ROOT
from tests.devtools.funchost.conftest import APP_REF, HOST_JSON, HOST_KEY, wait_for

CLI = [sys.executable, "-m", "devtools.funchost"]


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            return proc.stdout.readline().decode()
        if proc.poll() is not None:
            break
    raise AssertionError(f"no ready line from the host (exit code {proc.poll()})")


def test_cli_serves_until_sigterm(storage_env: dict[str, str], sender: QueueClient, tmp_path: Path) -> None:
    log_path = tmp_path / "host.log"
    with log_path.open("wb") as log:
        proc = processes.spawn(
            [
                *CLI,
                "--app",
                APP_REF,
                "--root",
                str(ROOT),
                "--host-json",
                str(HOST_JSON),
                "--port",
                "0",
                "--no-timers",
            ],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            ready = json.loads(read_line(proc, timeout=30))
            functions = {f["name"]: f for f in ready["functions"]}
            assert functions["work"] == {
                "name": "work",
                "trigger": "queueTrigger",
                "queue": storage_env["FUNCHOST_SAMPLE_QUEUE"],
                "connection": "AzureWebJobsStorage",
            }
            assert functions["approve"]["route"] == "api/requests/{rid:guid}:approve"
            assert functions["tick"]["schedule"] == "0 0 0 1 1 *"

            url = ready["http_url"]
            response = requests.get(
                f"{url}/api/secure/ping", headers={"x-functions-key": HOST_KEY}, timeout=10
            )
            assert (response.status_code, response.text) == (200, "pong")

            body = f"via cli {uuid.uuid4()}"
            sender.send_message(body)
            line = wait_for(
                lambda: _line_with(log_path, f"work got {body}"), timeout=15, what="the queue function"
            )
            wait_for(lambda: sender.get_queue_properties().approximate_message_count == 0, what="the message")

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            processes.stop(proc)
    # a log line written by the function carries the function name and the invocation id
    tag = re.search(r"\[work ([0-9a-f-]{36})\] work got ", line)
    assert tag, line
    text = log_path.read_text()
    assert f"Executed 'Functions.work' (Succeeded, Id={tag.group(1)}" in text
    assert "Host stopped" in text


def _line_with(log_path: Path, needle: str) -> str:
    return next((line for line in log_path.read_text(errors="replace").splitlines() if needle in line), "")
