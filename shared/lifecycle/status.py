"""The status anyone allowed can poll: a request's state, progress per family, deadline, callback
deliveries and links (manifest, erasure record, the package while it is kept)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from shared.aml.catalog import FAMILY_TITLES
from shared.core import settings as names
from shared.core.model import DsrRequest, iso, utcnow
from shared.lifecycle import callbacks, deadlines
from shared.lifecycle.retention import package_expiry
from shared.runtime import Runtime


# -- status ---------------------------------------------------------------------------------------------------
def status_view(rt: Runtime, request: DsrRequest, base_url: str) -> dict[str, Any]:
    """The request as GET /api/v1/requests/{id} answers it (`base_url` builds the links)."""
    progress: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for task in rt.store.list_tasks(request.id):
        entry = progress[task.kind]
        entry["tasks"] += 1
        entry[task.status] += 1
        entry["recordsKept"] += int(task.stats.get("kept", 0))
        entry["recordsSeen"] += int(task.stats.get("seen", 0))
        entry["calls"] += int(task.stats.get("calls", 0))
    links = {"self": f"{base_url}/api/v1/requests/{request.id}"}
    if request.manifest_path:
        links["manifest"] = f"{names.EXPORT_CONTAINER}/{request.manifest_path}"
        if request.type == "erasure":
            links["erasureRecord"] = f"{names.EXPORT_CONTAINER}/{request.id}/erasure-record.json"
    expires = package_expiry(rt, request)
    if request.package_path and expires and utcnow() < expires and not request.links.get("packagePurgedAt"):
        links["package"] = f"{base_url}/api/v1/requests/{request.id}/package"
    view = {
        "id": request.id,
        "type": request.type,
        "status": request.status,
        "dryRun": request.dry_run,
        "reference": request.reference,
        "deleteWorkspace": request.delete_workspace,
        "submittedBy": request.submitted_by,
        "decision": request.decision,
        "source": request.source,
        "notBefore": iso(request.not_before),
        "exportFirst": request.export_first,
        "archiveUntil": iso(request.archive_until),
        "related": request.links,
        "receivedAt": iso(request.received_at),
        "updatedAt": iso(request.updated_at),
        "completedAt": iso(request.completed_at),
        "dueAt": iso(request.due_at),
        "progress": {
            name: {"title": FAMILY_TITLES.get(name, name), **dict(entry)}
            for name, entry in sorted(progress.items())
        },
        "deadline": deadlines.deadline_view(request),
        "packageExpiresAt": iso(expires),
        "errors": request.errors,
        "links": links,
    }
    if request.identity is not None:
        view["identity"] = request.identity  # the identifiers used, their sources, the kinds still missing
    if request.callback_url:
        view["callback"] = {
            "url": urlsplit(request.callback_url)._replace(query="", fragment="").geturl(),
            "deliveries": callbacks.history(rt, request.id),
        }
    return view
