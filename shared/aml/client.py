"""The Azure ML REST client: managed-identity tokens, allow-listed hosts, retries, throttling, paging.

- One pooled `requests.Session` per process, connect and read timeouts on every call.
- Tokens from `azure-identity` (the Function App's managed identity), cached until shortly before expiry.
- The bearer token goes only to URLs the allow-list accepts; redirects are never followed.
- 5xx, connection errors and cut-off JSON bodies are retried with exponential backoff and full jitter.
- 429: a short `Retry-After` is waited out in process; a long one raises `ThrottledError` so the caller can
  re-enqueue its work with a visibility delay instead of holding a worker.
- One paging iterator for ARM `nextLink`, run-history `continuationToken` and model-management `$skipToken`;
  its cursor is always the absolute URL of the next page, so a task can checkpoint it and resume.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from shared.aml.budget import SharedBudget
from shared.core import telemetry
from shared.core.outbound import AllowList
from shared.core.transport import TokenCredential, fixed_tls_verify, parse_retry_after

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({500, 502, 503, 504})


class AmlError(Exception):
    """An Azure ML call that failed for good (after retries), with the service's error code."""

    def __init__(self, status: int, code: str, message: str, url: str) -> None:
        super().__init__(f"{status} {code}: {message} ({safe_url(url)})")
        self.status, self.code, self.message, self.url = status, code, message, safe_url(url)


class ThrottledError(Exception):
    """The service asked us to wait longer than a worker should sleep."""

    def __init__(self, retry_after: float, url: str) -> None:
        super().__init__(f"throttled for {retry_after:.0f}s ({safe_url(url)})")
        self.retry_after = retry_after


def safe_url(url: str) -> str:
    """The URL without its query (tokens and skip tokens stay out of logs and records)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def with_query(url: str, params: Mapping[str, str] | None) -> str:
    """`url` with `params` merged into its query string (existing keys replaced)."""
    if not params:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class RateLimiter:
    """Client-side token buckets per (subscription, host, reads|deletes), shaped like ARM's throttling
    (reads 250 burst / 25 per second, deletes 200 / 10 by default), so the product stays under the service's
    limit instead of finding it with 429s. The service's `x-ms-ratelimit-remaining-subscription-*` headers pull
    a bucket down when other callers (other instances, other tools) have used the budget.

    With `shared` (shared/aml/budget.py) the buckets are shared by every instance: tokens are leased from Table
    storage in small batches and spent here. While the shared budget cannot be reached, each process falls back
    to its own buckets divided by `fallback_instances`."""

    def __init__(
        self,
        read_rate: float = 25.0,
        read_burst: float = 250.0,
        delete_rate: float = 10.0,
        delete_burst: float = 200.0,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedBudget | None = None,
        fallback_instances: int = 1,
    ) -> None:
        self.limits = {"reads": (read_rate, read_burst), "deletes": (delete_rate, delete_burst)}
        self.shared = shared
        share = 1.0 / max(1, fallback_instances) if shared is not None else 1.0
        self.own_limits = {kind: (rate * share, burst * share) for kind, (rate, burst) in self.limits.items()}
        self.clock = clock
        self._buckets: dict[tuple[str, str, str], list[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(method: str, url: str) -> tuple[str, str, str]:
        parts = urlsplit(url)
        segments = parts.path.split("/")
        lowered = [s.lower() for s in segments]
        subscription = segments[lowered.index("subscriptions") + 1] if "subscriptions" in lowered[:-1] else ""
        kind = "deletes" if method == "DELETE" else "reads"
        return (subscription.lower(), parts.netloc.lower(), kind)

    def _bucket(self, key: tuple[str, str, str], now: float) -> list[float]:
        rate, burst = self.own_limits[key[2]]
        bucket = self._buckets.setdefault(key, [burst, now])
        bucket[0] = min(burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        return bucket

    def reserve(self, key: tuple[str, str, str]) -> float:
        """Take one token; return how long to wait before using it (0: now)."""
        if self.shared is not None:
            wait = self.shared.reserve(key, *self.limits[key[2]])
            if wait is not None:
                return wait
        with self._lock:
            bucket = self._bucket(key, self.clock())
            bucket[0] -= 1
            return 0.0 if bucket[0] >= 0 else -bucket[0] / self.own_limits[key[2]][0]

    def give_back(self, key: tuple[str, str, str]) -> None:
        if self.shared is not None and self.shared.give_back(key):
            return
        with self._lock:
            self._bucket(key, self.clock())[0] += 1

    def observe(self, key: tuple[str, str, str], remaining: str | None) -> None:
        """Align with the service's own count of what is left."""
        if remaining is None:
            return
        try:
            left = float(remaining)
        except ValueError:
            return
        if self.shared is not None:
            self.shared.observe(key, left)
        with self._lock:
            bucket = self._bucket(key, self.clock())
            bucket[0] = min(bucket[0], left)


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_url: str | None


