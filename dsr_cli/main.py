"""`dsr`: submit, watch, decide, extend, list and download data subject requests through the HTTP API.

    dsr submit export --object-id <guid> --subscription <sub>      prints the request id
    dsr status <id> --watch                                        live progress per endpoint family
    dsr download <id> -o out/                                      package.zip, every sha-256 checked
    dsr verify <id>.zip --key signing-key.json                     offline: checksums, signatures, chain head

Connection: --url or DSR_API_URL (https://<app>.azurewebsites.net); --function-key or DSR_FUNCTION_KEY (sent
as x-functions-key) and/or --entra-scope or DSR_API_SCOPE (an Entra ID token from DefaultAzureCredential);
`verify` needs neither (it reads only the zip and the key file).
Exit codes: 0 done, 1 an API or network error, 2 a usage error, 3 a watched request ended other than
`completed`, 4 a package does not match its manifest or its signatures do not hold.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from dsr_cli import arguments, render
from dsr_cli.arguments import ENV_KEY, ENV_SCOPE, ENV_URL
from dsr_cli.client import (
    LOOPBACK_HOSTS,
    USER_AGENT,
    ApiClient,
    CliError,
    EntraToken,
    UsageError,
    redact,
    retry_after_seconds,
)
from dsr_cli.progress import Board, ByteProgress, family_lines
from dsr_cli.verify import load_public_key, verify_package

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNFINISHED, EXIT_MISMATCH = 0, 1, 2, 3, 4
DEFAULT_POLL_SECONDS = 2.0
MIN_POLL_SECONDS = 0.25
DOWNLOAD_CHUNK = 256 * 1024


def build_parser() -> argparse.ArgumentParser:
    return arguments.build_parser(
        {
            "submit": cmd_submit,
            "status": cmd_status,
            "approve": cmd_decide,
            "reject": cmd_decide,
            "cancel": cmd_decide,
            "retry": cmd_retry,
            "extend": cmd_extend,
            "list": cmd_list,
            "download": cmd_download,
            "verify": cmd_verify,
        }
    )


def client_from(args: argparse.Namespace) -> ApiClient:
    url = getattr(args, "url", None) or os.environ.get(ENV_URL)
    if not url:
        raise UsageError(f"give the API's address: --url or {ENV_URL}")
    key = getattr(args, "function_key", None) or os.environ.get(ENV_KEY) or None
    scope = getattr(args, "entra_scope", None) or os.environ.get(ENV_SCOPE) or None
    if not key and not scope:
        raise UsageError(f"give a credential: --function-key ({ENV_KEY}) and/or --entra-scope ({ENV_SCOPE})")
    return ApiClient(url, function_key=key, token=EntraToken(scope) if scope else None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        client = None if getattr(args, "offline", False) else client_from(args)
        code: int = args.handler(client, args)
        return code
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"dsr: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        first, *more = exc.lines()
        print("\n".join([f"dsr: {first}", *more]), file=sys.stderr)
        return EXIT_ERROR
    except requests.RequestException as exc:
        print(f"dsr: {redact(str(exc))[:300]}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("dsr: interrupted", file=sys.stderr)
        return 130


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _path(request: str, action: str = "") -> str:
    return f"/requests/{request}{action}"


# -- commands -------------------------------------------------------------------------------------------------
def submit_body(args: argparse.Namespace) -> dict[str, Any]:
    subject = {
        key: value
        for key, value in (
            ("objectId", args.object_id),
            ("userPrincipalName", args.upn),
            ("email", args.email),
        )
        if value
    }
    scope = {
        key: list(value)
        for key, value in (
            ("workspaces", args.workspace),
            ("resourceGroups", args.resource_group),
            ("subscriptions", args.subscription),
        )
        if value
    }
    if not subject:
        raise UsageError("name the person: --object-id, --upn and/or --email")
    if not scope:
        raise UsageError("name where to look: --workspace, --resource-group and/or --subscription")
    body: dict[str, Any] = {"type": args.type, "subject": subject, "scope": scope}
    if args.dry_run:
        body["dryRun"] = True
    if args.reference:
        body["reference"] = args.reference
    if args.callback_url:
        body["callbackUrl"] = args.callback_url
    return body


def cmd_submit(client: ApiClient, args: argparse.Namespace) -> int:
    body = submit_body(args)
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    response = client.post_json("/requests", body, headers)
    view = response.json()
    if args.json:
        _print_json(view)
    else:
        print(view["id"])
    note = " (replayed: the request first submitted with this idempotency key)"
    replayed = note if response.headers.get("Idempotent-Replayed") == "true" else ""
    print(
        f"{view.get('type')} request {view['id']}: {view.get('status')}, due {render.when(view.get('dueAt'))}"
        + replayed,
        file=sys.stderr,
    )
    if view.get("status") == "awaiting_approval":
        print(f"it waits for approval: dsr approve {view['id']} --reason ...", file=sys.stderr)
    return EXIT_OK


def watch(
    client: ApiClient,
    request: str,
    board: Board,
    timeout: float = 0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll the status until it ends, drawing the progress on `board`; waits as each answer's Retry-After
    says."""
    deadline = clock() + timeout if timeout > 0 else None
    try:
        while True:
            response = client.call("GET", _path(request))
            view: dict[str, Any] = response.json()
            board.update(family_lines(view))
            if view.get("status") in render.TERMINAL:
                return view
            if deadline is not None and clock() > deadline:
                raise CliError(f"request {request} is still {view.get('status')} after {timeout:g}s")
            wait = retry_after_seconds(response.headers.get("Retry-After"), DEFAULT_POLL_SECONDS)
            client.sleep(max(MIN_POLL_SECONDS, wait))
    finally:
        board.close()


