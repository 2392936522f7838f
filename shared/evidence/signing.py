"""Signatures of the package documents: a detached JWS (RFC 7515, compact serialization, Appendix F) over the
bytes of manifest.json and of erasure-record.json, made with a Key Vault key the app holds.

The key is an EC P-256 key in Key Vault (DSR_SIGNING_KEY_ID, its versionless identifier). The app never holds
its private part: it reads the public part (`GET {key}?api-version=7.4`) and asks Key Vault to sign the SHA-256
digest of the JWS signing input (`POST {key}/{version}/sign`, alg ES256), with the managed identity's token for
DSR_KEY_VAULT_AUDIENCE; the Key Vault host must be on DSR_ALLOWED_HOSTS like every host the token goes to.
Locally devtools/keyvault.py answers the same two operations, so the code path is the same.

A signature is `<base64url(header)>..<base64url(signature)>`: the payload is the file itself, next to it in
the package (`manifest.json.jws` beside `manifest.json`). The header names the algorithm and the key version
(`kid`), and the package carries the public key (`signing-key.jwk.json`); an auditor should take the key from
the API route `GET /api/v1/signing-key` or from the operator, not only from the package (see `dsr verify`).
Key Vault answers an ES256 signature as R || S (64 bytes), the form JWS uses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from shared.core.outbound import AllowList
from shared.core.transport import TokenCredential, fixed_tls_verify
from shared.runtime import Runtime

API_VERSION: Final = "7.4"
ALGORITHM: Final = "ES256"
KEY_CACHE_SECONDS: Final = (
    3600.0  # the public part is read again after this long (a rotated key is picked up)
)
SIGNATURE_SUFFIX: Final = ".jws"
PUBLIC_KEY_NAME: Final = "signing-key.jwk.json"


class SigningError(RuntimeError):
    """Key Vault did not sign, or answered something that is not a valid signature with the key."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_of(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    """The P-256 public key of a JWK {kty: EC, crv: P-256, x, y}; ValueError for anything else."""
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("not an EC P-256 key")
    x, y = (int.from_bytes(b64url_decode(str(jwk[c])), "big") for c in ("x", "y"))
    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


def signing_input(header: dict[str, Any], payload: bytes) -> bytes:
    protected = b64url(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())
    return f"{protected}.{b64url(payload)}".encode()


def verify_detached(jws: str, payload: bytes, jwk: dict[str, Any]) -> dict[str, Any]:
    """The protected header of a detached ES256 JWS over `payload` that `jwk` verifies; ValueError naming what
    does not hold (form, algorithm, signature)."""
    parts = jws.strip().split(".")
    if len(parts) != 3 or parts[1]:
        raise ValueError("not a detached compact JWS (<header>..<signature>)")
    try:
        header = json.loads(b64url_decode(parts[0]))
        signature = b64url_decode(parts[2])
    except ValueError as exc:
        raise ValueError("the JWS header or signature is not base64url JSON") from exc
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        raise ValueError(f"the JWS algorithm is not {ALGORITHM}")
    if len(signature) != 64:
        raise ValueError("an ES256 signature is 64 bytes")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public_key_of(jwk).verify(der, f"{parts[0]}.{b64url(payload)}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise ValueError("the signature does not verify with the key") from exc
    return header


@dataclass
class _Key:
    jwk: dict[str, Any]  # the public JWK as published: kty, crv, x, y, kid (versioned), alg, use
    read_at: float


class KeyVaultSigner:
    """Signs with one Key Vault key through the Key Vault REST API and the managed identity's token."""

    def __init__(
        self,
        key_id: str,
        credential: TokenCredential,
        audience: str,
        allow: AllowList,
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        self.key_id = allow.check(key_id.rstrip("/"))  # nothing is sent to a host off the allow-list
        self.credential = credential
        self.audience = audience
        self.allow = allow
        self.timeout = timeout
        self.session = requests.Session()
        self._key: _Key | None = None
        self._lock = threading.Lock()

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        token = self.credential.get_token(self.audience).token
        response = self.session.request(
            method,
            self.allow.check(url),
            params={"api-version": API_VERSION},
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=self.timeout,
            verify=fixed_tls_verify() or True,
            allow_redirects=False,
        )
        if response.status_code != 200:
            raise SigningError(f"Key Vault answered {response.status_code} to {method} {url}")
        answer = response.json()
        if not isinstance(answer, dict):
            raise SigningError(f"Key Vault answered no JSON object to {method} {url}")
        return answer

    def public_jwk(self) -> dict[str, Any]:
        """The key's current public part as a JWK (its `kid` names the version), read at most hourly."""
        with self._lock:
            if self._key is None or time.monotonic() - self._key.read_at > KEY_CACHE_SECONDS:
                key = self._call("GET", self.key_id).get("key") or {}
                if not str(key.get("kid", "")).startswith(self.key_id + "/"):
                    raise SigningError("Key Vault answered another key than the one configured")
                jwk = {k: key[k] for k in ("kty", "crv", "x", "y") if k in key}
                public_key_of(jwk)  # an EC P-256 key, or ValueError
                self._key = _Key({**jwk, "kid": key["kid"], "alg": ALGORITHM, "use": "sig"}, time.monotonic())
            return dict(self._key.jwk)

    def sign(self, payload: bytes) -> str:
        """A detached compact JWS over `payload`, checked against the public key before it is returned."""
        jwk = self.public_jwk()
        header = {"alg": ALGORITHM, "kid": jwk["kid"]}
        data = signing_input(header, payload)
        answer = self._call(
            "POST", f"{jwk['kid']}/sign", {"alg": ALGORITHM, "value": b64url(hashlib.sha256(data).digest())}
        )
        jws = f"{data.split(b'.')[0].decode()}..{answer.get('value', '')}"
        try:
            verify_detached(jws, payload, jwk)
        except ValueError as exc:
            raise SigningError(f"Key Vault's signature does not hold: {exc}") from exc
        return jws


_signers: dict[tuple[int, str], KeyVaultSigner] = {}
_signers_lock = threading.Lock()


def signer(rt: Runtime) -> KeyVaultSigner | None:
    """This runtime's signer (one per process), or None when DSR_SIGNING_KEY_ID is not set."""
    key_id = rt.settings.signing_key_id
    if not key_id:
        return None
    with _signers_lock:
        cache_key = (id(rt.credential), key_id)
        if cache_key not in _signers:
            _signers[cache_key] = KeyVaultSigner(
                key_id,
                rt.credential,
                rt.settings.key_vault_audience,
                AllowList(rt.settings.allowed_hosts),
                timeout=(5.0, rt.settings.http_timeout_seconds),
            )
        return _signers[cache_key]


def signed_documents(rt: Runtime, documents: dict[str, bytes]) -> dict[str, bytes]:
    """The zip entries that sign `documents` (name -> bytes): `<name>.jws` for each, and the public key; {} when
    packages are not signed (DSR_SIGNING_KEY_ID empty)."""
    key = signer(rt)
    if key is None:
        return {}
    entries = {name + SIGNATURE_SUFFIX: key.sign(data).encode() for name, data in documents.items()}
    jwk = json.dumps(key.public_jwk(), indent=2, sort_keys=True).encode()
    return {**entries, PUBLIC_KEY_NAME: jwk}
