"""The later check of a workspace erasure.

A purged and a soft-deleted workspace both answer 404: no operation of the published contract lists, reads or
recovers a soft-deleted workspace (azure-rest-api-specs, stable/2025-12-01/workspaceRP.json; the portal's
"Recently deleted" view does [learn.microsoft.com/azure/machine-learning/concept-soft-delete]). What a later
check can observe is whether the workspace answers again (recovered, or re-created under the name). It records
each observation with its time on the request (links.workspaceErasure) and in the audit trail, and ends: for a
purge, at the first check that still sees 404; for a soft delete, at the first check after recoverableUntil
(the service then purges it; that, too, is not observable); at once when the workspace answers again, which also
turns a `completed` request into `completed_with_errors` with the reason (the erasure no longer holds).
erasure-record.json itself is not rewritten: its sha-256 is pinned in the manifest and the package.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import Any

from shared.aml.catalog import ARM_API_VERSION, ENDPOINTS
from shared.aml.client import AmlError
from shared.core.model import TERMINAL_REQUEST, DsrRequest, iso, utcnow
from shared.evidence import audit
from shared.lifecycle.submission import workspace_of
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError
from shared.tasks.workspace_delete import gone_outcome

log = logging.getLogger(__name__)

WORKSPACE_RECHECK_HOURS = 24
WORKSPACE_CHECKED = "workspace-checked"


def follow_workspace_erasures(request: DsrRequest, record: dict[str, Any]) -> None:
    """Note on the request (links.workspaceErasure) each workspace the erasure record shows gone, with its
    first check due in WORKSPACE_RECHECK_HOURS."""
    due = iso(utcnow() + dt.timedelta(hours=WORKSPACE_RECHECK_HOURS))
    follow = request.links.setdefault("workspaceErasure", {})
    for item in record.get("items", []):
        if item.get("family") != "workspace" or not gone_outcome(str(item.get("outcome"))):
            continue
        follow.setdefault(
            item["workspace"],
            {
                "outcome": item["outcome"],
                "forceToPurge": bool(item.get("forceToPurge")),
                "recoverableUntil": item.get("recoverableUntil"),
                "verifiedAt": (item.get("verification") or {}).get("at"),
                "checks": [],
                "nextCheckAt": due,
                "final": False,
            },
        )
    if not follow:
        request.links.pop("workspaceErasure", None)


def _observe_workspace(rt: Runtime, arm_id: str) -> dict[str, Any]:
    """Read the workspace (E2): when, the HTTP status, and its provisioning state or error code."""
    ws = workspace_of(arm_id)
    url = rt.settings.arm_base_url + ENDPOINTS["E2"].render(**ws.placeholders())
    at = iso(utcnow())
    try:
        body = rt.aml.get_json(url, params={"api-version": ARM_API_VERSION})
    except AmlError as exc:
        return {"at": at, "status": exc.status, "code": exc.code}
    state = (body.get("properties") or {}).get("provisioningState")
    return {"at": at, "status": 200, "provisioningState": state}


def recheck_workspace_erasures(rt: Runtime, now: dt.datetime | None = None) -> dict[str, int]:
    """Timer: read each erased workspace again when its check is due; record what was seen (see the module
    docstring). At-least-once safe: a check is a read; a run that loses the race to save only adds one more
    observation."""
    now = now or utcnow()
    counts = {"checked": 0, "visible": 0, "final": 0}
    for status in sorted(TERMINAL_REQUEST):
        for request in rt.store.requests_with_status(status):
            follow = request.links.get("workspaceErasure") or {}
            due = [
                (arm_id, state)
                for arm_id, state in sorted(follow.items())
                if not state.get("final") and dt.datetime.fromisoformat(state["nextCheckAt"]) <= now
            ]
            for arm_id, state in due:
                seen = _observe_workspace(rt, arm_id)
                counts["checked"] += 1
                state["checks"] = [*state.get("checks", []), seen][-20:]
                until = state.get("recoverableUntil")
                if seen["status"] == 200:
                    state["outcome"] = (
                        f"visible again at {seen['at']}: the workspace was recovered or re-created after the "
                        "erasure; its data must be erased again"
                    )
                    state["final"] = True
                    counts["visible"] += 1
                    request.errors.append(
                        {"task": None, "family": "workspace", "workspace": arm_id, "reason": state["outcome"]}
                    )
                    if request.status == "completed":  # the erasure record no longer holds: say so
                        request.status = "completed_with_errors"
                elif seen["status"] == 404 and state.get("forceToPurge"):
                    state["confirmedAt"] = seen["at"]
                    state["note"] = (
                        "still 404 after the purge; the API shows nothing more (a purged and a soft-deleted "
                        "workspace answer alike)"
                    )
                    state["final"] = True
                elif seen["status"] == 404 and until and dt.datetime.fromisoformat(until) <= now:
                    state["outcome"] = (
                        f"soft-deleted; its retention ended {until}, when Azure ML purges it (not observable: "
                        f"404 before and after; last seen 404 at {seen['at']})"
                    )
                    state["final"] = True
                if state.get("final"):
                    counts["final"] += 1
                else:
                    later = now + dt.timedelta(hours=WORKSPACE_RECHECK_HOURS)
                    if until and seen["status"] == 404:
                        later = min(later, dt.datetime.fromisoformat(until) + dt.timedelta(minutes=1))
                    state["nextCheckAt"] = iso(later)
                audit.record(
                    rt,
                    request.id,
                    "workflow.workspace-check",
                    WORKSPACE_CHECKED,
                    None,
                    {"workspace": arm_id, **seen, "outcome": state["outcome"], "final": state["final"]},
                )
            if due:
                request.updated_at = utcnow()
                with contextlib.suppress(ConcurrencyError):
                    rt.store.update_request(request)
    if counts["checked"]:
        log.info("workspace erasure checks: %s", counts)
    return counts
