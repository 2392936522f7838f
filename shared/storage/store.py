"""Requests and their tasks in Table storage, the subject index and the offboarding events.

Writes that decide progress use ETags (optimistic concurrency): a write that finds the row changed since it
was read raises ConcurrencyError. A task's JSON field too large for a Table property lives in a blob.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TransactionOperation, UpdateMode

from shared.core import settings as names
from shared.core import telemetry
from shared.core.matching import Subject
from shared.core.model import OPEN_TASK, DsrRequest, Task, WorkspaceRef
from shared.storage.clients import Storage, compact_json, safe_segment


class ConcurrencyError(Exception):
    """The entity changed since it was read (ETag mismatch): read again and retry."""


# A Table string property holds at most 64 KiB (32 K UTF-16 characters); a task's JSON field longer than this
# (the run ids of someone's hyperparameter sweep, the pipeline objects thousands of runs point to) is written
# to a blob named by its content and the property holds "blob:<path>".
SPILL_CHARS = 30_000
SPILL_PREFIX = "blob:"


def _time(value: Any) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class RequestStore:
    """Requests and their tasks: one Table partition per request (RowKey `request`, `task-...`)."""

    REQUEST_ROW = "request"
    TASK_PREFIX = "task-"

    def __init__(self, storage: Storage) -> None:
        self.container = storage.container
        self.requests = storage.table(names.REQUESTS_TABLE)
        self.idempotency = storage.table(names.IDEMPOTENCY_TABLE)
        self.events = storage.table(names.EVENTS_TABLE)
        self.subjects = storage.table(names.SUBJECTS_TABLE)

    # -- requests -------------------------------------------------------------------------------------------
    def create_request(self, request: DsrRequest) -> None:
        meta = self.requests.create_entity(self._request_entity(request))
        request.etag = meta.get("etag")
        self._status_stored(request)

    @staticmethod
    def _status_stored(request: DsrRequest) -> None:
        """Count every status change in the `dsr.requests` metric, at the one place a status is stored."""
        if request.status != request.stored_status:
            telemetry.request_status(request.type, request.status)
            request.stored_status = request.status

    def get_request(self, request_id: str) -> DsrRequest | None:
        try:
            entity = self.requests.get_entity(request_id, self.REQUEST_ROW)
        except ResourceNotFoundError:
            return None
        return self._request_of(entity)

    def update_request(self, request: DsrRequest) -> None:
        """Replace the request row if nobody changed it since it was read; raise ConcurrencyError otherwise."""
        try:
            meta = self.requests.update_entity(
                self._request_entity(request),
                mode=UpdateMode.REPLACE,
                etag=request.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyError(request.id) from exc
        request.etag = meta.get("etag")
        self._status_stored(request)

    def claim_idempotency_key(self, key_hash: str, request_id: str) -> str:
        """Record key -> request id; return the request id the key already points to, or this one."""
        try:
            self.idempotency.create_entity(
                {"PartitionKey": key_hash[:2], "RowKey": key_hash, "RequestId": request_id}
            )
            return request_id
        except ResourceExistsError:
            entity = self.idempotency.get_entity(key_hash[:2], key_hash)
            return str(entity["RequestId"])

    def requests_with_status(self, status: str) -> Iterator[DsrRequest]:
        for entity in self.requests.query_entities(
            "RowKey eq @row and Status eq @status", parameters={"row": self.REQUEST_ROW, "status": status}
        ):
            yield self._request_of(entity)

    def list_requests(
        self,
        statuses: Iterable[str] = (),
        due_before: dt.datetime | None = None,
        page_size: int = 50,
        continuation: dict[str, str] | None = None,
    ) -> tuple[list[DsrRequest], dict[str, str] | None]:
        """One page of requests (in request-id order: ids are time-ordered, so oldest first), filtered on
        status and due date by Table storage itself; with the continuation of the next page, or None."""
        clauses = ["RowKey eq @row"]
        parameters: dict[str, Any] = {"row": self.REQUEST_ROW}
        wanted = sorted(set(statuses))
        if wanted:
            parts = []
            for i, status in enumerate(wanted):
                parameters[f"s{i}"] = status
                parts.append(f"Status eq @s{i}")
            clauses.append("( " + " or ".join(parts) + " )")  # spaces: the SDK substitutes @names by words
        if due_before is not None:
            parameters["due"] = due_before
            clauses.append("DueAt lt @due")
        pages = self.requests.query_entities(
            " and ".join(clauses), parameters=parameters, results_per_page=page_size
        ).by_page(continuation_token=continuation)  # type: ignore[arg-type]  # Tables' tokens are dicts
        page = [self._request_of(e) for e in next(pages, [])]
        return page, pages.continuation_token  # type: ignore[attr-defined]

    # -- the subject index: keyed pseudonyms of identifiers -> request ids ---------------------------------------
    def index_subject(self, request: DsrRequest, pseudonyms: Iterable[str]) -> None:
        for pseudonym in pseudonyms:
            self.subjects.upsert_entity(
                {
                    "PartitionKey": pseudonym,
                    "RowKey": request.id,
                    "ReceivedAt": request.received_at,
                    "Type": request.type,
                    "Source": request.source,
                }
            )

    def requests_of_subject(self, pseudonym: str) -> list[dict[str, Any]]:
        return [
            {
                "id": e["RowKey"],
                "receivedAt": _time(e["ReceivedAt"]),
                "type": e["Type"],
                "source": e["Source"],
            }
            for e in self.subjects.query_entities("PartitionKey eq @pk", parameters={"pk": pseudonym})
        ]

    # -- offboarding events -----------------------------------------------------------------------------------
    def record_event(self, key: str, fields: dict[str, Any]) -> bool:
        """Create the event row; False when an event with this key was recorded before."""
        try:
            self.events.create_entity({"PartitionKey": "offboarding", "RowKey": key, **fields})
        except ResourceExistsError:
            return False
        return True

    def claim_person(
        self, pseudonym: str, request_id: str, event_key: str, now: dt.datetime, window: dt.timedelta
    ) -> tuple[str, str]:
        """Claim an offboarded person (by one identifier's pseudonym) for `request_id` of event `event_key`,
        unless another event claimed them less than `window` ago. Returns (request id, event key) of the claim
        that holds afterwards: this event's own earlier claim (a retried message) is returned as it is."""
        entity = {
            "PartitionKey": "person",
            "RowKey": pseudonym,
            "RequestId": request_id,
            "EventKey": event_key,
            "ClaimedAt": now,
        }
        for _ in range(5):
            try:
                self.events.create_entity(entity)
                return request_id, event_key
            except ResourceExistsError:
                pass
            try:
                row = self.events.get_entity("person", pseudonym)
            except ResourceNotFoundError:
                continue  # released meanwhile: claim again
            claimed = _time(row.get("ClaimedAt"))
            if row.get("EventKey") == event_key or (claimed is not None and now - claimed < window):
                return str(row["RequestId"]), str(row.get("EventKey") or "")
            try:  # an old claim: take it over, unless someone else just did
                self.events.update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return request_id, event_key
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
        raise ConcurrencyError(f"person claim {pseudonym[:12]}")

    def release_person(self, pseudonym: str, request_id: str) -> None:
        """Drop this request's claim on a person (an event that turned out to be a duplicate)."""
        try:
            row = self.events.get_entity("person", pseudonym)
            if row["RequestId"] == request_id:
                self.events.delete_entity(
                    "person",
                    pseudonym,
                    etag=row.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceNotFoundError, ResourceModifiedError):
            pass

    def get_event(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.events.get_entity("offboarding", key))
        except ResourceNotFoundError:
            return None

    def events_with_status(self, status: str, limit: int = 100) -> list[dict[str, Any]]:
        found = self.events.query_entities(
            "PartitionKey eq 'offboarding' and Status eq @status", parameters={"status": status}
        )
        return [dict(e) for _, e in zip(range(limit), found, strict=False)]

    # -- tasks ----------------------------------------------------------------------------------------------
    def create_tasks(self, tasks: Iterable[Task]) -> list[Task]:
        """Create the task rows that do not exist yet (in batches of 100); return those created."""
        created: list[Task] = []
        by_request: dict[str, list[Task]] = {}
        for task in tasks:
            by_request.setdefault(task.request_id, []).append(task)
        for request_id, group in by_request.items():
            existing = {
                e["RowKey"]
                for e in self.requests.query_entities(
                    "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
                    parameters={"pk": request_id, "lo": self.TASK_PREFIX, "hi": "task."},
                    select=["RowKey"],
                )
            }
            fresh = [t for t in group if self.TASK_PREFIX + t.task_id not in existing]
            for start in range(0, len(fresh), 100):
                chunk = fresh[start : start + 100]
                operations: list[tuple[TransactionOperation, dict[str, Any]]] = [
                    (TransactionOperation.CREATE, self._task_entity(t)) for t in chunk
                ]
                try:
                    self.requests.submit_transaction(operations)
                    created.extend(chunk)
                except Exception:
                    for task in chunk:
                        try:
                            self.requests.create_entity(self._task_entity(task))
                            created.append(task)
                        except ResourceExistsError:
                            pass
        return created

    def get_task(self, request_id: str, task_id: str) -> Task | None:
        try:
            entity = self.requests.get_entity(request_id, self.TASK_PREFIX + task_id)
        except ResourceNotFoundError:
            return None
        return self._task_of(entity)

    def update_task(self, task: Task) -> None:
        before = dict(task.spilled)
        entity = self._task_entity(task)
        try:
            meta = self.requests.update_entity(
                entity,
                mode=UpdateMode.REPLACE,
                etag=task.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError) as exc:
            raise ConcurrencyError(f"{task.request_id}/{task.task_id}") from exc
        task.etag = meta.get("etag")
        # The blobs the stored row no longer points to go (those of a lost race stay until the package purge).
        for path in set(before.values()) - set(task.spilled.values()):
            with contextlib.suppress(ResourceNotFoundError):
                self.container.delete_blob(path)

    def list_tasks(self, request_id: str) -> Iterator[Task]:
        for entity in self.requests.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            parameters={"pk": request_id, "lo": self.TASK_PREFIX, "hi": "task."},
        ):
            yield self._task_of(entity)

    def has_open_tasks(self, request_id: str) -> bool:
        entities = self.requests.query_entities(
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and ( Status eq @a or Status eq @b )",
            parameters={
                "pk": request_id,
                "lo": self.TASK_PREFIX,
                "hi": "task.",
                "a": OPEN_TASK[0],
                "b": OPEN_TASK[1],
            },
            select=["RowKey"],
            results_per_page=1,
        )
        return next(iter(entities), None) is not None

    # -- entity mapping -------------------------------------------------------------------------------------
    def _request_entity(self, r: DsrRequest) -> dict[str, Any]:
        return {
            "PartitionKey": r.id,
            "RowKey": self.REQUEST_ROW,
            "Type": r.type,
            "Status": r.status,
            "Subject": compact_json(r.subject.as_dict()) if r.subject else "",
            "Scope": compact_json(r.scope),
            "DryRun": r.dry_run,
            "Reference": r.reference or "",
            "IdempotencyKey": r.idempotency_key or "",
            "PipelineIds": compact_json(r.pipeline_ids),
            "Stage": r.stage,
            "ReceivedAt": r.received_at,
            "UpdatedAt": r.updated_at or r.received_at,
            "CompletedAt": r.completed_at.isoformat() if r.completed_at else "",
            "Errors": compact_json(r.errors),
            "ManifestPath": r.manifest_path or "",
            "DeleteWorkspace": compact_json(r.delete_workspace) if r.delete_workspace else "",
            "SubmittedBy": compact_json(r.submitted_by) if r.submitted_by else "",
            "Decision": compact_json(r.decision) if r.decision else "",
            "Source": r.source,
            "NotBefore": r.not_before.isoformat() if r.not_before else "",
            "ExportFirst": r.export_first,
            "ArchiveUntil": r.archive_until.isoformat() if r.archive_until else "",
            "Links": compact_json(r.links),
            "CallbackUrl": r.callback_url or "",
            "Identity": compact_json(r.identity) if r.identity else "",
            "Extension": compact_json(r.extension) if r.extension else "",
            "PackagePath": r.package_path or "",
            "DeadlineFlag": r.deadline_flag or "",
            "FinalizeOwner": r.finalize_owner or "",
            "FinalizeUntil": r.finalize_until.isoformat() if r.finalize_until else "",
            "DueAt": r.due_at,  # stored for the list filters (dueBefore, overdue)
        }

    def _request_of(self, e: Any) -> DsrRequest:
        subject = json.loads(e["Subject"]) if e.get("Subject") else None
        received = _time(e["ReceivedAt"])
        assert received is not None
        return DsrRequest(
            id=e["PartitionKey"],
            type=e["Type"],
            subject=Subject(
                subject.get("objectId"),
                subject.get("userPrincipalName"),
                subject.get("email"),
                tuple(subject.get("otherMails") or ()),
            )
            if subject
            else None,
            scope=json.loads(e["Scope"]),
            received_at=received,
            status=e["Status"],
            dry_run=bool(e.get("DryRun")),
            reference=e.get("Reference") or None,
            idempotency_key=e.get("IdempotencyKey") or None,
            pipeline_ids=json.loads(e.get("PipelineIds") or "[]"),
            stage=e.get("Stage") or "collect",
            updated_at=_time(e.get("UpdatedAt")),
            completed_at=_time(e.get("CompletedAt")),
            errors=json.loads(e.get("Errors") or "[]"),
            manifest_path=e.get("ManifestPath") or None,
            delete_workspace=json.loads(e["DeleteWorkspace"]) if e.get("DeleteWorkspace") else None,
            submitted_by=json.loads(e["SubmittedBy"]) if e.get("SubmittedBy") else None,
            decision=json.loads(e["Decision"]) if e.get("Decision") else None,
            source=e.get("Source") or "api",
            not_before=_time(e.get("NotBefore")),
            export_first=bool(e.get("ExportFirst")),
            archive_until=_time(e.get("ArchiveUntil")),
            links=json.loads(e.get("Links") or "{}"),
            callback_url=e.get("CallbackUrl") or None,
            identity=json.loads(e["Identity"]) if e.get("Identity") else None,
            extension=json.loads(e["Extension"]) if e.get("Extension") else None,
            package_path=e.get("PackagePath") or None,
            deadline_flag=e.get("DeadlineFlag") or None,
            finalize_owner=e.get("FinalizeOwner") or None,
            finalize_until=_time(e.get("FinalizeUntil")),
            etag=e.metadata.get("etag"),
            stored_status=e["Status"],
        )

    def _field(self, t: Task, name: str, value: Any) -> str:
        """The property text of a task's JSON field: the JSON itself, or a pointer to a blob holding it."""
        text = compact_json(value)
        if len(text) <= SPILL_CHARS:
            t.spilled.pop(name, None)
            return text
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        path = f"{t.request_id}/_state/{safe_segment(t.task_id)}/{name}-{digest}.json"
        if t.spilled.get(name) != path:
            self.container.get_blob_client(path).upload_blob(text.encode(), overwrite=True)
            t.spilled[name] = path
        return SPILL_PREFIX + path

    def _load(self, t: Task, name: str, text: str | None, default: str) -> Any:
        if text and text.startswith(SPILL_PREFIX):
            path = text[len(SPILL_PREFIX) :]
            t.spilled[name] = path
            text = self.container.get_blob_client(path).download_blob().readall().decode()
        return json.loads(text or default)

    def _task_entity(self, t: Task) -> dict[str, Any]:
        return {
            "PartitionKey": t.request_id,
            "RowKey": self.TASK_PREFIX + t.task_id,
            "Kind": t.kind,
            "Status": t.status,
            "Params": self._field(t, "Params", t.params),
            "Workspace": compact_json(t.workspace.as_dict()) if t.workspace else "",
            "Checkpoint": self._field(t, "Checkpoint", t.checkpoint),
            "Stats": compact_json(t.stats),
            "Outputs": self._field(t, "Outputs", t.outputs),
            "Found": self._field(t, "Found", t.found),
            "Error": t.error or "",
            "LeaseOwner": t.lease_owner or "",
            "LeaseUntil": t.lease_until.isoformat() if t.lease_until else "",
            "StartedAt": t.started_at.isoformat() if t.started_at else "",
            "FinishedAt": t.finished_at.isoformat() if t.finished_at else "",
        }

    def _task_of(self, e: Any) -> Task:
        task = Task(
            request_id=e["PartitionKey"],
            task_id=e["RowKey"][len(self.TASK_PREFIX) :],
            kind=e["Kind"],
            workspace=WorkspaceRef.from_dict(json.loads(e["Workspace"])) if e.get("Workspace") else None,
            status=e["Status"],
            stats=json.loads(e.get("Stats") or "{}"),
            error=e.get("Error") or None,
            lease_owner=e.get("LeaseOwner") or None,
            lease_until=_time(e.get("LeaseUntil")),
            started_at=_time(e.get("StartedAt")),
            finished_at=_time(e.get("FinishedAt")),
            modified_at=_time(e.metadata.get("timestamp")),
            etag=e.metadata.get("etag"),
        )
        task.params = self._load(task, "Params", e.get("Params"), "{}")
        task.checkpoint = self._load(task, "Checkpoint", e.get("Checkpoint"), "{}")
        task.outputs = self._load(task, "Outputs", e.get("Outputs"), "{}")
        task.found = self._load(task, "Found", e.get("Found"), "{}")
        return task
