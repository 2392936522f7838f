"""The product's records: a data subject request and the tasks it fans out into."""

from __future__ import annotations

import calendar
import datetime as dt
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from shared.core.matching import Subject

RequestType = Literal["export", "erasure"]
# (scheduled ->) awaiting_approval -> accepted -> running -> completed | completed_with_errors | failed
#                  \-> rejected                \-> cancelled (from any non-terminal status)
RequestStatus = Literal[
    "scheduled",
    "awaiting_approval",
    "accepted",
    "running",
    "completed",
    "completed_with_errors",
    "failed",
    "rejected",
    "cancelled",
]
TaskStatus = Literal["queued", "running", "done", "failed", "skipped"]
TERMINAL_REQUEST: Final = frozenset({"completed", "completed_with_errors", "failed", "rejected", "cancelled"})
OPEN_TASK: Final = ("queued", "running")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment else None


def new_request_id(now: dt.datetime | None = None) -> str:
    """A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Request ids are the Table
    partition keys, so listing requests in key order lists them oldest first."""
    millis = int((now or utcnow()).timestamp() * 1000)
    rand = int.from_bytes(secrets.token_bytes(10), "big")  # 80 random bits, 74 used
    value = (
        (millis & (2**48 - 1)) << 80
        | 0x7 << 76
        | (rand >> 68 & 0xFFF) << 64
        | 0b10 << 62
        | rand & (2**62 - 1)
    )
    return str(uuid.UUID(int=value))


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Same day `months` later, clamped to the month's last day (GDPR Art. 12(3): 'one month')."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@dataclass(frozen=True)
class WorkspaceRef:
    subscription_id: str
    resource_group: str
    name: str
    location: str = ""
    hosts: dict[str, str] = field(default_factory=dict)  # service key -> base URL (from discovery)

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )

    def placeholders(self) -> dict[str, str]:
        return {
            "subscriptionId": self.subscription_id,
            "resourceGroupName": self.resource_group,
            "workspaceName": self.name,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "name": self.name,
            "location": self.location,
            "hosts": self.hosts,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkspaceRef:
        return cls(
            data["subscriptionId"],
            data["resourceGroup"],
            data["name"],
            data.get("location", ""),
            dict(data.get("hosts") or {}),
        )


@dataclass
class DsrRequest:
    id: str
    type: RequestType
    subject: Subject | None  # None: whole-workspace export
    scope: dict[str, list[str]]  # workspaces (ARM ids), resourceGroups (ARM ids), subscriptions (ids)
    received_at: dt.datetime
    status: RequestStatus = "accepted"
    dry_run: bool = False
    reference: str | None = None
    idempotency_key: str | None = None
    pipeline_ids: list[dict[str, str]] = field(default_factory=list)  # requester-listed pipeline objects
    stage: str = "collect"  # collect -> pipelines -> done
    updated_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    manifest_path: str | None = None
    delete_workspace: dict[str, Any] | None = None  # {"confirm": name, "exportFirst": bool}
    submitted_by: dict[str, str] | None = None  # {"id", "name", "source"}
    decision: dict[str, Any] | None = None  # approved / rejected / cancelled: by whom, when, why
    source: str = "api"  # api | offboarding
    not_before: dt.datetime | None = None  # a scheduled request starts then (offboarding grace period)
    export_first: bool = False  # subject erasure: archive the subject's data, then erase
    archive_until: dt.datetime | None = None  # the archive's retention end
    links: dict[str, Any] = field(default_factory=dict)  # e.g. the offboarding event it came from
    callback_url: str | None = None  # CloudEvents about its status go there (shared/lifecycle/callbacks.py)
    # How the subject's identifiers were resolved (shared/aml/identity.py): set once, by the first plan.
    identity: dict[str, Any] | None = None
    extension: dict[str, Any] | None = None  # {"months", "reason", "by", "at"}: the deadline, extended once
    package_path: str | None = None  # the downloadable zip, once written
    deadline_flag: str | None = None  # "near_due" | "overdue", as the deadline timer last marked it
    # The finalize invocation writing the package, and until when its claim holds (see completion.finalize).
    finalize_owner: str | None = None
    finalize_until: dt.datetime | None = None
    etag: str | None = None
    stored_status: str | None = field(default=None, repr=False, compare=False)  # as last read or written

    @property
    def due_at(self) -> dt.datetime:
        """GDPR Art. 12(3): one month from receipt, extended once by up to two further months."""
        return add_months(self.received_at, 1 + int((self.extension or {}).get("months", 0)))

    def deadline_state(self, now: dt.datetime, near: dt.timedelta) -> str:
        """on_time | near_due | overdue while open; met | missed once it ended (cancelled/rejected: closed)."""
        if self.status in ("rejected", "cancelled"):
            return "closed"
        if self.status in TERMINAL_REQUEST:
            return "met" if self.completed_at and self.completed_at <= self.due_at else "missed"
        if now > self.due_at:
            return "overdue"
        return "near_due" if now > self.due_at - near else "on_time"


@dataclass
class Task:
    request_id: str
    task_id: str  # RowKey suffix; deterministic, so spawning is idempotent
    kind: str  # scope | workspace | a family name | runs | pipelines
    params: dict[str, Any] = field(default_factory=dict)
    workspace: WorkspaceRef | None = None
    status: TaskStatus = "queued"
    checkpoint: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)  # calls, retries, throttled, pages, seen, kept
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> path, records, bytes, sha256
    found: dict[str, Any] = field(default_factory=dict)  # e.g. pipeline ids seen in runs, with reasons
    error: str | None = None
    lease_owner: str | None = None
    lease_until: dt.datetime | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    modified_at: dt.datetime | None = None  # the Table entity's timestamp (read only)
    etag: str | None = None
    # Fields too large for a Table property live in blobs (shared/storage/store.py): field -> blob path, as stored.
    spilled: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def family(self) -> str:
        return self.kind
