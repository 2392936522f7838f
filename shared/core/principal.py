"""Who is calling: the principal recorded as submitter or approver.

Three sources (see docs/security.md, "Authentication"):
- `entra` / `entra-app`: an Entra ID bearer token validated in the app (shared/edge/auth.py): a signed-in person
  (a delegated token, with `scp`) or an application (an app-only token); its app roles come from `roles`.
- `easyauth`: App Service Authentication (Easy Auth) validates the caller's Entra ID token in front of the app
  and forwards who it is in `X-MS-CLIENT-PRINCIPAL` (base64 JSON) and `X-MS-CLIENT-PRINCIPAL-ID` / `-NAME`; it
  strips those headers from incoming requests, so they can be trusted only when Easy Auth is on. The setting
  DSR_TRUST_EASYAUTH_HEADERS says so; DSR_REQUIRE_ENTRA_TOKEN turns this source off.
- `function-key`: without either, every caller is the function-key holder: a system caller with no personal
  identity, which may submit and read but can never be the distinct approver a workspace deletion needs.
"""

from __future__ import annotations

import base64
import contextvars
import json
from dataclasses import dataclass
from typing import Any

import azure.functions as func

from shared.core.matching import canonical

FUNCTION_KEY_PRINCIPAL = "function-key"
EASYAUTH = "easyauth"
ENTRA_USER = "entra"
ENTRA_APP = "entra-app"
PERSON_SOURCES = frozenset({EASYAUTH, ENTRA_USER})


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    source: str  # "entra" | "entra-app" | "easyauth" | "function-key"
    roles: frozenset[str] = frozenset()

    @property
    def is_person(self) -> bool:
        return self.source in PERSON_SOURCES

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "source": self.source}

    def is_recorded_as(self, recorded: Any) -> bool:
        """Whether `recorded` (a principal id kept on a request) is this principal: ids are GUIDs (object ids)
        or names, compared in the canonical form identifiers are (an upper-case `oid` is the same person)."""
        return canonical(self.id) is not None and canonical(self.id) == canonical(recorded)


SYSTEM = Principal(FUNCTION_KEY_PRINCIPAL, "function key holder", FUNCTION_KEY_PRINCIPAL)


# The caller shared/edge/routes.handle authenticated (a validated token, Easy Auth or the function key) for the
# invocation running in this context; caller() answers it, so every handler records the same principal.
_authenticated: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("principal", default=None)


def set_authenticated(principal: Principal | None) -> contextvars.Token[Principal | None]:
    return _authenticated.set(principal)


def reset_authenticated(token: contextvars.Token[Principal | None]) -> None:
    _authenticated.reset(token)


def authenticated() -> Principal | None:
    return _authenticated.get()


def caller(req: func.HttpRequest, trust_easyauth_headers: bool) -> Principal:
    """The authenticated caller of this invocation; outside routes.handle, the Easy Auth person (when the
    headers are trusted) or the function-key holder."""
    authenticated = _authenticated.get()
    if authenticated is not None:
        return authenticated
    return from_headers(req, trust_easyauth_headers)


def from_headers(req: func.HttpRequest, trust_easyauth_headers: bool) -> Principal:
    if not trust_easyauth_headers:
        return SYSTEM
    principal_id = (req.headers.get("X-MS-CLIENT-PRINCIPAL-ID") or "").strip()
    name = (req.headers.get("X-MS-CLIENT-PRINCIPAL-NAME") or "").strip()
    roles: set[str] = set()
    encoded = req.headers.get("X-MS-CLIENT-PRINCIPAL")
    if encoded:
        try:
            claims: dict[str, Any] = json.loads(base64.b64decode(encoded))
        except ValueError:
            claims = {}
        for claim in claims.get("claims", []) if isinstance(claims, dict) else []:
            if claim.get("typ") in ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"):
                roles.add(str(claim.get("val")))
    if not principal_id:
        return SYSTEM
    return Principal(principal_id[:128], name[:256] or principal_id[:128], EASYAUTH, frozenset(roles))


# The app roles of the API's Entra ID app registration (infra/), checked by shared/edge/auth.py.
ROLE_SUBMIT = "DSR.Submit"
ROLE_APPROVE = "DSR.Approve"
ROLE_READ = "DSR.Read"
ALL_ROLES = frozenset({ROLE_SUBMIT, ROLE_APPROVE, ROLE_READ})
