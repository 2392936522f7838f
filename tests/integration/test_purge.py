"""Export packages are purged after the retention period, and the purge is recorded."""

from __future__ import annotations

import datetime as dt
import uuid

from shared.core.matching import Subject
from shared.core.model import DsrRequest, utcnow
from shared.evidence import audit
from shared.lifecycle import retention
from shared.runtime import Runtime


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
    purged = retention.purge_expired_packages(rt)
    assert purged >= 1
    assert files(rt, old) == []
    assert len(files(rt, recent)) == 2
    stored = rt.store.get_request(old.id)
    assert stored is not None
    assert stored.links["packagePurgedAt"]
    assert [e.action for e in audit.trail(rt).entries(old.id)] == ["package-purged"]
    assert audit.verify(rt, old.id)["valid"] is True
    assert retention.purge_expired_packages(rt) == 0  # once
