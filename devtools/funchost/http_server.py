"""The host's HTTP front end: HTTP triggers under the route prefix, and the admin API.

- Routing as ASP.NET (see routes.py); no route: 404; a route that exists for other methods: 405 with Allow.
- Auth levels: anonymous passes; function and admin need a key, in the `x-functions-key` header or the `code`
  query parameter, that is one of `FUNCTIONS_HOST_KEYS` (comma separated; unset: no key is valid) -> else 401.
- `POST /admin/functions/{name}` with `{"input": "..."}` runs a non-HTTP function now (202), key required.
- Request bodies over 100 MB: 413. HTTP/1.1 keep-alive; chunked request bodies are read.
- The function gets an `azure.functions.HttpRequest`; it returns an `HttpResponse` (or a str: 200 text/plain;
  anything else, None included, fails the invocation as the worker's output converter does). An unhandled
  exception is logged and answered 500 with an empty body, as the host does.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func
from azure.functions import _abc as func_abc

from devtools.funchost.functions import HTTP_TRIGGER, FunctionSpec

log = logging.getLogger("funchost.http")

MAX_REQUEST_BODY = 100 * 1024 * 1024  # host limit (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT default: 100 MB)
HOST_KEYS_ENV = "FUNCTIONS_HOST_KEYS"

Headers = list[tuple[str, str]]


@dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes = b""


def valid_keys() -> list[str]:
    return [k.strip() for k in os.environ.get(HOST_KEYS_ENV, "").split(",") if k.strip()]


def key_ok(headers: dict[str, str], params: dict[str, str]) -> bool:
    supplied = headers.get("x-functions-key") or params.get("code")
    if not supplied:
        return False
    return any(hmac.compare_digest(supplied.encode(), key.encode()) for key in valid_keys())


def to_reply(result: Any) -> Reply:
    """What the host sends for a function's return value."""
    if isinstance(result, func_abc.HttpResponse):
        headers: Headers = []
        has_type = False
        for name, value in result.headers.items():
            lower = name.lower()
            if lower in ("content-length", "transfer-encoding", "connection"):
                continue
            has_type = has_type or lower == "content-type"
            headers.append((name, str(value)))
        if not has_type:
            mimetype = getattr(result, "mimetype", "text/plain")
            charset = getattr(result, "charset", "utf-8")
            headers.append(
                (
                    "Content-Type",
                    f"{mimetype}; charset={charset}" if mimetype.startswith("text/") else mimetype,
                )
            )
        return Reply(int(result.status_code), headers, result.get_body() or b"")
    if isinstance(result, str):
        return Reply(200, [("Content-Type", "text/plain; charset=utf-8")], result.encode("utf-8"))
    raise TypeError(
        f"unable to encode outgoing TypedData: an HTTP function must return an HttpResponse or a str, "
        f"not {type(result).__name__}"
    )


