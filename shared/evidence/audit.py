"""The audit trail: an append-only, tamper-evident record of every state change and every DELETE sent.

Table `DsrAudit`, one partition per request, RowKey the entry's zero-padded sequence number (1, 2, ...). Each
entry holds who (actor), when, what (action), why (reason) and details, and a keyed chain:

    mac  = HMAC-SHA256( audit key, canonical JSON of {requestId, seq, at, actor, action, reason, details, prev} )
    prev = the previous entry's mac (64 zeros for the first)

The audit key is one only the app holds (Settings.audit_mac_key: a Key Vault secret in Azure). Someone who can
write the table but does not hold the key cannot change, insert or append an entry and recompute the macs: the
entry whose mac no longer matches, or whose link breaks, is named by verify().

Removing the tail of the chain (or the whole partition) leaves a shorter chain that holds. So every append also
writes the new head (seq and mac) as one line of the request's append blob `<request id>.jsonl` in container
dsr-audit-anchors, which infra protects with a version-level immutability policy; finalize writes the head into
manifest.json and erasure-record.json too. verify() compares the chain with the anchor log: an anchored entry
missing from the table is a truncation, an anchored mac that differs is a rewrite. The anchor is written after
the entry: if that write fails (logged), the last entries are not anchored, and a truncation of exactly those
is not seen.

Appends never update a row: the next sequence number is created if it does not exist; when a concurrent writer
took it, the tail is read again and the next number tried.

No subject identifier is stored in clear: e-mail-shaped strings (UPNs, e-mails) in the reason or details, and
the values of subject fields (objectId, userPrincipalName, email, upn, subject), become keyed pseudonyms. The
actor (the officer or the service that acted) is kept in clear: that is what the trail is for.

`python -m shared.evidence.audit <request id>` verifies one request's trail with the app's settings (exit 1 if broken).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

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
    mac: str

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
        return {**{k: v for k, v in self.content().items() if k != "requestId"}, "mac": self.mac}


def entry_mac(key: bytes, content: dict[str, Any]) -> str:
    """The entry's HMAC-SHA256 under the audit key, over its canonical JSON (keys sorted, no spaces)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


def row_key(seq: int) -> str:
    return f"{seq:0{SEQ_DIGITS}d}"


def anchor_blob_name(request_id: str) -> str:
    return f"{request_id}.jsonl"


def actor_of(actor: Principal | dict[str, str] | str) -> dict[str, str]:
    """A principal as recorded; a plain string names a component of the service acting on its own."""
    if isinstance(actor, Principal):
        return actor.as_dict()
    if isinstance(actor, dict):
        return {k: str(actor.get(k, "")) for k in ("id", "name", "source")}
    return {"id": "aml-dsr", "name": str(actor), "source": "system"}


class AnchorLog:
    """The heads of each request's chain, one JSON line {seq, mac, at} per entry, in an append blob per request
    (append-only; in Azure its container has a version-level immutability policy)."""

    def __init__(self, container: ContainerClient) -> None:
        self.container = container

    def append(self, request_id: str, seq: int, mac: str, at: str) -> None:
        line = (json.dumps({"seq": seq, "mac": mac, "at": at}, sort_keys=True) + "\n").encode()
        blob = self.container.get_blob_client(anchor_blob_name(request_id))
        try:
            blob.append_block(line)
        except ResourceNotFoundError:
            with contextlib.suppress(ResourceExistsError):  # created meanwhile by another writer
                blob.create_append_blob(match_condition=MatchConditions.IfMissing)
            blob.append_block(line)

    def read(self, request_id: str) -> list[tuple[int, str]]:
        """The (seq, mac) pairs anchored for the request, in the order written ([] when there is none)."""
        try:
            data = self.container.get_blob_client(anchor_blob_name(request_id)).download_blob().readall()
        except ResourceNotFoundError:
            return []
        anchors = []
        for line in data.decode(errors="replace").splitlines():
            record = _json(line, None)
            if isinstance(record, dict) and isinstance(record.get("seq"), int):
                anchors.append((record["seq"], str(record.get("mac", ""))))
        return anchors


