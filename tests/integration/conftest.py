"""The keyless Runtime the integration tests share: Azurite over https, tokens from the managed-identity
endpoint, the product's storage objects created."""

from __future__ import annotations

import pytest
from azure.identity import ManagedIdentityCredential

from shared import settings as names
from shared.runtime import Runtime
from shared.settings import Settings
from tests.conftest import APP_CLIENT_ID


@pytest.fixture
def rt(azurite, identity_endpoint, tls, monkeypatch) -> Runtime:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))
    for key, value in identity_endpoint.environment().items():
        monkeypatch.setenv(key, value)
    settings = Settings.from_env(
        {
            names.STORAGE_BLOB_URI: azurite.url("blob"),
            names.STORAGE_QUEUE_URI: azurite.url("queue"),
            names.STORAGE_TABLE_URI: azurite.url("table"),
            names.IDENTITY_CLIENT_ID: APP_CLIENT_ID,
            names.PSEUDONYM_KEY: "test-key",
            names.PACKAGE_RETENTION_DAYS: "30",
        }
    )
    runtime = Runtime.create(settings, ManagedIdentityCredential(client_id=APP_CLIENT_ID))
    runtime.storage.ensure()
    return runtime
