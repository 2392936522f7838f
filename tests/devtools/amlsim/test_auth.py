"""Bearer tokens: only the simulator issuer's ARM-audience tokens for the right tenant are accepted."""

from __future__ import annotations

import time

import pytest
from azure.identity import ManagedIdentityCredential

from devtools.amlsim import Simulator
from devtools.amlsim.identity import TokenIssuer

from .conftest import ARM_VERSION, R1, Client, ws_path


def workspace(client: Client) -> str:
    return client.url("arm", ws_path(*R1))


def test_valid_token_is_accepted_for_both_arm_audiences(client: Client, issuer: TokenIssuer) -> None:
    for audience in ("https://management.azure.com/.default", "https://management.core.windows.net/"):
        token = issuer.mint(audience)["access_token"]
        assert client.get(workspace(client), ARM_VERSION, token=token).status_code == 200


def test_missing_token_is_401_authentication_failed(client: Client) -> None:
    response = client.get(workspace(client), ARM_VERSION, token=None)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    not_bearer = client.get(
        workspace(client), ARM_VERSION, token=None, headers={"Authorization": "Basic eDp5"}
    )
    assert not_bearer.status_code == 401


@pytest.mark.parametrize("case", ["storage", "other-issuer", "garbage", "expired"])
def test_bad_tokens_are_401_invalid(client: Client, issuer: TokenIssuer, case: str) -> None:
    if case == "storage":
        token = issuer.mint("https://storage.azure.com/.default")["access_token"]
    elif case == "other-issuer":
        other = TokenIssuer(
            tenant_id=issuer.tenant_id, principal_id=issuer.principal_id, client_id=issuer.client_id
        )
        token = other.mint("https://management.azure.com")["access_token"]
    elif case == "garbage":
        token = "not.a.token"
    else:
        token = issuer.mint("https://management.azure.com", now=time.time() - 7200)["access_token"]
    for url in (
        workspace(client),
        client.url("experiments", "/history/v1.0" + ws_path(*R1) + "/experiments"),
    ):
        response = client.get(url, ARM_VERSION, token=token)
        assert response.status_code == 401
        expected = "ExpiredAuthenticationToken" if case == "expired" else "InvalidAuthenticationToken"
        assert response.json()["error"]["code"] == expected
        assert "WWW-Authenticate" in response.headers


def test_token_for_another_tenant_is_refused(client: Client, issuer: TokenIssuer) -> None:
    same_key = TokenIssuer(
        tenant_id="11111111-2222-4333-8444-555555555555",
        principal_id=issuer.principal_id,
        client_id=issuer.client_id,
        _key=issuer._key,
    )
    response = client.get(
        workspace(client), ARM_VERSION, token=same_key.mint("https://management.azure.com")["access_token"]
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "InvalidAuthenticationTokenTenant"


def test_real_managed_identity_credential_gets_a_token_from_the_simulator(
    client: Client, sim: Simulator, issuer: TokenIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in sim.identity_environment.items():
        monkeypatch.setenv(name, value)
    credential = ManagedIdentityCredential()
    try:
        access = credential.get_token("https://management.azure.com/.default")
    finally:
        credential.close()
    assert access.expires_on > time.time() + 600
    assert (
        issuer.verify(access.token, frozenset({"https://management.azure.com"}))["oid"] == issuer.principal_id
    )
    response = client.get(workspace(client), ARM_VERSION, token=access.token)
    assert response.status_code == 200
    assert sim.log[-1]["principal"] == issuer.principal_id
