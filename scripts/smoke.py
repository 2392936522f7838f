"""Post-deployment smoke test of the HTTP API: health, then a dry-run export of one workspace.

    python scripts/smoke.py --base-url https://<app>.azurewebsites.net \\
        --function-key "$DSR_FUNCTION_KEY" --workspace-id /subscriptions/.../workspaces/<name>

1. health: GET /api/v1/requests/<random uuid> with the function key answers 404 problem+json (the app
   started, read its settings, reached Table storage through the private endpoint, and routed the request);
2. with --expect-entra: the same request without a bearer token answers 401 (App Service Authentication is
   in front of the app);
3. dry run: POST /api/v1/requests, an export with "dryRun": true for a subject nobody is (a random object
   id) scoped to the one workspace, answers 202; its status is polled until it is terminal and must end
   "completed": every family of the workspace was listed with the app's identity, so the custom role and
   the network path to Azure ML work. A dry run writes no export package.

Prints each step; exits 0 when all pass, 1 on the first failure. Uses only requests and the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import requests

TERMINAL = frozenset({"completed", "completed_with_errors", "failed", "rejected", "cancelled"})
API = "/api/v1/requests"


class SmokeFailure(Exception):
    """A step did not answer as expected."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base-url", required=True, help="https://<function app>.azurewebsites.net")
    parser.add_argument(
        "--function-key",
        default=os.environ.get("DSR_FUNCTION_KEY", ""),
        help="function (or host) key; default: env DSR_FUNCTION_KEY",
    )
    parser.add_argument(
        "--access-token",
        default=os.environ.get("DSR_API_ACCESS_TOKEN", ""),
        help="Entra bearer token for the API when App Service Authentication is on; default: env DSR_API_ACCESS_TOKEN",
    )
    parser.add_argument("--workspace-id", required=True, help="ARM id of one Azure ML workspace in scope")
    parser.add_argument(
        "--expect-entra", action="store_true", help="check that a request without a token gets 401"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the dry run (900)")
    parser.add_argument(
        "--poll-interval", type=float, default=10.0, help="seconds between polls without Retry-After"
    )
    args = parser.parse_args(argv)
    if not args.function_key:
        parser.error("a function key is required: --function-key or env DSR_FUNCTION_KEY")
    if (
        not args.workspace_id.lower().startswith("/subscriptions/")
        or "/workspaces/" not in args.workspace_id.lower()
    ):
        parser.error(
            "--workspace-id must be an Azure ML workspace ARM id (/subscriptions/.../workspaces/<name>)"
        )
    args.base_url = args.base_url.rstrip("/")
    return args


class Smoke:
    def __init__(
        self,
        args: argparse.Namespace,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        out: Callable[[str], None] = print,
    ) -> None:
        self.args = args
        self.http = session or requests.Session()
        self.sleep = sleep
        self.clock = clock
        self.out = out

    def headers(self, *, token: bool = True) -> dict[str, str]:
        headers = {"x-functions-key": self.args.function_key, "Accept": "application/json"}
        if token and self.args.access_token:
            headers["Authorization"] = f"Bearer {self.args.access_token}"
        return headers

    def step(self, text: str) -> None:
        self.out(f"- {text}")

    def health(self) -> None:
        url = f"{self.args.base_url}{API}/{uuid.uuid4()}"
        self.step(f"health: GET {url}")
        answer = self.http.get(url, headers=self.headers(), timeout=60)
        kind = answer.headers.get("Content-Type", "")
        if answer.status_code != 404 or not kind.startswith("application/problem+json"):
            raise SmokeFailure(
                f"expected 404 problem+json, got {answer.status_code} {kind}: {answer.text[:300]}"
            )
        self.out("  ok: 404 problem+json (unknown request)")

    def entra_required(self) -> None:
        url = f"{self.args.base_url}{API}/{uuid.uuid4()}"
        self.step("Entra: the same request without a bearer token")
        answer = self.http.get(url, headers=self.headers(token=False), timeout=60)
        if answer.status_code != 401:
            raise SmokeFailure(
                f"expected 401 without a token, got {answer.status_code}: Easy Auth is not enforcing"
            )
        self.out("  ok: 401")

    def dry_run(self) -> dict[str, Any]:
        body = {
            "type": "export",
            "dryRun": True,
            "subject": {"objectId": str(uuid.uuid4())},
            "scope": {"workspaces": [self.args.workspace_id]},
            "reference": f"smoke-{int(time.time())}",
        }
        self.step(f"dry run: POST {self.args.base_url}{API} (export, dryRun, one workspace)")
        headers = {**self.headers(), "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        answer = self.http.post(
            f"{self.args.base_url}{API}", data=json.dumps(body), headers=headers, timeout=60
        )
        location = answer.headers.get("Location", "")
        if answer.status_code != 202 or not location:
            raise SmokeFailure(f"expected 202 with Location, got {answer.status_code}: {answer.text[:300]}")
        self.out(f"  ok: 202, {location}")
        return self.poll(location, self.retry_after(answer))

    def retry_after(self, answer: requests.Response) -> float:
        try:
            return max(1.0, float(answer.headers.get("Retry-After", "")))
        except ValueError:
            return self.args.poll_interval

    def poll(self, location: str, wait: float) -> dict[str, Any]:
        deadline = self.clock() + self.args.timeout
        while True:
            self.sleep(wait)
            answer = self.http.get(location, headers=self.headers(), timeout=60)
            if answer.status_code != 200:
                raise SmokeFailure(f"status: expected 200, got {answer.status_code}: {answer.text[:300]}")
            view = answer.json()
            status = view.get("status")
            self.out(f"  status: {status}")
            if status in TERMINAL:
                if status != "completed":
                    raise SmokeFailure(
                        f"the dry run ended {status}: {json.dumps(view.get('errors', view))[:800]}"
                    )
                return view
            if self.clock() > deadline:
                raise SmokeFailure(f"no terminal status after {self.args.timeout:.0f} s (last: {status})")
            wait = self.retry_after(answer)

    def run(self) -> None:
        self.health()
        if self.args.expect_entra:
            self.entra_required()
        self.dry_run()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        Smoke(args).run()
    except (SmokeFailure, requests.RequestException) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
