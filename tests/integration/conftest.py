"""The keyless Runtime the integration tests share: Azurite over https, tokens from the managed-identity
endpoint, the product's storage objects created. `make_runtime(**settings)` builds one with extra settings
(names from shared.core.settings); `rt` is the plain one."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from azure.identity import ManagedIdentityCredential

from shared.core import settings as names
from shared.core.matching import Subject
from shared.core.model import DsrRequest, utcnow
from shared.core.settings import Settings
from shared.runtime import Runtime
from tests.conftest import APP_CLIENT_ID

MakeRuntime = Callable[..., Runtime]


@pytest.fixture
def make_runtime(azurite, identity_endpoint, tls, monkeypatch) -> MakeRuntime:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))
    for key, value in identity_endpoint.environment().items():
        monkeypatch.setenv(key, value)

    def make(ensure: bool = True, **extra: str) -> Runtime:
        settings = Settings.from_env(
            {
                names.STORAGE_BLOB_URI: azurite.url("blob"),
                names.STORAGE_QUEUE_URI: azurite.url("queue"),
                names.STORAGE_TABLE_URI: azurite.url("table"),
                names.IDENTITY_CLIENT_ID: APP_CLIENT_ID,
                names.PSEUDONYM_KEY: "test-key",
                **{getattr(names, key): value for key, value in extra.items()},
            }
        )
        runtime = Runtime.create(settings, ManagedIdentityCredential(client_id=APP_CLIENT_ID))
        if ensure:
            runtime.storage.ensure()
        return runtime

    return make


@pytest.fixture
def rt(make_runtime: MakeRuntime) -> Runtime:
    return make_runtime(PACKAGE_RETENTION_DAYS="30")


def running_request(rt: Runtime, stage: str = "done", **fields: Any) -> DsrRequest:
    """A stored export of one person in status `running` at `stage` (no tasks yet)."""
    request = DsrRequest(
        str(uuid.uuid4()),
        "export",
        Subject("0a1b2c3d-0000-4000-8000-000000000001"),
        {"workspaces": []},
        utcnow(),
        status="running",
        stage=stage,
        **fields,
    )
    rt.store.create_request(request)
    return request