class AuditTrail:
    def __init__(
        self,
        table: TableClient,
        pseudonym: Callable[[str], str],
        key: bytes,
        anchors: AnchorLog | None = None,
    ) -> None:
        if not key:
            raise ValueError("the audit trail needs its HMAC key")
        self.table = table
        self.pseudonym = pseudonym
        self.key = key
        self.anchors = anchors
        self._tails: dict[str, tuple[int, str]] = {}  # request id -> (seq, mac) last seen by this process
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
            entry = AuditEntry(
                request_id, seq + 1, moment, actor_record, action, safe_reason, safe_details, prev, ""
            )
            mac = entry_mac(self.key, entry.content())
            entity = {
                "PartitionKey": request_id,
                "RowKey": row_key(entry.seq),
                "Seq": entry.seq,
                "At": moment,
                "Actor": json.dumps(actor_record, sort_keys=True),
                "Action": action,
                "Reason": safe_reason or "",
                "Details": json.dumps(safe_details, sort_keys=True),
                "Prev": prev,
                "Mac": mac,
            }
            try:
                self.table.create_entity(entity)
            except ResourceExistsError:
                continue  # another writer took this number: read the tail again
            with self._lock:
                self._tails[request_id] = (entry.seq, mac)
            self._anchor(request_id, entry.seq, mac, moment)
            return dataclasses.replace(entry, mac=mac)
        raise RuntimeError(f"could not append to the audit trail of {request_id}: too much contention")

    def _anchor(self, request_id: str, seq: int, mac: str, at: str) -> None:
        if self.anchors is None:
            return
        try:
            self.anchors.append(request_id, seq, mac, at)
        except AzureError as exc:  # the entry stands; only its anchor is missing (verify() tells the lag)
            log.warning("audit entry %d of %s not anchored: %s", seq, request_id, exc.__class__.__name__)

    def _tail(self, request_id: str) -> tuple[int, str]:
        """(seq, mac) of the last entry: from this process's memory, plus whatever others appended since."""
        with self._lock:
            seq, mac = self._tails.get(request_id, (0, GENESIS))
        for entity in self.table.query_entities(
            "PartitionKey eq @pk and RowKey gt @rk",
            parameters={"pk": request_id, "rk": row_key(seq)},
            select=["RowKey", "Mac"],
        ):
            number = int(entity["RowKey"])
            if number > seq:
                seq, mac = number, str(entity.get("Mac", ""))
        return seq, mac

    def head(self, request_id: str) -> dict[str, Any]:
        """The head of the request's chain as anchored in its documents: {seq, mac} of the last entry."""
        seq, mac = self._tail(request_id)
        return {"seq": seq, "mac": mac}

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
                    mac=str(e.get("Mac", "")),
                )
            )
        return out

    def verify(self, request_id: str, entries: list[AuditEntry] | None = None) -> dict[str, Any]:
        """Recompute the chain with the audit key (every entry's mac over its content, every link to the
        previous entry, the sequence 1..n) and hold it against the anchor log. Problems name the entry (seq and
        RowKey)."""
        entries = self.entries(request_id) if entries is None else entries
        anchors = self.anchors.read(request_id) if self.anchors is not None else None
        return verify_chain(entries, self.key, anchors)


def verify_chain(
    entries: list[AuditEntry], key: bytes, anchors: list[tuple[int, str]] | None = None
) -> dict[str, Any]:
    """The verification of one request's entries (in RowKey order) under `key`, against its anchors (None: no
    anchor log to compare with)."""
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
        if not hmac.compare_digest(entry_mac(key, entry.content()), entry.mac):
            problems.append(
                {
                    **where,
                    "problem": "its content does not match its MAC (it was changed, or written without the "
                    "app's audit key)",
                }
            )
        prev = entry.mac
    anchored = max((seq for seq, _ in anchors), default=0) if anchors else 0
    if anchors is not None:
        problems.extend(_anchor_problems(entries, anchors))
    return {
        "valid": not problems,
        "entries": len(entries),
        "head": entries[-1].mac if entries else None,
        "headSeq": entries[-1].seq if entries else 0,
        "anchored": anchored,
        "problems": problems,
    }


def _anchor_problems(entries: list[AuditEntry], anchors: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """What the anchor log says the table lost or rewrote: an anchored seq past the table's last entry (the
    tail was cut), an anchored mac that differs from the entry's (the entry was rewritten)."""
    by_seq = {e.seq: e for e in entries}
    last = entries[-1].seq if entries else 0
    problems: list[dict[str, Any]] = []
    if entries and not anchors:
        problems.append({"seq": 1, "rowKey": row_key(1), "problem": "no anchor outside the table"})
    anchored = max((seq for seq, _ in anchors), default=0)
    if anchored > last:
        problems.append(
            {
                "seq": last + 1,
                "rowKey": row_key(last + 1),
                "problem": f"truncated: the anchor log records entry {anchored}, the trail ends at {last} "
                f"(entries {last + 1}..{anchored} were removed)",
            }
        )
    for seq, mac in sorted(set(anchors)):
        entry = by_seq.get(seq)
        if entry is not None and not hmac.compare_digest(entry.mac, mac):
            problems.append(
                {"seq": seq, "rowKey": row_key(seq), "problem": "its MAC differs from its anchor (rewritten)"}
            )
        elif entry is None and seq <= last:
            problems.append(
                {"seq": seq, "rowKey": row_key(seq), "problem": "anchored, missing from the table"}
            )
    return problems


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
    """The audit trail of this runtime's storage account (its table and anchor container are created once per
    process)."""
    key = id(rt.storage)
    with _trails_lock:
        if key not in _trails:
            with contextlib.suppress(ResourceExistsError):
                rt.storage.table_service.create_table(names.AUDIT_TABLE)
            anchors = rt.storage.blob_service.get_container_client(names.AUDIT_ANCHOR_CONTAINER)
            with contextlib.suppress(ResourceExistsError):
                anchors.create_container()
            _trails[key] = AuditTrail(
                rt.storage.table(names.AUDIT_TABLE),
                rt.pseudonym,
                rt.settings.audit_mac_key,
                AnchorLog(anchors),
            )
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
