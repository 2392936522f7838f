"""The package signer (shared/evidence/signing.py) against the local Key Vault stand-in (devtools/keyvault.py):
the same REST calls as in Azure (GET key, POST sign) with the managed identity's token; the private key never
leaves the vault, the token goes only to an allow-listed host, and a token for another audience is refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from devtools.amlsim.identity import TokenIssuer
from devtools.keyvault import LocalKeyVault
from dsr_cli.verify import verify_detached as cli_verify
from shared.core.outbound import AllowList, DisallowedUrlError
from shared.evidence import signing

AUDIENCE = "https://vault.azure.net/.default"


class IssuerCredential:
    """The local managed identity, minting through the issuer the vault checks tokens with."""

    def __init__(self, issuer: TokenIssuer, audience: str | None = None) -> None:
        self.issuer, self.audience, self.scopes = issuer, audience, []

    def get_token(self, *scopes: str, **_: Any) -> Any:
        self.scopes.extend(scopes)
        minted = self.issuer.mint(self.audience or scopes[0])

        class Token:
            token = minted["access_token"]
            expires_on = int(minted["expires_on"])

        return Token()


@pytest.fixture(scope="module")
def vault(tls: tuple[Path, Path]) -> Iterator[LocalKeyVault]:
    issuer = TokenIssuer(tenant_id="t", principal_id="p", client_id="c")
    running = LocalKeyVault(issuer, *tls).start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def trust_local_tls(tls: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))


def signer_for(vault: LocalKeyVault, **credential: Any) -> signing.KeyVaultSigner:
    return signing.KeyVaultSigner(
        vault.key_id,
        IssuerCredential(vault.issuer, **credential),
        AUDIENCE,
        AllowList([urlsplit(vault.base_url).netloc]),
    )


def test_a_document_signed_through_key_vault_verifies_with_the_published_key_only(
    vault: LocalKeyVault,
) -> None:
    signer = signer_for(vault)
    vault.calls.clear()
    payload = json.dumps({"request": {"id": "r1"}, "auditChain": {"seq": 3, "mac": "ab" * 32}}).encode()

    jws = signer.sign(payload)
    jwk = signer.public_jwk()

    # A detached compact JWS: header..signature, ES256 with the key version as kid
    protected, empty, _ = jws.split(".")
    assert empty == ""
    header = json.loads(signing.b64url_decode(protected))
    assert header == {"alg": "ES256", "kid": f"{vault.key_id}/{vault.version}"}
    # The public key as published: no private part
    assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    assert jwk["kid"] == header["kid"]
    # It verifies with the app's and with the CLI's verifier, and not over other bytes
    assert signing.verify_detached(jws, payload, jwk) == header
    assert cli_verify(jws, payload, [jwk]) == header["kid"]
    with pytest.raises(ValueError, match="does not verify"):
        signing.verify_detached(jws, payload + b" ", jwk)
    # Key Vault was asked for the key once and for one signature, with a vault token
    assert [(m, p.rsplit("/", 1)[-1], s) for m, p, s in vault.calls] == [
        ("GET", vault.key_name, 200),
        ("POST", "sign", 200),
    ]
    assert signer.credential.scopes == [AUDIENCE, AUDIENCE]  # type: ignore[attr-defined]


def test_the_public_key_is_read_once_an_hour_not_per_signature(vault: LocalKeyVault) -> None:
    signer = signer_for(vault)
    vault.calls.clear()
    for n in range(3):
        signer.sign(f"document {n}".encode())
    assert [m for m, _, _ in vault.calls] == ["GET", "POST", "POST", "POST"]
    signer._key.read_at = time.monotonic() - signing.KEY_CACHE_SECONDS - 1  # type: ignore[union-attr]
    signer.sign(b"later")
    assert [m for m, _, _ in vault.calls][-2:] == ["GET", "POST"]


def test_a_vault_off_the_allow_list_gets_no_token(vault: LocalKeyVault) -> None:
    credential = IssuerCredential(vault.issuer)
    vault.calls.clear()
    with pytest.raises(DisallowedUrlError):
        signing.KeyVaultSigner(vault.key_id, credential, AUDIENCE, AllowList(["vault.example.net"]))
    assert (vault.calls, credential.scopes) == ([], [])


def test_a_token_for_another_audience_is_refused_and_nothing_is_signed(vault: LocalKeyVault) -> None:
    signer = signer_for(vault, audience="https://management.azure.com/.default")
    with pytest.raises(signing.SigningError, match="Key Vault answered 401"):
        signer.sign(b"payload")


def test_a_signature_key_vault_did_not_make_with_the_key_is_refused(
    vault: LocalKeyVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    signer = signer_for(vault)
    real = signer._call

    def tampered(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = real(method, url, body)
        if method == "POST":
            answer["value"] = signing.b64url(bytes(64))
        return answer

    monkeypatch.setattr(signer, "_call", tampered)
    with pytest.raises(signing.SigningError, match="does not hold"):
        signer.sign(b"payload")
