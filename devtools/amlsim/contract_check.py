"""Judges one simulated answer against the HTTP contract table (contract_http.py): its status code, error body,
paging envelope and throttling headers. `problems()` returns what the answer does that the table does not
describe; tests/devtools/amlsim/test_contract_http.py calls it on every answer of its walk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devtools.amlsim.contract_http import SERVICES, Paging, Service, operation_for


def error_problems(shape: str, status: int, body: Any) -> list[str]:
    """What is wrong with `body` as an error answer of status `status` in the named shape ([] = nothing)."""
    if not isinstance(body, dict):
        return [f"error body is not a JSON object: {body!r}"]
    if shape == "mms":
        bad = [] if "error" not in body else ["ModelErrorResponse has no 'error' wrapper"]
        if not (isinstance(body.get("code"), str) and body["code"]):
            bad.append("ModelErrorResponse without a code")
        if body.get("statusCode") != status:
            bad.append(f"statusCode {body.get('statusCode')!r} is not the HTTP status {status}")
        if not isinstance(body.get("message"), str) or not isinstance(body.get("details"), list):
            bad.append("ModelErrorResponse without message or details")
        return bad
    wrapper, code, message = (
        ("Error", "Code", "Message") if shape == "aether" else ("error", "code", "message")
    )
    inner = body.get(wrapper)
    if not isinstance(inner, dict):
        return [f"no {wrapper!r} object in {sorted(body)}"]
    if not (isinstance(inner.get(code), str) and inner[code] and isinstance(inner.get(message), str)):
        return [f"{wrapper}.{code} or {wrapper}.{message} missing: {inner}"]
    other = "error" if shape == "aether" else "Error"
    return [f"both {wrapper!r} and {other!r}"] if other in body else []


def paging_problems(paging: Paging, query: Mapping[str, str], body: Any) -> list[str]:
    """A 200 list answer against its paging row: the envelope's keys, how the last page says so, and that the
    next page's link carries the continuation in the contract's parameter."""
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        return ["a list answer without a 'value' array"]
    bad: list[str] = []
    link = body.get("nextLink")
    if paging.envelope == "arm":
        if set(body) - {"value", "nextLink"}:
            bad.append(f"keys {sorted(set(body) - {'value', 'nextLink'})} beyond {{value, nextLink}}")
        if "nextLink" in body and not link:
            bad.append("an empty nextLink: the last page has none")
    else:
        if set(body) != {"value", "continuationToken", "nextLink"}:
            bad.append(f"keys {sorted(body)} are not {{value, continuationToken, nextLink}}")
        if (body.get("continuationToken") is None) != (link is None):
            bad.append("continuationToken and nextLink disagree about a next page")
    if link:
        carried = {k.lower(): v for k, v in parse_qsl(urlsplit(str(link)).query, keep_blank_values=True)}
        token = carried.get(paging.token.lower())
        if token is None:
            bad.append(f"nextLink does not carry {paging.token}: {link}")
        elif paging.envelope == "continuation" and token != body.get("continuationToken"):
            bad.append("nextLink carries another token than continuationToken")
    asked = {k.lower(): v for k, v in query.items()}.get((paging.size or "").lower(), "")
    if asked.isdigit() and len(body["value"]) > int(asked):
        bad.append(f"{len(body['value'])} items on a page of {paging.size}={asked}")
    return bad


def throttling_problems(service: Service, method: str, status: int, headers: Mapping[str, str]) -> list[str]:
    """The rate-limit headers of one answer: `headers` with lower-case names."""
    kind = "deletes" if method == "DELETE" else "reads" if method in ("GET", "HEAD") else "writes"
    wanted = f"x-ms-ratelimit-remaining-subscription-{kind}"
    sent = sorted(name for name in headers if name.startswith("x-ms-ratelimit-"))
    bad: list[str] = []
    if service.remaining_headers and status != 401 and not headers.get(wanted, "").isdigit():
        bad.append(f"no {wanted} count")
    if not service.remaining_headers and sent:
        bad.append(f"{sent} on a service whose contract names no such header")
    if status == 429 and ("retry-after" in headers) != service.retry_after_on_429:
        bad.append("Retry-After " + ("missing" if service.retry_after_on_429 else "sent") + " on a 429")
    return bad


def problems(
    method: str,
    host: str,
    path: str,
    query: Mapping[str, str],
    status: int,
    headers: Mapping[str, str],
    body: Any,
) -> list[str]:
    """Everything one simulated answer does that the table does not describe ([] = a faithful answer).
    `headers` with lower-case names; `body` parsed JSON, or None for an empty body."""
    op = operation_for(method, host, path)
    if op is None:
        return [f"no operation of the table answers {method} {host}{path}"]
    service = SERVICES[op.service]
    bad = throttling_problems(service, method, status, headers)
    if service.api_version_required and status < 400 and "api-version" not in {k.lower() for k in query}:
        bad.append("answered without the api-version its contract requires")
    if status not in op.statuses():
        bad.append(f"status {status} is not one of {list(op.statuses())}")
    if status >= 400:
        bad.extend(error_problems(service.error_shape, status, body))
    elif status == 202:
        bad.extend(f"a 202 without {h}" for h in op.accepted_headers if h.lower() not in headers)
    if status == 204 or (method == "DELETE" and status < 300 and op.id != "WorkspaceOperation_Result"):
        bad.extend([f"a body on {method} {status}"] if body not in (None, "") else [])
    if method == "GET" and status == 200 and op.paging is not None:
        bad.extend(paging_problems(op.paging, query, body))
    return [f"{op.id} {status}: {p}" for p in bad]
