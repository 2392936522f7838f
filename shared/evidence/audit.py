"""The audit trail: an append-only, tamper-evident record of every state change and every DELETE sent.

Table `DsrAudit`, one partition per request, RowKey the entry's zero-padded sequence number (1, 2, ...). Each
entry holds who (actor), when, what (action), why (reason) and details, and two hashes:

    hash = sha-256( canonical JSON of {requestId, seq, at, actor, action, reason, details, prev} )
    prev = the previous entry's hash (64 zeros for the first)

so changing, removing or inserting an entry breaks the chain at that entry (verify() names it). Appends never
update a row: the next sequence number is created if it does not exist; when a concurrent writer took it, the
tail is read again and the next number tried.

No subject identifier is stored in clear: e-mail-shaped strings (UPNs, e-mails) in the reason or details, and
the values of subject fields (objectId, userPrincipalName, email, upn, subject), become keyed pseudonyms. The
actor (the officer or the service that acted) is kept in clear: that is what the trail is for.

`python -m shared.evidence.audit <request id>` verifies one request's trail with the app's settings (exit 1 if broken).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

from shared.core import settings as names
from shared.core.principal import Principal
from shared.runtime import Runtime, get_runtime

log = logging.getLogger(__name__)

GENESIS = "0" * 64
SEQ_DIGITS = 10
MAX_APPEND_ATTEMPTS = 50
SUBJECT_KEYS = frozenset({"subject", "objectid", "userprincipalname", "email", "mail", "upn"})
_EMAIL = re.compile(r"[^\s@\"'<>(),;:]+@[^\s@\"'<>(),;:]+")

# Actions the workflow records (others may be added; verification does not depend on them).
SUBMITTED = "submitted"
APPROVED = "approved"
REJECTED = "rejected"
CANCELLED = "cancelled"
STATUS_CHANGED = "status-changed"
DELETE_SENT = "delete-sent"
EXTENDED = "deadline-extended"
DEADLINE = "deadline-flagged"


@dataclass(frozen=True)
class AuditEntry:
    request_id: str
    seq: int
    at: str
    actor: dict[str, str]
    action: str
    reason: str | None
    details: dict[str, Any]
    prev: str
    hash: str

    def content(self) -> dict[str, Any]:
        return {
            "requestId": self.request_id,
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "reason": self.reason,
            "details": self.details,
            "prev": self.prev,
        }

    def view(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.content().items() if k != "requestId"}, "hash": self.hash}


def entry_hash(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def row_key(seq: int) -> str:
    return f"{seq:0{SEQ_DIGITS}d}"


def actor_of(actor: Principal | dict[str, str] | str) -> dict[str, str]:
    """A principal as recorded; a plain string names a component of the service acting on its own."""
    if isinstance(actor, Principal):
        return actor.as_dict()
    if isinstance(actor, dict):
        return {k: str(actor.get(k, "")) for k in ("id", "name", "source")}
    return {"id": "aml-dsr", "name": str(actor), "source": "system"}


class AuditTrail:
    def __init__(self, table: TableClient, pseudonym: Callable[[str], str]) -> None:
        self.table = table
        self.pseudonym = pseudonym
        self._tails: dict[str, tuple[int, str]] = {}  # request id -> (seq, hash) last seen by this process
        self._lock = threading.Lock()

    # -- writing --------------------------------------------------------------------------------------------
    def redact(self, value: Any, key: str = "") -> Any:
        """Subject identifiers out: pseudonyms for subject fields and for anything shaped like an e-mail."""
        if isinstance(value, dict):
            return {str(k): self.redact(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.redact(v, key) for v in value]
        if isinstance(value, str):
            if key.lower() in SUBJECT_KEYS and value:
                return self.pseudonym(value)
            return _EMAIL.sub(lambda m: self.pseudonym(m.group(0)), value)
        if value is None or isinstance(value, bool | int | float):
            return value
        return str(value)

    def append(
        self,
        request_id: str,
        actor: Principal | dict[str, str] | str,
        action: str,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        *,
        at: dt.datetime | None = None,
    ) -> AuditEntry:
        actor_record = actor_of(actor)  # the officer or system acting: accountability needs it in clear
        safe_reason = self.redact(reason) if reason else None
        safe_details = self.redact(dict(details or {}))
        moment = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        for _ in range(MAX_APPEND_ATTEMPTS):
            seq, prev = self._tail(request_id)
            content = {
                "requestId": request_id,
                "seq": seq + 1,
                "at": moment,
                "actor": actor_record,
                "action": action,
                "reason": safe_reason,
                "details": safe_details,
                "prev": prev,
            }
            digest = entry_hash(content)
            entity = {
                "PartitionKey": request_id,
                "RowKey": row_key(seq + 1),
                "Seq": seq + 1,
                "At": moment,
                "Actor": json.dumps(actor_record, sort_keys=True),
                "Action": action,
                "Reason": safe_reason or "",
                "Details": json.dumps(safe_details, sort_keys=True),
                "Prev": prev,
                "Hash": digest,
            }
            try:
                self.table.create_entity(entity)
            except ResourceExistsError:
                continue  # another writer took this number: read the tail again
            with self._lock:
                self._tails[request_id] = (seq + 1, digest)
            return AuditEntry(
                request_id, seq + 1, moment, actor_record, action, safe_reason, safe_details, prev, digest
            )
        raise RuntimeError(f"could not append to the audit trail of {request_id}: too much contention")

    def _tail(self, request_id: str) -> tuple[int, str]:
        """(seq, hash) of the last entry: from this process's memory, plus whatever others appended since."""
        with self._lock:
            seq, digest = self._tails.get(request_id, (0, GENESIS))
        for entity in self.table.query_entities(
            "PartitionKey eq @pk and RowKey gt @rk",
            parameters={"pk": request_id, "rk": row_key(seq)},
            select=["RowKey", "Hash"],
        ):
            number = int(entity["RowKey"])
            if number > seq:
                seq, digest = number, str(entity["Hash"])
        return seq, digest

    # -- reading --------------------------------------------------------------------------------------------
    def entries(self, request_id: str) -> list[AuditEntry]:
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": request_id})
        out = []
        for e in sorted(rows, key=lambda r: str(r["RowKey"])):
            out.append(
                AuditEntry(
                    request_id=request_id,
                    seq=_int(e.get("Seq"), -1),
                    at=str(e.get("At", "")),
                    actor=_json(e.get("Actor"), {}),
                    action=str(e.get("Action", "")),
                    reason=e.get("Reason") or None,
                    details=_json(e.get("Details"), {}),
                    prev=str(e.get("Prev", "")),
                    hash=str(e.get("Hash", "")),
                )
            )
        return out

    def verify(self, request_id: str, entries: list[AuditEntry] | None = None) -> dict[str, Any]:
        """Recompute the chain: every entry's hash over its content, every link to the previous entry, and
        the sequence 1..n. Problems name the entry (seq and RowKey)."""
        entries = self.entries(request_id) if entries is None else entries
        return verify_chain(entries)