def cmd_status(client: ApiClient, args: argparse.Namespace) -> int:
    watching = args.watch
    view = (
        watch(client, args.id, Board(sys.stderr), args.timeout)
        if watching
        else client.get_json(_path(args.id))
    )
    if args.json:
        _print_json(view)
    else:
        print("\n".join(render.status_text(view)))
    if args.watch and view.get("status") != "completed":
        print(f"dsr: request {args.id} ended {view.get('status')}", file=sys.stderr)
        return EXIT_UNFINISHED
    return EXIT_OK


def _show(args: argparse.Namespace, view: dict[str, Any], line: str) -> int:
    if args.json:
        _print_json(view)
    else:
        print(line)
    return EXIT_OK


def cmd_decide(client: ApiClient, args: argparse.Namespace) -> int:
    body = {"reason": args.reason} if args.reason else None
    view = client.post_json(_path(args.id, f":{args.command}"), body).json()
    decision = view.get("decision") or {}
    by = (decision.get("by") or {}).get("name") or "?"
    return _show(
        args, view, f"{view['id']}: {decision.get('action', args.command)} by {by}; now {view['status']}"
    )


def cmd_retry(client: ApiClient, args: argparse.Namespace) -> int:
    view = client.post_json(_path(args.id, ":retry")).json()
    return _show(args, view, f"{view['id']}: failed tasks queued again; now {view['status']}")


def cmd_extend(client: ApiClient, args: argparse.Namespace) -> int:
    view = client.post_json(_path(args.id, ":extend"), {"months": args.months, "reason": args.reason}).json()
    line = (
        f"{view['id']}: deadline extended by {args.months} month(s); now due {render.when(view.get('dueAt'))}"
    )
    return _show(args, view, line)


SUBJECT_FLAGS = (
    ("subject_object_id", "subjectObjectId"),
    ("subject_upn", "subjectUserPrincipalName"),
    ("subject_email", "subjectEmail"),
)


