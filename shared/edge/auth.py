"""Who may call which route: Entra ID bearer tokens validated in the app, app roles, and the function key.

Two layers, both always on in Azure:
- The Functions host checks the function key (`x-functions-key`, auth level FUNCTION) before the code runs.
- The app validates an Entra ID access token (`Authorization: Bearer ...`) itself: RS256 signature with a key
  of the tenant's JWKS (cached; fetched again once when a token names an unknown `kid`), issuer (the tenant's
  v2.0 or v1.0 issuer), audience (the API's app registration), expiry and not-before (60 s leeway), tenant.
  The app roles of the token (`roles`) decide what it may do: `DSR.Submit`, `DSR.Approve`, `DSR.Read`.

How they combine (DSR_REQUIRE_ENTRA_TOKEN):
- `true` (production): every route but the OpenAPI document needs a valid bearer token holding one of the
  route's roles; the function key only gets the call through the host. Easy Auth headers are ignored.
- `false` (default, and the local stack): a bearer token, when one is sent and validation is configured
  (DSR_TENANT_ID and DSR_ENTRA_AUDIENCES), is validated and its roles enforced exactly as above: a token is
  never ignored once presented; when validation is not configured, a presented token is refused (401) rather
  than ignored, unless Easy Auth (trusted headers) validated it and names the caller. Without a token, the caller
  is the function-key holder (or the Easy Auth person, see principal.py) and may use every route: the function
  key is the credential of a trusted system.

Failures answer problem+json: 401 with `WWW-Authenticate: Bearer ...` (no, expired, foreign or forged token),
403 naming the roles the route needs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import jwt
import requests

from shared.core.errors import ForbiddenError, ProblemError, ServiceUnavailableError, UnauthorizedError
from shared.core.outbound import AllowList, DisallowedUrlError
from shared.core.principal import EASYAUTH, ENTRA_APP, ENTRA_USER, Principal, from_headers
from shared.core.settings import Settings

log = logging.getLogger(__name__)

ALGORITHMS = ["RS256"]  # what Entra ID signs access tokens with; never "none", never a shared secret
LEEWAY_SECONDS = 60
JWKS_TTL_SECONDS = 24 * 3600
JWKS_FORCED_REFRESH_INTERVAL = 300  # an unknown kid refetches at most this often (no amplification)


# -- JWKS -----------------------------------------------------------------------------------------------------
class JwksError(Exception):
    """The tenant's signing keys could not be fetched."""


class JwksCache:
    """The tenant's token-signing keys by `kid`, cached for a day; an unknown `kid` fetches them again (key
    rollover), at most once per JWKS_FORCED_REFRESH_INTERVAL. The URL passes the allow-list (https, exact host)
    before every fetch; redirects are not followed."""

    def __init__(
        self,
        url: str,
        allow_list: AllowList,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.0, 5.0),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        allow_list.check(url)  # refuse a bad setting at once
        self.url = url
        self.allow_list = allow_list
        self.session = session or requests.Session()
        self.timeout = timeout
        self.clock = clock
        self.fetches = 0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._forced_at: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK | None:
        with self._lock:
            now = self.clock()
            stale = self._fetched_at is None or now - self._fetched_at > JWKS_TTL_SECONDS
            if stale:
                self._fetch(now)
            elif kid not in self._keys and (
                self._forced_at is None or now - self._forced_at > JWKS_FORCED_REFRESH_INTERVAL
            ):
                self._forced_at = now
                self._fetch(now)
            return self._keys.get(kid)

    def _fetch(self, now: float) -> None:
        try:
            self.allow_list.check(self.url)
            response = self.session.get(self.url, timeout=self.timeout, allow_redirects=False)
            self.fetches += 1
            if response.status_code != 200:
                raise JwksError(f"the JWKS endpoint answered {response.status_code}")
            document = response.json()
        except (requests.RequestException, ValueError, DisallowedUrlError) as exc:
            if self._keys:  # keep serving the keys we have; try again on the next unknown kid
                log.warning("JWKS refresh failed, keeping %d cached keys: %s", len(self._keys), exc)
                return
            raise JwksError(str(exc)) from exc
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(entry, dict) or entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
                continue
            kid = entry.get("kid")
            if not isinstance(kid, str) or not kid:
                continue
            try:
                keys[kid] = jwt.PyJWK(entry, algorithm="RS256")
            except jwt.PyJWTError:
                continue
        self._keys = keys
        self._fetched_at = now


