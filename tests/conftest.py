"""Fixtures shared by every tier: the TLS certificate, the managed-identity endpoint and keyless Azurite.

Tests in tests/unit use none of these (no I/O). Integration and end-to-end tests get a real Azurite on free
ports, reached with bearer tokens from the local managed-identity endpoint, exactly as the app in Azure is.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.amlsim.identity import IdentityEndpoint, TokenIssuer
from devtools.azurite import Azurite
from devtools.certs import ensure_certificate

ROOT = Path(__file__).resolve().parent.parent
TENANT_ID = "72f988bf-0000-4000-8000-00000000d5a1"
APP_PRINCIPAL_ID = "5b0c2a8e-1111-4a4b-9c9d-0000000000a1"
APP_CLIENT_ID = "9d4e1f20-2222-4c3b-8e8f-0000000000c1"


@pytest.fixture(scope="session")
def tls() -> tuple[Path, Path]:
    """(cert.pem, key.pem) for Azurite and the simulator; trusted through REQUESTS_CA_BUNDLE."""
    return ensure_certificate(ROOT / ".local" / "tls")


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer(tenant_id=TENANT_ID, principal_id=APP_PRINCIPAL_ID, client_id=APP_CLIENT_ID)


@pytest.fixture(scope="session")
def identity_endpoint(issuer: TokenIssuer) -> Iterator[IdentityEndpoint]:
    """The App Service managed-identity endpoint; its settings are in os.environ for azure-identity."""
    endpoint = IdentityEndpoint(issuer).start()
    saved = {k: os.environ.get(k) for k in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")}
    os.environ.update(endpoint.environment())
    yield endpoint
    endpoint.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def azurite(tls: tuple[Path, Path]) -> Iterator[Azurite]:
    """One keyless Azurite (https, --oauth basic) for the session, on free ports, in memory."""
    cert, key = tls
    with Azurite(cert, key) as instance:
        yield instance
