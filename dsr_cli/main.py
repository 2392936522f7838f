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
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from dsr_cli import render
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
ENV_URL, ENV_KEY, ENV_SCOPE = "DSR_API_URL", "DSR_FUNCTION_KEY", "DSR_API_SCOPE"
STATUSES = (
    "scheduled",
    "awaiting_approval",
    "accepted",
    "running",
    "completed",
    "completed_with_errors",
    "failed",
    "rejected",
    "cancelled",
)
REQUEST_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DEFAULT_POLL_SECONDS = 2.0
MIN_POLL_SECONDS = 0.25
MAX_PAGE_SIZE = 200
DOWNLOAD_CHUNK = 256 * 1024


# -- arguments ------------------------------------------------------------------------------------------------
def request_id(value: str) -> str:
    value = value.strip().lower()
    if not REQUEST_ID.match(value):
        raise argparse.ArgumentTypeError(f"{value[:64]!r} is not a request id (a UUID)")
    return value


def page_size(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(value)


def instant(value: str) -> str:
    try:
        render.parse_instant(value)
    except ValueError:
        raise argparse.ArgumentTypeError("an ISO 8601 date or date-time, e.g. 2026-12-31T00:00:00Z") from None
    return value.strip()


def _connection_options() -> argparse.ArgumentParser:
    """--url/--function-key/--entra-scope, accepted before or after the command (SUPPRESS: no default hides
    the other place's value)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help=f"the API's base URL (env {ENV_URL}), e.g. https://<app>.azurewebsites.net",
    )
    group.add_argument(
        "--function-key",
        default=argparse.SUPPRESS,
        help=f"function key, sent as x-functions-key (env {ENV_KEY}; the environment keeps it out of ps)",
    )
    group.add_argument(
        "--entra-scope",
        default=argparse.SUPPRESS,
        help=f"get an Entra ID token for this scope, e.g. api://<app-id>/.default (env {ENV_SCOPE})",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    connection = _connection_options()
    parser = argparse.ArgumentParser(
        prog="dsr",
        description="Data subject requests for Azure Machine Learning, through the service's HTTP API.",
        epilog="Exit codes: 0 ok, 1 API or network error, 2 usage, 3 the watched request did not complete, "
        "4 the package does not match its manifest or its signatures.",
        parents=[connection],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[ApiClient, argparse.Namespace], int], text: str) -> Any:
        sub = commands.add_parser(name, help=text, description=text, parents=[connection])
        sub.set_defaults(handler=handler)
        return sub

    submit = command("submit", cmd_submit, "submit an export or erasure request; prints its id")
    submit.add_argument("type", choices=("export", "erasure"))
    submit.add_argument("--dry-run", action="store_true", help="list what would be exported or deleted")
    who = submit.add_argument_group("subject (at least one)")
    who.add_argument("--object-id", help="the person's Entra object id")
    who.add_argument("--upn", help="the person's user principal name")
    who.add_argument("--email", help="the person's e-mail address")
    where = submit.add_argument_group("scope (at least one; each may be repeated)")
    where.add_argument("--workspace", action="append", metavar="ARM_ID", help="a workspace's ARM id")
    where.add_argument(
        "--resource-group", action="append", metavar="ARM_ID", help="a resource group's ARM id"
    )
    where.add_argument("--subscription", action="append", metavar="ID", help="a subscription id")
    submit.add_argument("--reference", help="your ticket reference")
    submit.add_argument("--callback-url", help="https URL that receives CloudEvents about the request")
    submit.add_argument(
        "--idempotency-key", help="a repeated submit with the same key returns the first request"
    )
    submit.add_argument("--json", action="store_true", help="print the whole answer as JSON")

    status = command("status", cmd_status, "show a request's status and progress")
    status.add_argument("id", type=request_id)
    status.add_argument("--watch", action="store_true", help="poll (honouring Retry-After) until it ends")
    status.add_argument(
        "--timeout", type=float, default=0, help="with --watch: give up after this many seconds"
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")

    for name, text in (
        ("approve", "approve an erasure awaiting approval"),
        ("reject", "reject an erasure awaiting approval"),
        ("cancel", "cancel a request that has not ended"),
    ):
        decide = command(name, cmd_decide, text)
        decide.add_argument("id", type=request_id)
        decide.add_argument("--reason", help="recorded with the decision and in the audit trail")
        decide.add_argument("--json", action="store_true", help="print the status as JSON")

    retry = command("retry", cmd_retry, "re-run only the failed tasks of a request")
    retry.add_argument("id", type=request_id)
    retry.add_argument("--json", action="store_true", help="print the status as JSON")

    extend = command("extend", cmd_extend, "extend the deadline once, by 1 or 2 months (GDPR Art. 12(3))")
    extend.add_argument("id", type=request_id)
    extend.add_argument("--months", type=int, choices=(1, 2), required=True)
    extend.add_argument(
        "--reason", required=True, help="why (told to the requester, kept in the audit trail)"
    )
    extend.add_argument("--json", action="store_true", help="print the status as JSON")

    listing = command("list", cmd_list, "list requests (a table)")
    listing.add_argument("--status", action="append", choices=STATUSES, help="only these (may be repeated)")
    listing.add_argument("--overdue", action="store_true", help="only open requests past their due date")
    listing.add_argument("--due-before", type=instant, metavar="ISO", help="only requests due before this")
    person = listing.add_mutually_exclusive_group()
    person.add_argument("--subject-object-id", metavar="GUID", help="one person's requests (by object id)")
    person.add_argument("--subject-upn", metavar="UPN", help="one person's requests (by user principal name)")
    person.add_argument("--subject-email", metavar="EMAIL", help="one person's requests (by e-mail)")
    listing.add_argument(
        "--page-size", type=page_size, metavar="N", help=f"requests per page (1-{MAX_PAGE_SIZE})"
    )
    listing.add_argument("--all", action="store_true", help="follow nextLink through every page")
    listing.add_argument("--json", action="store_true", help="print the requests as JSON")

    download = command("download", cmd_download, "download the package zip and verify every file's sha-256")
    download.add_argument("id", type=request_id)
    download.add_argument("-o", "--output", default=".", metavar="DIR", help="directory for <id>.zip")

    verify = command(
        "verify",
        cmd_verify,
        "offline: check a package zip's checksums, the signatures of manifest.json and erasure-record.json, "
        "and report its audit chain head",
    )
    verify.add_argument("package", type=Path, metavar="PACKAGE.zip")
    verify.add_argument(
        "--key",
        type=Path,
        metavar="FILE",
        help="the service's public key, a JWK or JWK Set (GET /api/v1/signing-key); without it, the key in "
        "the package is used, which proves integrity only, not origin",
    )
    verify.add_argument("--id", type=request_id, help="the request the package must be of")
    verify.set_defaults(offline=True)
    return parser


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