class Dispatcher:
    """Maps one request to a function (or the admin API) and its reply; no sockets here."""

    def __init__(
        self,
        functions: list[FunctionSpec],
        invoke: Callable[..., Any],
        run_admin: Callable[[FunctionSpec, str | None], None],
    ) -> None:
        http = [s for s in functions if s.trigger_type == HTTP_TRIGGER]
        self.routes = sorted(
            http, key=lambda s: (s.route.precedence() if s.route else (), s.route_text.lower())
        )
        self.by_name = {s.name.lower(): s for s in functions}
        self.invoke = invoke
        self.run_admin = run_admin

    def dispatch(
        self,
        method: str,
        url: str,
        segments: list[str],
        params: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> Reply:
        if segments and segments[0].lower() == "admin":
            return self._admin(method, segments, params, headers, body)
        matches = []
        for spec in self.routes:
            assert spec.route is not None
            values = spec.route.match(segments)
            if values is not None:
                matches.append((spec, values))
        if not matches:
            return Reply(404, [])
        allowed = [(s, v) for s, v in matches if s.methods is None or method in s.methods]
        if not allowed:
            methods = sorted({m for s, _ in matches for m in (s.methods or ())})
            return Reply(405, [("Allow", ", ".join(methods))])
        spec, values = allowed[0]
        if spec.auth_level != "anonymous" and not key_ok(headers, params):
            return Reply(401, [])
        request = func.HttpRequest(
            method, url, headers=headers, params=params, route_params=values, body=body
        )
        reason = "This function was programmatically called via the host APIs."
        try:
            reply: Reply = self.invoke(spec, request, reason, convert=to_reply)
        except Exception:
            return Reply(500, [])  # the invocation has been logged with its exception
        return reply

    def _admin(
        self, method: str, segments: list[str], params: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Reply:
        if len(segments) != 3 or segments[1].lower() != "functions":
            return Reply(404, [])
        if not key_ok(headers, params):
            return Reply(401, [])
        spec = self.by_name.get(segments[2].lower())
        if spec is None:
            return Reply(404, [])
        if method != "POST":
            return Reply(405, [("Allow", "POST")])
        if spec.trigger_type == HTTP_TRIGGER:
            return _json(400, {"error": f"{spec.name} is an HTTP function: call its route instead"})
        data: Any = {}
        if body.strip():
            try:
                data = json.loads(body)
            except json.JSONDecodeError:
                return _json(400, {"error": 'the body must be JSON: {"input": "..."}'})
        if not isinstance(data, dict):
            return _json(400, {"error": 'the body must be a JSON object: {"input": "..."}'})
        value = data.get("input")
        if value is not None and not isinstance(value, str):
            value = json.dumps(value)
        self.run_admin(spec, value)
        return Reply(202, [])


def _json(status: int, doc: Any) -> Reply:
    return Reply(status, [("Content-Type", "application/json; charset=utf-8")], json.dumps(doc).encode())


def _decode_segment(raw: str) -> str:
    """Percent-decode one path segment, keeping an encoded slash (%2F) as is, like Kestrel."""
    return "%2F".join(unquote(part) for part in re.split("%2[fF]", raw))


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections close after this
    server: HttpServer

    def version_string(self) -> str:
        return "funchost"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(65537).strip()
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise _BadRequest(400, "bad chunk size") from None
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_REQUEST_BODY:
                    raise _BadRequest(413, "request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise _BadRequest(400, "bad Content-Length") from None
        if length < 0:
            raise _BadRequest(400, "bad Content-Length")
        if length > MAX_REQUEST_BODY:
            raise _BadRequest(413, "request body too large")
        return self.rfile.read(length)

    def _serve(self) -> None:
        method = self.command.upper()
        try:
            body = self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._write(Reply(exc.status, [("Connection", "close")]), method)
            return
        parts = urlsplit(self.path)
        raw_segments = parts.path.split("/")[1:] if parts.path.startswith("/") else parts.path.split("/")
        if raw_segments and raw_segments[-1] == "":
            raw_segments.pop()  # a trailing slash is ignored, as by ASP.NET routing
        segments = [_decode_segment(s) for s in raw_segments]
        params: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            lower = key.lower()
            headers[lower] = f"{headers[lower]}, {value}" if lower in headers else value
        host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}"
        url = f"http://{host}{self.path}"
        reply = self.server.dispatcher.dispatch(method, url, segments, params, headers, body)
        self._write(reply, method)

    def _write(self, reply: Reply, method: str) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if method != "HEAD" and reply.body:
            self.wfile.write(reply.body)

    # Every method reaches the router (TRACE and QUERY too): a route that does not take it answers 405 with
    # Allow, as Kestrel does, never http.server's own 501.
    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = do_QUERY = _serve


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        super().__init__(address, _Handler)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def start(self) -> None:
        self._thread.name = f"funchost-http-{self.server_address[1]}"
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
