"""A local stand-in for Microsoft Entra ID's token side: RSA signing keys, an https JWKS endpoint, and access
tokens for the API (valid, expired, for another audience, or forged), signed with locally generated keys."""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

TENANT_ID = "72f988bf-0000-4000-8000-00000000d5a1"  # the local stack's tenant (devtools/stack.py)
AUDIENCE = "api://aml-dsr-local"
ISSUER = f"https://login.microsoftonline.com/{TENANT_ID}/v2.0"
V1_ISSUER = f"https://sts.windows.net/{TENANT_ID}/"

# Token kinds the authorization matrix sends.
BAD_KINDS = ("none", "expired", "wrong-audience", "wrong-signature")


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}


@dataclass(frozen=True)
class Person:
    oid: str
    upn: str
    roles: tuple[str, ...]
    app: bool = False  # an application (client credentials) instead of a signed-in person


class IdentityProvider:
    """Keys, an https JWKS endpoint (`jwks_url`) and token minting."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.keys = [SigningKey("local-key-1")]
        self.rogue = SigningKey("local-key-1")  # same kid, a key nobody published: a forged signature
        self.hits = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != f"/{TENANT_ID}/discovery/v2.0/keys":
                    self.send_response(404)
                    self.end_headers()
                    return
                provider.hits += 1
                body = json.dumps({"keys": [k.jwk() for k in provider.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def jwks_url(self) -> str:
        return f"https://{self.host}/{TENANT_ID}/discovery/v2.0/keys"

    def settings(self) -> dict[str, str]:
        """The app settings that make the app validate this provider's tokens, and require them."""
        return {
            "DSR_REQUIRE_ENTRA_TOKEN": "true",
            "DSR_ENTRA_AUDIENCES": f"{AUDIENCE},00000000-0000-4000-8000-00000000a1d0",
            "DSR_ENTRA_JWKS_URL": self.jwks_url,
            "DSR_ENTRA_ALLOWED_HOSTS": self.host,
        }

    def start(self) -> IdentityProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- tokens ---------------------------------------------------------------------------------------------
    def claims(self, who: Person, **over: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": AUDIENCE,
            "iss": ISSUER,
            "iat": now - 10,
            "nbf": now - 10,
            "exp": now + 3600,
            "tid": TENANT_ID,
            "oid": who.oid,
            "sub": who.oid,
            "roles": list(who.roles),
            "ver": "2.0",
            "uti": uuid.uuid4().hex,
        }
        if who.app:
            claims.update(azp="11111111-2222-4333-8444-555555555555", idtyp="app")
        else:
            claims.update(scp="user_impersonation", preferred_username=who.upn, name=who.upn.split("@")[0])
        claims.update(over)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, who: Person, kind: str = "valid", key: SigningKey | None = None, **over: Any) -> str:
        now = int(time.time())
        if kind == "expired":
            over = {"iat": now - 7200, "nbf": now - 7200, "exp": now - 600, **over}
        elif kind == "wrong-audience":
            over = {"aud": "https://management.azure.com", **over}
        elif kind == "not-yet-valid":
            over = {"nbf": now + 600, **over}
        signer = self.rogue if kind == "wrong-signature" else (key or self.keys[0])
        return jwt.encode(
            self.claims(who, **over), signer.private, algorithm="RS256", headers={"kid": signer.kid}
        )

    def headers(self, who: Person | None, kind: str = "valid") -> dict[str, str]:
        if who is None or kind == "none":
            return {}
        return {"Authorization": f"Bearer {self.token(who, kind)}"}


SUBMITTER = Person("a0000000-0000-4000-8000-00000000000a", "submitter@contoso.com", ("DSR.Submit",))
APPROVER = Person("b0000000-0000-4000-8000-00000000000b", "approver@contoso.com", ("DSR.Approve",))
READER = Person("c0000000-0000-4000-8000-00000000000c", "reader@contoso.com", ("DSR.Read",))
NOBODY = Person("d0000000-0000-4000-8000-00000000000d", "nobody@contoso.com", ())
OFFICER = Person(
    "e0000000-0000-4000-8000-00000000000e",
    "officer@contoso.com",
    ("DSR.Submit", "DSR.Approve", "DSR.Read"),
)
OFFICER_2 = Person(
    "f0000000-0000-4000-8000-00000000000f",
    "officer2@contoso.com",
    ("DSR.Submit", "DSR.Approve", "DSR.Read"),
)
AUTOMATION = Person(
    "90000000-0000-4000-8000-000000000009",
    "ticketing-app",
    ("DSR.Submit", "DSR.Approve", "DSR.Read"),
    app=True,
)
