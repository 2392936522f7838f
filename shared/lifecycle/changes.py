"""An audited change of a stored request: read it with its ETag, change it, write it back only if nobody
changed it meanwhile (if-match), and append the change to the request's audit trail. A write that meets a
concurrent change raises ConcurrencyError and records nothing; `change_request` then reads the request again
and applies the change afresh, so the stored row keeps both changes and the trail one entry per change written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.core.errors import NotFoundError
from shared.core.model import DsrRequest
from shared.core.principal import Principal
from shared.evidence import audit
from shared.runtime import Runtime
from shared.storage.store import ConcurrencyError


@dataclass(frozen=True)
class TrailEntry:
    """What the audit trail records of one change (see audit.record): who, what, why, and the details."""

    actor: Principal | dict[str, str] | str
    action: str
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


# Edits the request it is given and returns the entry to record, or None to leave the request as it is; it may
# raise to refuse the change. It is called again on a fresh read after a concurrent change.
Change = Callable[[DsrRequest], TrailEntry | None]


def save(rt: Runtime, request: DsrRequest, entry: TrailEntry) -> None:
    """Write the request if it is unchanged since it was read (else ConcurrencyError, nothing recorded), then
    append `entry` to its audit trail."""
    rt.store.update_request(request)
    audit.record(rt, request.id, entry.actor, entry.action, entry.reason, entry.details)


def change_request(
    rt: Runtime, request: str | DsrRequest, change: Change, attempts: int = 5
) -> tuple[DsrRequest, TrailEntry | None]:
    """Apply `change` to the request and save it (see `save`); on a concurrent change, read it again and retry,
    `attempts` times in all. `request` is an id, or the request as already read (with its ETag): the first
    attempt then changes that copy without reading it again.

    Returns the request as written and the entry recorded, or, when `change` left it (None), the request as
    read and None. Raises NotFoundError when the request does not exist, ConcurrencyError when every attempt
    met a concurrent change, and whatever `change` raises."""
    request_id = request.id if isinstance(request, DsrRequest) else request
    current = request if isinstance(request, DsrRequest) else None
    for _ in range(attempts):
        if current is None:
            current = rt.store.get_request(request_id)
            if current is None:
                raise NotFoundError(f"no request with id {request_id}")
        entry = change(current)
        if entry is None:
            return current, None
        try:
            save(rt, current, entry)
        except ConcurrencyError:
            current = None
            continue
        return current, entry
    raise ConcurrencyError(f"request {request_id} kept changing")