# -- tokens ---------------------------------------------------------------------------------------------------
@dataclass
class TokenValidator:
    tenant_id: str
    audiences: tuple[str, ...]
    issuers: tuple[str, ...]
    jwks: JwksCache

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenValidator:
        tenant = settings.tenant_id or ""
        return cls(
            tenant_id=tenant,
            audiences=settings.entra_audiences,
            issuers=tuple(i.replace("{tenant}", tenant) for i in settings.entra_issuers),
            jwks=JwksCache(
                settings.entra_jwks_url.replace("{tenant}", tenant), AllowList(settings.entra_allowed_hosts)
            ),
        )

    def principal(self, token: str) -> Principal:
        """The caller a valid access token names; UnauthorizedError for any token that is not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise UnauthorizedError("the bearer token is not a JWT", error_code="invalid_token") from None
        if header.get("alg") not in ALGORITHMS:
            raise UnauthorizedError("the token is not signed with RS256", error_code="invalid_token")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise UnauthorizedError("the token names no signing key (kid)", error_code="invalid_token")
        try:
            key = self.jwks.key(kid)
        except JwksError as exc:
            log.error("cannot fetch the tenant's signing keys: %s", exc)
            raise ServiceUnavailableError(
                "the identity provider's signing keys could not be fetched"
            ) from None
        if key is None:
            raise UnauthorizedError(
                "the token is signed by a key the tenant does not publish", error_code="invalid_token"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=ALGORITHMS,
                audience=list(self.audiences),
                issuer=list(self.issuers),
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "nbf", "iat", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthorizedError("the token has expired", error_code="invalid_token") from None
        except jwt.ImmatureSignatureError:
            raise UnauthorizedError("the token is not valid yet", error_code="invalid_token") from None
        except jwt.InvalidAudienceError:
            raise UnauthorizedError(
                "the token is not meant for this API", error_code="invalid_token"
            ) from None
        except jwt.InvalidIssuerError:
            raise UnauthorizedError("the token is not from this tenant", error_code="invalid_token") from None
        except jwt.InvalidSignatureError:
            raise UnauthorizedError(
                "the token's signature is not valid", error_code="invalid_token"
            ) from None
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(f"the token is not valid: {exc}", error_code="invalid_token") from None
        if str(claims.get("tid", "")).lower() != self.tenant_id.lower():
            raise UnauthorizedError("the token is not from this tenant", error_code="invalid_token")
        oid = claims.get("oid")
        if not isinstance(oid, str) or not oid:
            raise UnauthorizedError("the token names no object id (oid)", error_code="invalid_token")
        roles = claims.get("roles") or []
        source = ENTRA_USER if claims.get("scp") else ENTRA_APP
        name = next(
            (
                str(claims[c])
                for c in ("preferred_username", "upn", "name", "azp", "appid")
                if isinstance(claims.get(c), str) and claims[c]
            ),
            oid,
        )
        return Principal(
            oid[:128], name[:256], source, frozenset(str(r) for r in roles if isinstance(r, str))
        )


_validators: dict[tuple[Any, ...], TokenValidator] = {}
_validators_lock = threading.Lock()


def validator(settings: Settings) -> TokenValidator:
    """One validator (and JWKS cache) per process and configuration."""
    key = (
        settings.tenant_id,
        settings.entra_audiences,
        settings.entra_issuers,
        settings.entra_jwks_url,
        settings.entra_allowed_hosts,
    )
    with _validators_lock:
        if key not in _validators:
            _validators[key] = TokenValidator.from_settings(settings)
        return _validators[key]


def token_validation_configured(settings: Settings) -> bool:
    return bool(settings.tenant_id and settings.entra_audiences)


def bearer_token(req: func.HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer` header; None without one; 401 for a malformed one."""
    value = req.headers.get("Authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token or len(token) > 16384:
        raise UnauthorizedError(
            "the Authorization header carries no usable token", error_code="invalid_request"
        )
    return token


def authenticate(settings: Settings, req: func.HttpRequest) -> Principal:
    """Who is calling (see the module docstring for how tokens and the function key combine)."""
    configured = token_validation_configured(settings)
    if settings.require_entra_token and not configured:
        log.error("DSR_REQUIRE_ENTRA_TOKEN is on but DSR_TENANT_ID or DSR_ENTRA_AUDIENCES is not set")
        raise ProblemError("the service's authentication is misconfigured; it was logged")
    token = bearer_token(req)
    if token is not None and configured:
        return validator(settings).principal(token)
    if settings.require_entra_token:
        raise UnauthorizedError("this API needs an Entra ID access token: Authorization: Bearer <token>")
    principal = from_headers(req, settings.trust_easyauth_headers)
    if token is not None and principal.source != EASYAUTH:
        # A token the app cannot validate (no DSR_TENANT_ID / DSR_ENTRA_AUDIENCES) is refused, never ignored:
        # ignoring it would run the call as the function-key holder. (Behind Easy Auth the platform has
        # validated it and says who the caller is.)
        raise UnauthorizedError(
            "this app validates no bearer tokens (DSR_TENANT_ID and DSR_ENTRA_AUDIENCES are not both set): "
            "call without an Authorization header"
        )
    return principal


def authorize(settings: Settings, principal: Principal, allowed: frozenset[str]) -> None:
    """403 unless the principal holds one of `allowed` (a function-key or Easy Auth caller holds all of them
    while DSR_REQUIRE_ENTRA_TOKEN is off: see the module docstring)."""
    if principal.source not in (ENTRA_USER, ENTRA_APP):
        if settings.require_entra_token:  # cannot happen: authenticate() admits tokens only
            raise ForbiddenError("this API needs an Entra ID access token")
        return
    if not principal.roles & allowed:
        raise ForbiddenError(f"this call needs one of the app roles {', '.join(sorted(allowed))}")