def list_requests(client: ApiClient, args: argparse.Namespace) -> tuple[list[dict[str, Any]], bool]:
    """(requests, more pages left). One person's requests come through POST :search (the identifier stays out
    of URLs and logs) and are filtered here; the operators' list is filtered and paged by the API."""
    person = [(field, getattr(args, attr)) for attr, field in SUBJECT_FLAGS if getattr(args, attr)]
    if person:
        found: list[dict[str, Any]] = client.post_json("/requests:search", dict(person)).json()["value"]
        before = render.parse_instant(args.due_before) if args.due_before else None
        return [
            item
            for item in found
            if (not args.status or item.get("status") in args.status)
            and (not args.overdue or render.is_overdue(item))
            and (before is None or (item.get("dueAt") and render.parse_instant(item["dueAt"]) < before))
        ], False
    params: dict[str, str] = {}
    if args.status:
        params["status"] = ",".join(args.status)
    if args.overdue:
        params["overdue"] = "true"
    if args.due_before:
        params["dueBefore"] = args.due_before
    if args.page_size:
        params["pageSize"] = str(args.page_size)
    page = client.get_json("/requests", params)
    items = list(page.get("value") or [])
    while page.get("nextLink") and args.all:
        page = client.get_json(client.same_origin(page["nextLink"]))
        items += page.get("value") or []
    return items, bool(page.get("nextLink"))


def cmd_list(client: ApiClient, args: argparse.Namespace) -> int:
    items, more = list_requests(client, args)
    if args.json:
        _print_json(items)
    elif items:
        print("\n".join(render.table(items)))
    else:
        print("no requests match", file=sys.stderr)
    if more:
        print("dsr: more requests on further pages: add --all to list them all", file=sys.stderr)
    return EXIT_OK


class _NoAuth(requests.auth.AuthBase):
    """The package link carries its own read-only SAS: nothing else goes with it (no netrc either)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


def package_link(client: ApiClient, request: str) -> str:
    """The short-lived SAS link `GET .../package` redirects to, read from Location (never followed with the
    API's headers)."""
    response = client.call("GET", _path(request, "/package"), ok=(301, 302, 303, 307, 308))
    location = response.headers.get("Location")
    if not location:
        raise CliError("the package route answered a redirect without a Location")
    parts = urlsplit(location)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        raise CliError("the package link is not https: not fetched")
    return location


def fetch(link: str, target: Path, board: Board, timeout: tuple[float, float] = (10.0, 60.0)) -> int:
    """Stream the link to `target` (through `<target>.part`, renamed when complete); returns its size."""
    partial = target.with_name(target.name + ".part")
    with requests.Session() as session:
        response = session.get(
            link,
            stream=True,
            timeout=timeout,
            allow_redirects=False,
            auth=_NoAuth(),
            headers={"User-Agent": USER_AGENT},
        )
        with response:
            if response.status_code != 200:
                code = response.headers.get("x-ms-error-code", "")
                raise CliError(f"the package link answered {response.status_code} {code}".rstrip())
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            progress = ByteProgress(board, "package.zip", total)
            try:
                with partial.open("wb") as out:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK):
                        out.write(chunk)
                        progress.advance(len(chunk))
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            finally:
                progress.finish()
    if total is not None and progress.done != total:
        partial.unlink(missing_ok=True)
        raise CliError(f"the download stopped at {progress.done} of {total} bytes; try again")
    partial.replace(target)
    return progress.done


def cmd_download(client: ApiClient, args: argparse.Namespace) -> int:
    link = package_link(client, args.id)
    directory = Path(args.output)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{args.id}.zip"
    size = fetch(link, target, Board(sys.stderr))
    print(f"saved {target} ({size} bytes)")
    result = verify_package(target, args.id)
    print("\n".join(result.summary()))
    return EXIT_OK if result.ok else EXIT_MISMATCH


def cmd_verify(_client: ApiClient | None, args: argparse.Namespace) -> int:
    """Offline: no API call. Exit 0 only when every file matches, every document is signed and its signature
    holds with the key."""
    key = None
    if args.key is not None:
        try:
            key = load_public_key(args.key)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--key: {exc}") from exc
    if not args.package.is_file():
        raise UsageError(f"no such file: {args.package}")
    result = verify_package(args.package, args.id, public_key=key, require_signature=True)
    print("\n".join(result.summary()))
    return EXIT_OK if result.ok else EXIT_MISMATCH


if __name__ == "__main__":
    sys.exit(main())
