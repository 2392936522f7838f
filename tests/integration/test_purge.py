"""Export packages are purged after the retention period, and the purge is recorded."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from azure.identity import ManagedIdentityCredential

from shared import audit, workflow
from shared import settings as names
from shared.matching import Subject
from shared.model import DsrRequest, utcnow
from shared.runtime import Runtime
from shared.settings import Settings
from tests.conftest import APP_CLIENT_ID


@pytest.fixture
def rt(azurite, identity_endpoint, tls, monkeypatch):
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


def ended(rt: Runtime, days_ago: float) -> DsrRequest:
    request = DsrRequest(
        str(uuid.uuid4()),
        "export",
        Subject("0a1b2c3d-0000-4000-8000-000000000001"),
        {"workspaces": []},
        utcnow() - dt.timedelta(days=days_ago + 1),
        status="completed",
    )
    request.completed_at = utcnow() - dt.timedelta(days=days_ago)
    rt.store.create_request(request)
    for name in ("manifest.json", "s/rg/ws/models.jsonl"):
        rt.storage.container.get_blob_client(f"{request.id}/{name}").upload_blob(b"{}", overwrite=True)
    return request


def files(rt: Runtime, request: DsrRequest) -> list[str]:
    return [b.name for b in rt.storage.container.list_blobs(name_starts_with=f"{request.id}/")]


def test_packages_older_than_the_retention_are_purged_and_recorded(rt):
    old, recent = ended(rt, 45), ended(rt, 5)
    purged = workflow.purge_expired_packages(rt)
    assert purged >= 1
    assert files(rt, old) == []
    assert len(files(rt, recent)) == 2
    stored = rt.store.get_request(old.id)
    assert stored is not None
    assert stored.links["packagePurgedAt"]
    assert [e.action for e in audit.trail(rt).entries(old.id)] == ["package-purged"]
    assert audit.verify(rt, old.id)["valid"] is True
    assert workflow.purge_expired_packages(rt) == 0  # once
