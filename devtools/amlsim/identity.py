"""The App Service managed-identity endpoint, played locally.

Protocol (as on Azure Functions): `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<aud>[&client_id=]`
with header `X-IDENTITY-HEADER: {IDENTITY_HEADER}`; the answer is JSON with `access_token`, `expires_on`
(epoch seconds), `resource`, `token_type`, `client_id`.

Tokens are JWT-shaped and HS256-signed with a key only this process knows, so the simulator can tell its own
tokens from anything else. Azurite (`--oauth basic`) checks the claims and not the signature, exactly as the
product's storage clients need: `aud` = https://storage.azure.com, `iss` = https://sts.windows.net/<tenant>/.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

ARM_AUDIENCES = frozenset(
    {
        "https://management.azure.com",
        "https://management.core.windows.net",
        "https://management.azure.com/",
        "https://management.core.windows.net/",
    }
)
STORAGE_AUDIENCE = "https://storage.azure.com"
# Microsoft Graph (the product asks for `https://graph.microsoft.com/.default`); its tokens carry the application
# permissions granted to the identity as the `roles` claim, which Graph checks (see graph.py).
GRAPH_AUDIENCES = frozenset({"https://graph.microsoft.com", "https://graph.microsoft.com/"})
# Key Vault (the package signing key, devtools/keyvault.py): `https://vault.azure.net/.default`.
VAULT_AUDIENCES = frozenset({"https://vault.azure.net", "https://vault.azure.net/"})
KNOWN_AUDIENCES = (
    ARM_AUDIENCES | GRAPH_AUDIENCES | VAULT_AUDIENCES | {STORAGE_AUDIENCE, STORAGE_AUDIENCE + "/"}
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def normalise_resource(resource: str) -> str:
    """`https://storage.azure.com/.default` -> `https://storage.azure.com` (scope to audience)."""
    if resource.endswith("/.default"):
        resource = resource[: -len("/.default")]
    return resource


class TokenError(Exception):
    """A bearer token that this issuer did not mint, or that no longer holds."""


@dataclass
class TokenIssuer:
    """Mints and checks the local managed identity's tokens."""

    tenant_id: str
    principal_id: str  # object id of the Function App's managed identity
    client_id: str  # client (application) id of the user-assigned identity
    header_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    lifetime_seconds: int = 3600
    # Application permissions (app roles) granted on Microsoft Graph; a Graph token carries them in `roles`.
    graph_roles: tuple[str, ...] = ("User.Read.All",)
    _key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    issued: int = 0

    def mint(self, resource: str, now: float | None = None) -> dict[str, Any]:
        aud = normalise_resource(resource)
        if aud not in KNOWN_AUDIENCES:
            raise TokenError(f"unknown resource {resource!r}")
        now = time.time() if now is None else now
        claims = {
            "aud": aud,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": int(now),
            "nbf": int(now) - 60,
            "exp": int(now) + self.lifetime_seconds,
            "oid": self.principal_id,
            "sub": self.principal_id,
            "tid": self.tenant_id,
            "appid": self.client_id,
            "idtyp": "app",
            "jti": secrets.token_hex(8),
        }
        if aud in GRAPH_AUDIENCES:
            claims["roles"] = list(self.graph_roles)
        token = self._sign(claims)
        self.issued += 1
        return {
            "access_token": token,
            "expires_on": str(claims["exp"]),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": self.client_id,
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest()
        return f"{header}.{body}.{_b64(sig)}"

    def verify(self, token: str, audiences: frozenset[str], now: float | None = None) -> dict[str, Any]:
        """The claims of a token this issuer minted for one of `audiences`; raise TokenError otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenError("malformed token")
        expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            signature = _unb64(parts[2])
            claims: dict[str, Any] = json.loads(_unb64(parts[1]))
        except ValueError as exc:
            raise TokenError("malformed token") from exc
        if not hmac.compare_digest(expected, signature):
            raise TokenError("signature does not verify")
        now = time.time() if now is None else now
        if claims.get("aud") not in audiences:
            raise TokenError(f"wrong audience {claims.get('aud')!r}")
        if not claims.get("nbf", 0) <= now < claims.get("exp", 0):
            raise TokenError("token expired or not yet valid")
        return claims

    def answer(self, query: dict[str, str], header_value: str | None) -> tuple[int, dict[str, Any]]:
        """The identity endpoint's answer (status, JSON body) for one GET."""
        if header_value != self.header_secret:
            return 401, {"statusCode": 401, "message": "X-IDENTITY-HEADER missing or wrong"}
        if query.get("api-version") != "2019-08-01":
            return 400, {"statusCode": 400, "message": "api-version 2019-08-01 is required"}
        client_id = query.get("client_id")
        if client_id and client_id != self.client_id:
            return 400, {"statusCode": 400, "message": f"no identity with client_id {client_id}"}
        resource = query.get("resource", "")
        try:
            return 200, self.mint(resource)
        except TokenError as exc:
            return 400, {"statusCode": 400, "message": str(exc)}


class IdentityEndpoint:
    """The managed-identity endpoint as a small HTTP server on 127.0.0.1 (plain http, as on App Service)."""

    def __init__(self, issuer: TokenIssuer, port: int = 0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qsl, urlsplit

        outer = self
        self.issuer = issuer
        self.requests: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                if parts.path != "/msi/token":
                    status, body = 404, {"statusCode": 404, "message": "not found"}
                else:
                    status, body = issuer.answer(query, self.headers.get("X-IDENTITY-HEADER"))
                outer.requests.append({"resource": query.get("resource", ""), "status": str(status)})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/msi/token"

    def environment(self) -> dict[str, str]:
        """The settings the App Service platform would give the Function App."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.issuer.header_secret}

    def start(self) -> IdentityEndpoint:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