@dataclass
class CallStats:
    """What one unit of work cost: calls, retries and 429s per host."""

    calls: int = 0
    retries: int = 0
    throttled: int = 0
    limited_wait: float = 0.0
    by_host: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "retries": self.retries, "throttled": self.throttled}


class AzureMLClient:
    def __init__(
        self,
        credential: TokenCredential,
        audience: str,
        allow_list: AllowList,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        max_inprocess_wait: float = 5.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 32,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.limiter = limiter
        self.credential = credential
        self.audience = audience
        self.allow_list = allow_list
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_inprocess_wait = max_inprocess_wait
        self.sleep = sleep
        self.session = session or requests.Session()
        if session is None:
            adapter = requests.adapters.HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
            self.session.mount("https://", adapter)
            verify = fixed_tls_verify()
            if verify is not None:
                self.session.verify = verify
                self.session.trust_env = False
        self._token: tuple[str, float] | None = None
        self._token_lock = threading.Lock()
        self._rng = random.Random()

    # -- tokens ---------------------------------------------------------------------------------------------
    def _bearer(self) -> str:
        with self._token_lock:
            now = time.time()
            if self._token is None or self._token[1] - 300 <= now:
                token = self.credential.get_token(self.audience)
                self._token = (token.token, float(token.expires_on))
            return self._token[0]

    # -- one call -------------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        stats: CallStats | None = None,
        ok: frozenset[int] = frozenset({200, 201, 202, 204}),
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send one call (retrying as the policy says) and return a response whose status is in `ok`.

        Raises DisallowedUrlError before anything is sent to a host off the allow-list, ThrottledError for a
        long Retry-After, and AmlError for any other final failure (404 included, with its status)."""
        full_url = with_query(url, params)
        self.allow_list.check(full_url)
        stats = stats if stats is not None else CallStats()
        host = urlsplit(full_url).netloc
        attempt = 0
        bucket = RateLimiter.key(method, full_url)
        while True:
            attempt += 1
            self._take_budget(bucket, full_url, stats)
            stats.calls += 1
            stats.by_host[host] += 1
            try:
                response = self._send(method, full_url, headers)
            except (requests.ConnectionError, requests.Timeout) as exc:
                telemetry.aml_call(host, 0)
                if attempt >= self.max_attempts:
                    raise AmlError(0, type(exc).__name__, "no answer after retries", full_url) from exc
                self._backoff(attempt, stats)
                continue
            telemetry.aml_call(host, response.status_code)
            if self.limiter is not None:
                header = "deletes" if method == "DELETE" else "reads"
                self.limiter.observe(
                    bucket, response.headers.get(f"x-ms-ratelimit-remaining-subscription-{header}")
                )
            if response.status_code not in ok:
                self._wait_to_retry(response, attempt, full_url, stats)
            elif self._body_complete(response, method, attempt, full_url, stats):
                return response

    def _take_budget(self, bucket: tuple[str, str, str], full_url: str, stats: CallStats) -> None:
        """Take a token of the rate limiter, sleeping for it when the wait is short; raise ThrottledError (the
        token given back) when it is not."""
        if self.limiter is None:
            return
        wait = self.limiter.reserve(bucket)
        if wait > self.max_inprocess_wait:
            self.limiter.give_back(bucket)
            raise ThrottledError(wait, full_url)
        if wait > 0:
            stats.limited_wait += wait
            self.sleep(wait)

    def _send(self, method: str, full_url: str, headers: Mapping[str, str] | None) -> requests.Response:
        return self.session.request(
            method,
            full_url,
            headers={
                **(headers or {}),
                "Authorization": f"Bearer {self._bearer()}",
                "Accept": "application/json",
            },
            timeout=self.timeout,
            allow_redirects=False,
        )

    def _body_complete(
        self, response: requests.Response, method: str, attempt: int, full_url: str, stats: CallStats
    ) -> bool:
        """True when an accepted response is whole: a GET's 200 body parses as JSON (kept as
        `response.parsed`). A body cut off in transit is a transient failure: False after the backoff, AmlError
        after the last attempt."""
        if method != "GET" or response.status_code != 200:
            return True
        try:
            response.parsed = response.json()  # type: ignore[attr-defined]  # get_json's body
        except ValueError:
            if attempt >= self.max_attempts:
                raise AmlError(
                    response.status_code, "InvalidJson", "response body is not JSON", full_url
                ) from None
            self._backoff(attempt, stats)
            return False
        return True

    def _wait_to_retry(
        self, response: requests.Response, attempt: int, full_url: str, stats: CallStats
    ) -> None:
        """After a refused call: wait before the next attempt (a short 429 Retry-After, a 5xx's Retry-After or
        backoff), or raise ThrottledError (a long or last 429) or AmlError (anything else, or the last 5xx)."""
        status = response.status_code
        if status == 429:
            stats.throttled += 1
            wait = parse_retry_after(response.headers.get("Retry-After"), default=10.0)
            if wait > self.max_inprocess_wait or attempt >= self.max_attempts:
                raise ThrottledError(max(wait, 1.0), full_url)
            stats.retries += 1
            self.sleep(wait)
            return
        if status in RETRYABLE_STATUS and attempt < self.max_attempts:
            retry_after = response.headers.get("Retry-After")
            if retry_after and parse_retry_after(retry_after, 0) <= self.max_inprocess_wait:
                stats.retries += 1
                self.sleep(parse_retry_after(retry_after, 0))
            else:
                self._backoff(attempt, stats)
            return
        code, message = _error_of(response)
        raise AmlError(status, code, message, full_url)

    def get_json(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        stats: CallStats | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        response = self.request("GET", url, params=params, stats=stats, ok=frozenset({200}), headers=headers)
        body: dict[str, Any] = getattr(response, "parsed", None) or response.json()  # parsed once
        return body

    def _backoff(self, attempt: int, stats: CallStats) -> None:
        """Count a retry and sleep before it: full jitter under an exponential ceiling."""
        stats.retries += 1
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        self.sleep(self._rng.uniform(0, ceiling))

    # -- paging ---------------------------------------------------------------------------------------------
    def page(
        self,
        url: str,
        *,
        continuation_param: str | None = None,
        stats: CallStats | None = None,
    ) -> Page:
        """Fetch the one page at `url` (a first-page URL with its query, or a saved cursor)."""
        body = self.get_json(url, stats=stats)
        items = body.get("value")
        if not isinstance(items, list):
            raise AmlError(200, "UnexpectedShape", "list response has no 'value' array", url)
        next_url = body.get("nextLink") or None
        token = body.get("continuationToken")
        if next_url is None and token and continuation_param:
            next_url = with_query(url, {continuation_param: str(token)})
        if next_url is not None:
            self.allow_list.check(next_url)
        return Page(items=items, next_url=next_url)

    def pages(
        self, url: str, *, continuation_param: str | None = None, stats: CallStats | None = None
    ) -> Iterator[Page]:
        next_url: str | None = url
        while next_url is not None:
            page = self.page(next_url, continuation_param=continuation_param, stats=stats)
            yield page
            next_url = page.next_url


def _error_of(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP{response.status_code}", (response.text or "")[:200]
    return error_fields(body, response.status_code)


def error_fields(body: Any, status: int) -> tuple[str, str]:
    """(code, message) of an error body in either published shape:
    - ARM and most data-plane services: `{"error": {"code", "message", "details"?}}`;
    - model management (azure-rest-api-specs, specification/machinelearningservices/data-plane/
      Microsoft.MachineLearningServices/preview/2019-09-30/modelManagement.json, `ModelErrorResponse`, the
      `default` response of every operation there and the `error` of `AsyncOperationStatus`): a top-level
      `{"code", "statusCode", "message", "details": [{code, message, target}]}`;
    - aether (pipelines; azureml-pipeline-core, _restclients/aeva/models/error_response.py): PascalCase
      `{"Error": {"Code", "Message", ...}}`.
    Anything else keeps its status as the code and a prefix of the body as the message."""
    if isinstance(body, dict):
        error = body.get("error")
        if not isinstance(error, dict) and isinstance(body.get("Error"), dict):
            error = {"code": body["Error"].get("Code"), "message": body["Error"].get("Message")}
        if isinstance(error, dict):
            return str(error.get("code") or f"HTTP{status}"), str(error.get("message") or "")[:500]
        code = body.get("code")
        if isinstance(code, str) and code and ("message" in body or "statusCode" in body):
            return code, str(body.get("message") or "")[:500]
    return f"HTTP{status}", json.dumps(body)[:200]
