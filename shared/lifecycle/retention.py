"""How long an export package is kept: served until DSR_PACKAGE_RETENTION_DAYS after its request ended, then
purged (the purge recorded on the request and in the audit trail)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

from azure.core.exceptions import ResourceNotFoundError

from shared.core.model import TERMINAL_REQUEST, DsrRequest, iso, utcnow
from shared.lifecycle.changes import TrailEntry, save
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError

log = logging.getLogger(__name__)


def package_expiry(rt: Runtime, request: DsrRequest) -> dt.datetime | None:
    """When the package stops being served: retention days after the request ended (the purge timer and the
    storage lifecycle rule then delete it)."""
    if not request.package_path or not request.completed_at:
        return None
    return request.completed_at + dt.timedelta(days=rt.settings.package_retention_days)


def purge_expired_packages(rt: Runtime) -> int:
    """Timer: delete the package of every request that ended more than DSR_PACKAGE_RETENTION_DAYS ago (the
    lifecycle rule in infra does the same by blob age; this one also records it on the request and in the audit
    trail). Returns how many packages were purged."""
    cutoff = utcnow() - dt.timedelta(days=rt.settings.package_retention_days)
    purged = 0
    for status in sorted(TERMINAL_REQUEST):
        for request in rt.store.requests_with_status(status):
            if (
                request.links.get("packagePurgedAt")
                or not request.completed_at
                or request.completed_at > cutoff
            ):
                continue
            blobs = [b.name for b in rt.storage.container.list_blobs(name_starts_with=f"{request.id}/")]
            for name in blobs:
                with contextlib.suppress(ResourceNotFoundError):
                    rt.storage.container.delete_blob(name)
            request.links["packagePurgedAt"] = iso(utcnow())
            details = {"files": len(blobs), "retentionDays": rt.settings.package_retention_days}
            try:
                save(rt, request, TrailEntry("workflow.purge", "package-purged", details=details))
            except ConcurrencyError:
                continue
            purged += 1
    if purged:
        log.info("purged %d expired export package(s)", purged)
    return purged
