"""The API client: where the API is, who is calling, problem+json errors, Retry-After.

Every call goes to `<base>/api/v1/...` with the caller's credentials: the function key in `x-functions-key`
and/or an Entra ID access token (DefaultAzureCredential) as a bearer token. Redirects are never followed with
these headers (requests drops `Authorization` on a cross-host redirect, but not `x-functions-key`): a caller
that expects a redirect (the package link) reads `Location` and fetches it itself without them. TLS is always
verified; REQUESTS_CA_BUNDLE names an extra CA (the local stack's) the standard requests way.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import requests

API_PREFIX = "/api/v1"
USER_AGENT = "dsr-cli/0.1"
TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_RETRY_AFTER = 300.0
TOKEN_REFRESH_MARGIN = 300  # seconds before expiry a cached token is replaced
_QUERY_IN_TEXT = re.compile(r"\?[^\s'\")>]*")


class UsageError(Exception):
    """The command line is wrong: exit code 2."""


class CliError(Exception):
    """A failure to report in a line or a few: exit code 1."""

    def lines(self) -> list[str]:
        return [str(self)]


class ApiError(CliError):
    """An error answer of the API; from problem+json (RFC 7807) when the API sent one."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{title}: {detail}" if detail else title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []

    @classmethod
    def from_response(cls, response: requests.Response) -> ApiError:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        body: Any = None
        if content_type in ("application/problem+json", "application/json"):
            try:
                body = response.json()
            except ValueError:
                body = None
        if isinstance(body, dict) and isinstance(body.get("title"), str):
            errors = body.get("errors")
            return cls(
                response.status_code,
                body["title"],
                str(body["detail"]) if body.get("detail") is not None else None,
                [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else None,
            )
        title = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
        text = " ".join((response.text or "").split())[:200] or None
        if response.status_code in (401, 403) and not text:
            text = (
                "check the function key (--function-key, DSR_FUNCTION_KEY) or the Entra scope (--entra-scope)"
            )
        return cls(response.status_code, title, text)

    def lines(self) -> list[str]:
        lines = [str(self)]
        for error in self.errors:
            field = error.get("field") or error.get("name") or "?"
            message = error.get("message") or error.get("detail") or ""
            lines.append(f"  {field}: {message}")
        return lines


def redact(text: str) -> str:
    """Error text without URL query strings: a package link's query is a credential (SAS), never printed."""
    return _QUERY_IN_TEXT.sub("?...", text)


def retry_after_seconds(value: str | None, default: float, now: dt.datetime | None = None) -> float:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date, RFC 9110), within 0..300."""
    if value is None or not value.strip():
        return default
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return max(0.0, min(MAX_RETRY_AFTER, seconds))


class TokenCredential(Protocol):
    def get_token(self, *scopes: str) -> Any: ...


class EntraToken:
    """A bearer token for the API's scope (e.g. `api://<app-id>/.default`) from DefaultAzureCredential (az
    login, environment, managed identity, ...), fetched when first needed and renewed before it expires."""

    def __init__(
        self, scope: str, credential: TokenCredential | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.scope = scope
        self._credential = credential
        self._clock = clock
        self._token: str | None = None
        self._expires_on = 0.0

    def __call__(self) -> str:
        if self._token is None or self._expires_on - TOKEN_REFRESH_MARGIN <= self._clock():
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
            from azure.core.exceptions import ClientAuthenticationError

            try:
                access = self._credential.get_token(self.scope)
            except ClientAuthenticationError as exc:
                first = str(exc.message or exc).splitlines()[0][:300]
                raise CliError(f"no Entra ID token for {self.scope} (az login?): {first}") from None
            self._token, self._expires_on = access.token, float(access.expires_on)
        return self._token


def api_base(url: str) -> str:
    """`https://app.azurewebsites.net` (or with a trailing `/api`) as the origin the API lives under. Plain
    http only to this machine (the local Functions host): credentials never travel in clear."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"--url must be an https URL such as https://<app>.azurewebsites.net, not {url!r}")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise UsageError("--url must use https: the function key and tokens never travel in clear")
    if parts.query or parts.fragment:
        raise UsageError("--url takes the base address only, without a query")
    path = parts.path
    if path.endswith("/api"):
        path = path[: -len("/api")]
    return f"{parts.scheme}://{parts.netloc}{path}"


class ApiClient:
    def __init__(
        self,
        url: str,
        *,
        function_key: str | None = None,
        token: Callable[[], str] | None = None,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_retries: int = 4,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.base = api_base(url)
        self.function_key = function_key
        self.token = token
        self.session = session or requests.Session()
        self.timeout = timeout
        self.max_retries = max_retries
        self.sleep = sleep or time.sleep

    def url(self, path: str) -> str:
        return f"{self.base}{API_PREFIX}{path}"

    def headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json, application/problem+json"}
        if self.function_key:
            headers["x-functions-key"] = self.function_key
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token()}"
        return headers

    def same_origin(self, url: str) -> str:
        """A link the API answered (nextLink), resolved against the base; refused if it leaves the API's
        origin, since the caller's credentials go with it."""
        absolute = urljoin(self.base + "/", url)
        mine, theirs = urlsplit(self.base), urlsplit(absolute)
        if (theirs.scheme, theirs.netloc) != (mine.scheme, mine.netloc):
            raise CliError(f"the API answered a link to another host ({theirs.netloc}); not followed")
        return absolute

    def call(
        self,
        method: str,
        path_or_url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201, 202),
    ) -> requests.Response:
        """One API call. An answer outside `ok` raises ApiError. A GET is retried on 429/502/503/504 and on
        connection failures, waiting as Retry-After says (or 1, 2, 4, ... seconds)."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers={**self.headers(), **(headers or {})},
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if method != "GET" or attempt >= self.max_retries:
                    raise CliError(f"cannot reach {self.base}: {redact(str(exc))[:300]}") from None
                self.sleep(min(2.0**attempt, 30.0))
                attempt += 1
                continue
            if response.status_code in ok:
                return response
            if method == "GET" and response.status_code in TRANSIENT_STATUSES and attempt < self.max_retries:
                self.sleep(retry_after_seconds(response.headers.get("Retry-After"), min(2.0**attempt, 30.0)))
                attempt += 1
                continue
            raise ApiError.from_response(response)

    def get_json(self, path_or_url: str, params: Mapping[str, str] | None = None) -> Any:
        return self.call("GET", path_or_url, params=params).json()

    def post_json(
        self, path: str, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        return self.call("POST", path, json=body, headers=headers)
