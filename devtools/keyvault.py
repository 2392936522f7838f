"""A Key Vault stand-in for the local stack: the two key operations the app uses, on https, with the
local managed identity's tokens.

- `GET /keys/{name}[/{version}]?api-version=7.4` answers the key bundle `{key: JWK with kid, attributes}`;
- `POST /keys/{name}/{version}/sign?api-version=7.4` with `{alg: ES256, value: base64url(sha-256 digest)}`
  answers `{kid, value: base64url(R || S)}`.

As in Key Vault, a call needs a bearer token for the audience https://vault.azure.net (minted by the local
identity endpoint, checked with its issuer; 401 otherwise), the key's private part never leaves this process,
and an unknown key or version answers 404 with Key Vault's error shape `{error: {code, message}}`. The key is
an EC P-256 key generated at start (a new one for each stack), one version.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature

from devtools.amlsim.identity import VAULT_AUDIENCES, TokenError, TokenIssuer

KEY_NAME = "dsr-package-signing"
_KEY_PATH = re.compile(
    r"^/keys/(?P<name>[A-Za-z0-9-]{1,127})(?:/(?P<version>[0-9a-f]{32}))?(?P<sign>/sign)?/?$"
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LocalKeyVault:
    """One vault with one EC P-256 key, served on 127.0.0.1 over the stack's TLS certificate."""

    def __init__(self, issuer: TokenIssuer, cert: Path, key: Path, key_name: str = KEY_NAME) -> None:
        self.issuer = issuer
        self.key_name = key_name
        self.version = secrets.token_hex(16)
        self._private = ec.generate_private_key(ec.SECP256R1())
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status): what the app asked
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer._serve(self, "GET")

            def do_POST(self) -> None:
                outer._serve(self, "POST")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def key_id(self) -> str:
        """The versionless key identifier (the app setting DSR_SIGNING_KEY_ID)."""
        return f"{self.base_url}/keys/{self.key_name}"

    def public_jwk(self) -> dict[str, Any]:
        numbers = self._private.public_key().public_numbers()
        return {
            "kid": f"{self.key_id}/{self.version}",
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
            "key_ops": ["sign", "verify"],
        }

    def start(self) -> LocalKeyVault:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the two operations ---------------------------------------------------------------------------------
    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        status, body = self._answer(method, parts.path, dict(parse_qsl(parts.query)), handler)
        self.calls.append((method, parts.path, status))
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json; charset=utf-8")
        handler.send_header("Content-Length", str(len(data)))
        if status == 401:
            handler.send_header(
                "WWW-Authenticate",
                'Bearer authorization="https://login.microsoftonline.com/common", resource="https://vault.azure.net"',
            )
        handler.end_headers()
        handler.wfile.write(data)

    def _answer(
        self, method: str, path: str, query: dict[str, str], handler: BaseHTTPRequestHandler
    ) -> tuple[int, dict[str, Any]]:
        header = handler.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise TokenError("no bearer token")
            self.issuer.verify(token.strip(), VAULT_AUDIENCES)
        except TokenError as exc:
            return 401, _error("Unauthorized", str(exc))
        if query.get("api-version") != "7.4":
            return 400, _error("BadParameter", "api-version 7.4 is required")
        match = _KEY_PATH.match(path)
        if match is None or match["name"] != self.key_name:
            return 404, _error("KeyNotFound", f"A key with (name/id) {path} was not found in this key vault.")
        if match["version"] not in (None, self.version):
            return 404, _error("KeyNotFound", "no such version of the key")
        if method == "GET" and not match["sign"]:
            return 200, {"key": self.public_jwk(), "attributes": {"enabled": True, "exportable": False}}
        if method == "POST" and match["sign"] and match["version"]:
            length = int(handler.headers.get("Content-Length") or 0)
            return self._sign(json.loads(handler.rfile.read(length) or b"{}"))
        return 405, _error("MethodNotAllowed", f"{method} {path}")

    def _sign(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("alg") != "ES256":
            return 400, _error("BadParameter", "the key is EC P-256: alg must be ES256")
        try:
            digest = _unb64(str(body.get("value", "")))
        except ValueError:
            digest = b""
        if len(digest) != 32:
            return 400, _error("BadParameter", "value must be a base64url SHA-256 digest")
        der = self._private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        r, s = decode_dss_signature(der)
        return 200, {
            "kid": f"{self.key_id}/{self.version}",
            "value": _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
        }


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
