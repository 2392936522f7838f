"""The command line's grammar: commands, options and argument types (`dsr --help`). The handlers live in
dsr_cli/main.py, which passes them in; this module knows nothing of the API."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dsr_cli import render

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
MAX_PAGE_SIZE = 200


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


Command = Callable[[str, str], Any]  # command(name, help) -> its sub-parser


def build_parser(handlers: Mapping[str, Callable[..., int]]) -> argparse.ArgumentParser:
    connection = _connection_options()
    parser = argparse.ArgumentParser(
        prog="dsr",
        description="Data subject requests for Azure Machine Learning, through the service's HTTP API.",
        epilog="Exit codes: 0 ok, 1 API or network error, 2 usage, 3 the watched request did not complete, "
        "4 the package does not match its manifest or its signatures.",
        parents=[connection],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> Any:
        sub = commands.add_parser(name, help=text, description=text, parents=[connection])
        sub.set_defaults(handler=handlers[name])
        return sub

    _submit(command)
    _decisions(command)
    _listing_and_packages(command)
    return parser


def _submit(command: Command) -> None:
    submit = command("submit", "submit an export or erasure request; prints its id")
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


def _decisions(command: Command) -> None:
    status = command("status", "show a request's status and progress")
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
        decide = command(name, text)
        decide.add_argument("id", type=request_id)
        decide.add_argument("--reason", help="recorded with the decision and in the audit trail")
        decide.add_argument("--json", action="store_true", help="print the status as JSON")

    retry = command("retry", "re-run only the failed tasks of a request")
    retry.add_argument("id", type=request_id)
    retry.add_argument("--json", action="store_true", help="print the status as JSON")

    extend = command("extend", "extend the deadline once, by 1 or 2 months (GDPR Art. 12(3))")
    extend.add_argument("id", type=request_id)
    extend.add_argument("--months", type=int, choices=(1, 2), required=True)
    extend.add_argument(
        "--reason", required=True, help="why (told to the requester, kept in the audit trail)"
    )
    extend.add_argument("--json", action="store_true", help="print the status as JSON")


def _listing_and_packages(command: Command) -> None:
    listing = command("list", "list requests (a table)")
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

    download = command("download", "download the package zip and verify every file's sha-256")
    download.add_argument("id", type=request_id)
    download.add_argument("-o", "--output", default=".", metavar="DIR", help="directory for <id>.zip")

    verify = command(
        "verify",
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
