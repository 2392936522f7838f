"""Token validation in the app (shared/edge/auth.py) against the local identity provider, in process: signature,
algorithm, key id and rollover, issuer, audience, tenant, expiry, not-before; the JWKS URL's allow-list; how a
token and the function key combine when tokens are not required."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import azure.functions as func
import jwt
import pytest

from shared.core.errors import ForbiddenError, ServiceUnavailableError, UnauthorizedError
from shared.core.outbound import AllowList, DisallowedUrlError
from shared.core.principal import ENTRA_APP, ENTRA_USER, FUNCTION_KEY_PRINCIPAL
from shared.core.settings import Settings
from shared.edge import auth, http_api
from shared.edge.auth import JwksCache, TokenValidator
from shared.edge.routes import route_for
from tests.security.idp import (
    AUDIENCE,
    AUTOMATION,
    OFFICER,
    READER,
    TENANT_ID,
    V1_ISSUER,
    IdentityProvider,
    SigningKey,
)

BASE = {
    "AzureWebJobsStorage__blobServiceUri": "https://127.0.0.1:1/devstoreaccount1",
    "AzureWebJobsStorage__queueServiceUri": "https://127.0.0.1:2/devstoreaccount1",
    "AzureWebJobsStorage__tableServiceUri": "https://127.0.0.1:3/devstoreaccount1",
    "DSR_PSEUDONYM_KEY": "test",
    "DSR_TENANT_ID": TENANT_ID,
}


def settings_for(idp: IdentityProvider, **extra: str) -> Settings:
    return Settings.from_env({**BASE, **idp.settings(), **extra})


@pytest.fixture(autouse=True)
def trust_local_tls(tls, monkeypatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))


@pytest.fixture
def validator(idp: IdentityProvider) -> TokenValidator:
    return TokenValidator.from_settings(settings_for(idp))


def _unauthorized(validator: TokenValidator, token: str) -> str:
    with pytest.raises(UnauthorizedError) as caught:
        validator.principal(token)
    assert caught.value.headers["WWW-Authenticate"].startswith(
        'Bearer realm="aml-dsr", error="invalid_token"'
    )
    return caught.value.detail


def test_a_valid_token_names_the_person_and_their_roles(idp, validator) -> None:
    principal = validator.principal(idp.token(OFFICER))
    assert (principal.id, principal.name, principal.source) == (OFFICER.oid, OFFICER.upn, ENTRA_USER)
    assert principal.roles == frozenset(OFFICER.roles)
    assert principal.is_person
    app = validator.principal(idp.token(AUTOMATION))
    assert app.source == ENTRA_APP
    assert not app.is_person  # an application can never be the distinct approver of a workspace deletion


def test_a_v1_token_of_the_tenant_is_accepted_and_the_second_audience_too(idp, validator) -> None:
    assert validator.principal(idp.token(READER, iss=V1_ISSUER)).id == READER.oid
    second = "00000000-0000-4000-8000-00000000a1d0"
    assert validator.principal(idp.token(READER, aud=second)).id == READER.oid


@pytest.mark.parametrize(
    ("kind", "over", "detail"),
    [
        ("expired", {}, "expired"),
        ("not-yet-valid", {}, "not valid yet"),
        ("wrong-audience", {}, "not meant for this API"),
        ("wrong-signature", {}, "signature"),
        ("valid", {"iss": "https://login.microsoftonline.com/another-tenant/v2.0"}, "not from this tenant"),
        ("valid", {"tid": "00000000-0000-4000-8000-000000000bad"}, "not from this tenant"),
        ("valid", {"oid": None}, "object id"),
        ("valid", {"exp": None}, "exp"),
        ("valid", {"nbf": None}, "nbf"),
    ],
)
def test_tokens_that_must_not_pass(idp, validator, kind: str, over: dict[str, Any], detail: str) -> None:
    assert detail in _unauthorized(validator, idp.token(OFFICER, kind, **over))


def test_algorithm_tricks_are_refused(idp, validator) -> None:
    claims = idp.claims(OFFICER)
    # alg none: no signature at all
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "local-key-1"}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=")
    assert "RS256" in _unauthorized(validator, f"{header.decode()}.{payload.decode()}.")
    # HS256 keyed with the public key (the classic key-confusion attack)
    public_pem = idp.keys[0].jwk()["n"].encode()
    forged = jwt.encode(claims, public_pem, algorithm="HS256", headers={"kid": "local-key-1"})
    assert "RS256" in _unauthorized(validator, forged)
    # no kid, and garbage
    no_kid = jwt.encode(claims, idp.keys[0].private, algorithm="RS256")
    assert "kid" in _unauthorized(validator, no_kid)
    assert "not a JWT" in _unauthorized(validator, "not-a-token")


def test_an_unknown_kid_fetches_the_keys_again_once_then_is_rate_limited(idp) -> None:
    validator = TokenValidator.from_settings(settings_for(idp))
    validator.principal(idp.token(READER))
    assert validator.jwks.fetches == 1
    # Key rollover: the tenant publishes a new key and signs with it; the first such token refreshes the cache
    new_key = SigningKey("local-key-2")
    idp.keys.append(new_key)
    try:
        assert validator.principal(idp.token(READER, key=new_key)).id == READER.oid
        assert validator.jwks.fetches == 2
        validator.principal(idp.token(READER, key=new_key))
        assert validator.jwks.fetches == 2  # cached now
        # A flood of tokens naming unknown kids right after costs no fetch (one per interval at most)
        for n in range(20):
            stranger = SigningKey(f"unknown-{n}", private=idp.rogue.private)
            _unauthorized(validator, idp.token(READER, key=stranger))
        assert validator.jwks.fetches == 2
    finally:
        idp.keys.remove(new_key)


def test_the_jwks_url_must_pass_its_allow_list(idp) -> None:
    with pytest.raises(DisallowedUrlError):
        JwksCache(idp.jwks_url.replace("https://", "http://"), AllowList([idp.host]))
    with pytest.raises(DisallowedUrlError):
        JwksCache(idp.jwks_url, AllowList(["login.microsoftonline.com"]))
    with pytest.raises(DisallowedUrlError):
        JwksCache("https://user@login.microsoftonline.com/t/keys", AllowList(["login.microsoftonline.com"]))
    # The production default is the tenant's key set on login.microsoftonline.com, https only
    defaults = Settings.from_env(BASE)
    assert defaults.entra_jwks_url.replace("{tenant}", TENANT_ID) == (
        f"https://login.microsoftonline.com/{TENANT_ID}/discovery/v2.0/keys"
    )
    assert AllowList(defaults.entra_allowed_hosts).allows(
        defaults.entra_jwks_url.replace("{tenant}", TENANT_ID)
    )


def test_an_unreachable_identity_provider_is_a_503_not_a_401(idp, tls) -> None:
    settings = settings_for(
        idp, DSR_ENTRA_JWKS_URL=f"https://127.0.0.1:9/{TENANT_ID}/keys", DSR_ENTRA_ALLOWED_HOSTS="127.0.0.1:9"
    )
    with pytest.raises(ServiceUnavailableError):
        TokenValidator.from_settings(settings).principal(idp.token(READER))


def _request(headers: dict[str, str]) -> func.HttpRequest:
    return func.HttpRequest("GET", "https://app/api/v1/requests/x", headers=headers, body=b"")


def test_tokens_optional_a_presented_token_is_still_validated_and_its_roles_enforced(idp) -> None:
    settings = settings_for(idp, DSR_REQUIRE_ENTRA_TOKEN="false")
    # No token: the function-key holder, who may call every route
    principal = auth.authenticate(settings, _request({}))
    assert principal.source == FUNCTION_KEY_PRINCIPAL
    auth.authorize(settings, principal, route_for(http_api.approve).roles)
    # A bad token is never ignored
    with pytest.raises(UnauthorizedError):
        auth.authenticate(settings, _request(idp.headers(OFFICER, "expired")))
    # A good one counts with its roles
    reader = auth.authenticate(settings, _request(idp.headers(READER)))
    with pytest.raises(ForbiddenError):
        auth.authorize(settings, reader, route_for(http_api.approve).roles)


def test_tokens_optional_and_no_audience_a_presented_token_is_refused_not_ignored(idp) -> None:
    # Given tokens optional and the tenant known but no audience: the app cannot validate a token
    settings = Settings.from_env(BASE)
    assert not auth.token_validation_configured(settings)
    # Then a caller presenting one is refused (ignoring it would run the call as the function-key holder)
    with pytest.raises(UnauthorizedError, match="validates no bearer tokens"):
        auth.authenticate(settings, _request(idp.headers(READER)))
    # while a caller without one is the function-key holder, as before
    assert auth.authenticate(settings, _request({})).source == FUNCTION_KEY_PRINCIPAL
    # and behind Easy Auth (trusted headers), which validated the token itself, the person it names calls
    easy = Settings.from_env({**BASE, "DSR_TRUST_EASYAUTH_HEADERS": "true"})
    person = {"X-MS-CLIENT-PRINCIPAL-ID": OFFICER.oid, **idp.headers(OFFICER)}
    assert auth.authenticate(easy, _request(person)).id == OFFICER.oid


def test_tokens_required_easy_auth_headers_and_the_key_alone_are_not_enough(idp) -> None:
    settings = settings_for(idp, DSR_TRUST_EASYAUTH_HEADERS="true")
    easyauth = {"X-MS-CLIENT-PRINCIPAL-ID": OFFICER.oid, "X-MS-CLIENT-PRINCIPAL-NAME": OFFICER.upn}
    with pytest.raises(UnauthorizedError) as caught:
        auth.authenticate(settings, _request(easyauth))
    assert caught.value.headers["WWW-Authenticate"] == 'Bearer realm="aml-dsr"'
    with pytest.raises(UnauthorizedError):
        auth.authenticate(settings, _request({"Authorization": "Bearer "}))


def test_tokens_required_without_configuration_fails_closed(idp) -> None:
    settings = Settings.from_env({**BASE, "DSR_REQUIRE_ENTRA_TOKEN": "true"})
    with pytest.raises(http_api.ProblemError) as caught:
        auth.authenticate(settings, _request(idp.headers(OFFICER)))
    assert caught.value.status == 500


def test_token_lifetime_leeway_is_one_minute(idp, validator) -> None:
    now = int(time.time())
    assert validator.principal(idp.token(READER, exp=now - 30)).id == READER.oid
    _unauthorized(validator, idp.token(READER, exp=now - 90))
    assert AUDIENCE in settings_for(idp).entra_audiences