def verify_chain(entries: list[AuditEntry]) -> dict[str, Any]:
    problems: list[dict[str, Any]] = []
    prev = GENESIS
    for index, entry in enumerate(entries, start=1):
        where = {"seq": entry.seq, "rowKey": row_key(entry.seq) if entry.seq >= 0 else None}
        if entry.seq != index:
            problems.append({**where, "problem": f"out of sequence: expected entry {index} here"})
        if entry.prev != prev:
            problems.append(
                {
                    **where,
                    "problem": "its link to the previous entry is broken (an entry was changed or removed)",
                }
            )
        if entry_hash(entry.content()) != entry.hash:
            problems.append({**where, "problem": "its content does not match its hash (it was changed)"})
        prev = entry.hash
    return {
        "valid": not problems,
        "entries": len(entries),
        "head": entries[-1].hash if entries else None,
        "problems": problems,
    }


def _json(value: Any, default: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) and value else default
    except ValueError:
        return default


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


# -- per-process access ---------------------------------------------------------------------------------------
_trails: dict[int, AuditTrail] = {}
_trails_lock = threading.Lock()


def trail(rt: Runtime) -> AuditTrail:
    """The audit trail of this runtime's storage account (its table is created once per process)."""
    key = id(rt.storage)
    with _trails_lock:
        if key not in _trails:
            with contextlib.suppress(ResourceExistsError):
                rt.storage.table_service.create_table(names.AUDIT_TABLE)
            _trails[key] = AuditTrail(rt.storage.table(names.AUDIT_TABLE), rt.pseudonym)
        return _trails[key]


def record(
    rt: Runtime,
    request_id: str,
    actor: Principal | dict[str, str] | str,
    action: str,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the request's trail (see the module docstring)."""
    return trail(rt).append(request_id, actor, action, reason, details)


def verify(rt: Runtime, request_id: str) -> dict[str, Any]:
    return trail(rt).verify(request_id)


def main(argv: list[str] | None = None) -> int:

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m shared.evidence.audit <request id>", file=sys.stderr)
        return 2
    result = verify(get_runtime(), args[0])
    print(json.dumps(result, indent=2))
    return 0 if result["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
