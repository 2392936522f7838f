"""The audit trail: append-only and chained with the app's HMAC key in Table storage, its head anchored in an
append blob outside the table; an entry edited in Azurite is named by the verification (module, endpoint and
command), and so is a chain rewritten without the key, a forged entry appended, and a tail cut off; concurrent
writers never fork the chain; no subject identifier is stored in clear."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from typing import Any

import pytest
from azure.data.tables import TableClient, UpdateMode
from azure.identity import ManagedIdentityCredential

from devtools.stack import APP_CLIENT_ID
from shared.core import settings as names
from shared.core.principal import Principal
from shared.evidence import audit
from shared.runtime import Runtime
from tests.security.conftest import Api
from tests.security.idp import OFFICER, READER, SUBMITTER

ACTOR = Principal(OFFICER.oid, OFFICER.upn, "entra", frozenset(OFFICER.roles))


def _table(api: Api) -> TableClient:
    return TableClient(
        api.stack.settings[names.STORAGE_TABLE_URI],
        names.AUDIT_TABLE,
        credential=ManagedIdentityCredential(client_id=APP_CLIENT_ID),
    )


def _a_trail(rt: Runtime, subject: dict[str, str]) -> str:
    request_id = str(uuid.uuid4())
    audit.record(rt, request_id, ACTOR, audit.SUBMITTED, None, {"type": "erasure", "subject": subject})
    audit.record(rt, request_id, ACTOR, audit.APPROVED, f"identity of {subject['email']} verified")
    audit.record(
        rt, request_id, "workflow.plan", audit.STATUS_CHANGED, None, {"from": "accepted", "to": "running"}
    )
    audit.record(
        rt,
        request_id,
        "tasks.erase",
        audit.DELETE_SENT,
        None,
        {"endpoint": "D3", "id": "churn-r1:1", "status": 200, "createdBy": subject["userPrincipalName"]},
    )
    audit.record(rt, request_id, "workflow.finalize", audit.STATUS_CHANGED, None, {"to": "completed"})
    return request_id


SUBJECT = {
    "objectId": "5a5a5a5a-0000-4000-8000-00000000a11c",
    "userPrincipalName": "Alice.Subject@Contoso.com",
    "email": "alice.subject@contoso.com",
}


def test_entries_chain_and_verify_and_hold_no_subject_identifier(rt: Runtime, api: Api) -> None:
    request_id = _a_trail(rt, SUBJECT)
    result = audit.verify(rt, request_id)
    assert (result["valid"], result["entries"], result["problems"]) == (True, 5, [])
    entries = audit.trail(rt).entries(request_id)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev == audit.GENESIS
    assert all(entries[i].prev == entries[i - 1].mac for i in range(1, 5))
    assert (result["headSeq"], result["head"], result["anchored"]) == (5, entries[-1].mac, 5)
    assert entries[1].actor == {"id": OFFICER.oid, "name": OFFICER.upn, "source": "entra"}
    # No subject identifier in clear anywhere in the stored rows, in any letter case; pseudonyms instead
    stored = json.dumps(
        [dict(e) for e in _table(api).query_entities("PartitionKey eq @pk", parameters={"pk": request_id})]
    )
    for value in SUBJECT.values():
        assert value.lower() not in stored.lower()
    assert rt.pseudonym(SUBJECT["email"]) in stored
    assert rt.pseudonym(SUBJECT["objectId"]) in stored


def test_an_entry_edited_in_storage_is_named_by_every_verification(
    rt: Runtime, api: Api, capsys: Any
) -> None:
    request_id = _a_trail(rt, SUBJECT)
    # When someone with write access to the table changes the reason of entry 2 directly in Azurite
    table = _table(api)
    entity = table.get_entity(request_id, audit.row_key(2))
    entity["Reason"] = "approved without any check"
    table.update_entity(entity, mode=UpdateMode.REPLACE)
    # Then the module names entry 2 (its content no longer matches its hash) and only entry 2
    result = audit.verify(rt, request_id)
    assert result["valid"] is False
    assert [(p["seq"], p["rowKey"]) for p in result["problems"]] == [(2, "0000000002")]
    assert "changed" in result["problems"][0]["problem"]
    # And the endpoint says so to a reader
    response = api.call("GET", f"v1/requests/{request_id}/audit", READER)
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["verification"]["valid"] is False
    assert view["verification"]["problems"][0]["seq"] == 2
    assert [e["seq"] for e in view["entries"]] == [1, 2, 3, 4, 5]
    assert response.headers["Cache-Control"] == "no-store"
    # And the command exits 1 naming it
    assert audit.main([request_id]) == 1
    assert '"seq": 2' in capsys.readouterr().out
    # When the forger also recomputes entry 2's digest (without the app's key), entry 2 is still named
    entry = audit.trail(rt).entries(request_id)[1]
    entity["Mac"] = _sha256(entry.content())
    table.update_entity(entity, mode=UpdateMode.REPLACE)
    assert {p["seq"] for p in audit.verify(rt, request_id)["problems"]} == {2, 3}
    # And a removed entry is found too
    table.delete_entity(request_id, audit.row_key(4))
    problems = audit.verify(rt, request_id)["problems"]
    assert {p["seq"] for p in problems} >= {3, 5}


def test_concurrent_appends_make_one_unbroken_chain(rt: Runtime) -> None:
    request_id = str(uuid.uuid4())
    # Separate trails (as separate instances would be), 6 writers x 8 entries at once
    base = audit.trail(rt)
    trails = [audit.AuditTrail(base.table, rt.pseudonym, base.key, base.anchors) for _ in range(6)]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(8):
                trails[n].append(request_id, f"writer-{n}", "delete-sent", None, {"i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    result = audit.verify(rt, request_id)
    assert (result["valid"], result["entries"], result["anchored"]) == (True, 48, 48)


def test_the_audit_endpoint_needs_a_role_and_knows_unknown_requests(api: Api) -> None:
    assert api.call("GET", f"v1/requests/{uuid.uuid4()}/audit", READER).status_code == 404
    assert api.call("GET", f"v1/requests/{uuid.uuid4()}/audit", SUBMITTER).status_code == 403


@pytest.mark.parametrize("value", ["Alice@Contoso.com", "x alice@contoso.com y"])
def test_redaction_of_e_mail_shaped_text(rt: Runtime, value: str) -> None:
    trail = audit.trail(rt)
    assert "@" not in json.dumps(trail.redact({"reason": value, "nested": [{"upn": "bob"}]}))


# -- forgery by someone who can write the table but does not hold the app's audit key ------------------------------
def _sha256(content: dict[str, Any]) -> str:
    """The digest the trail used before it was keyed: sha-256 of the canonical JSON (anyone can compute it)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _rechain(table: TableClient, request_id: str, entries: list[audit.AuditEntry], digest: Any) -> None:
    """Rewrite the partition as a forger would: every row's prev and mac recomputed with `digest`."""
    prev = audit.GENESIS
    for entry in entries:
        content = {**entry.content(), "prev": prev}
        mac = digest(content)
        table.upsert_entity(
            {
                "PartitionKey": request_id,
                "RowKey": audit.row_key(entry.seq),
                "Seq": entry.seq,
                "At": entry.at,
                "Actor": json.dumps(entry.actor, sort_keys=True),
                "Action": entry.action,
                "Reason": entry.reason or "",
                "Details": json.dumps(entry.details, sort_keys=True),
                "Prev": prev,
                "Mac": mac,
            },
            mode=UpdateMode.REPLACE,
        )
        prev = mac


FORGERS = {
    "sha-256 as before the key": _sha256,
    "HMAC with a guessed key": lambda content: audit.entry_mac(b"guessed-" * 4, content),
}


@pytest.mark.parametrize("forger", FORGERS)
def test_an_approver_edited_and_the_chain_recomputed_without_the_key_is_named(
    rt: Runtime, api: Api, forger: str
) -> None:
    request_id = _a_trail(rt, SUBJECT)
    entries = audit.trail(rt).entries(request_id)
    # When the forger puts another approver on entry 2 and recomputes every later digest
    entries[1] = audit.AuditEntry(
        **{**entries[1].__dict__, "actor": {"id": "x", "name": "mallory", "source": "entra"}}
    )
    _rechain(_table(api), request_id, entries, FORGERS[forger])
    # Then every entry's MAC fails under the app's key, and the anchors of entries 1..5 differ
    result = audit.verify(rt, request_id)
    assert result["valid"] is False
    macs = {p["seq"] for p in result["problems"] if "does not match its MAC" in p["problem"]}
    assert macs == {1, 2, 3, 4, 5}
    assert {p["seq"] for p in result["problems"] if "differs from its anchor" in p["problem"]} == {
        1,
        2,
        3,
        4,
        5,
    }


def test_a_forged_delete_sent_appended_with_the_digest_recomputed_is_named(rt: Runtime, api: Api) -> None:
    request_id = _a_trail(rt, SUBJECT)
    entries = audit.trail(rt).entries(request_id)
    # When the forger appends a `delete-sent` entry 6 linked to entry 5's stored MAC, its own MAC guessed
    forged = audit.AuditEntry(
        request_id,
        6,
        entries[-1].at,
        {"id": "aml-dsr", "name": "tasks.erase", "source": "system"},
        audit.DELETE_SENT,
        None,
        {"endpoint": "D3", "id": "other-model:1", "status": 200},
        entries[-1].mac,
        "",
    )
    _rechain(_table(api), request_id, [*entries, forged], lambda c: audit.entry_mac(b"not-the-key" * 3, c))
    # Then entry 6 is named (and the earlier entries, rewritten with the wrong key, too)
    problems = audit.verify(rt, request_id)["problems"]
    assert 6 in {p["seq"] for p in problems if "does not match its MAC" in p["problem"]}


@pytest.mark.parametrize("kept", [3, 0])
def test_a_cut_tail_or_an_emptied_partition_is_reported_as_truncated(
    rt: Runtime, api: Api, kept: int
) -> None:
    request_id = _a_trail(rt, SUBJECT)
    table = _table(api)
    # When someone removes the entries after `kept` (the chain of what is left still holds by itself)
    for seq in range(kept + 1, 6):
        table.delete_entity(request_id, audit.row_key(seq))
    remaining = audit.trail(rt).entries(request_id)
    assert audit.verify_chain(remaining, audit.trail(rt).key)["valid"] is True
    # Then the verification holds it against the anchor log and reports the truncation
    result = audit.verify(rt, request_id)
    assert (result["valid"], result["entries"], result["anchored"]) == (False, kept, 5)
    assert [p["seq"] for p in result["problems"]] == [kept + 1]
    assert f"entries {kept + 1}..5 were removed" in result["problems"][0]["problem"]


def test_a_trail_whose_anchor_log_is_gone_is_not_valid(rt: Runtime) -> None:
    request_id = _a_trail(rt, SUBJECT)
    audit.trail(rt).anchors.container.delete_blob(audit.anchor_blob_name(request_id))
    result = audit.verify(rt, request_id)
    assert result["valid"] is False
    assert result["problems"] == [
        {"seq": 1, "rowKey": "0000000001", "problem": "no anchor outside the table"}
    ]


def test_the_anchor_log_is_an_append_blob_with_one_head_per_entry(rt: Runtime) -> None:
    request_id = _a_trail(rt, SUBJECT)
    trail = audit.trail(rt)
    blob = trail.anchors.container.get_blob_client(audit.anchor_blob_name(request_id))
    assert blob.get_blob_properties().blob_type == "AppendBlob"
    macs = [e.mac for e in trail.entries(request_id)]
    assert trail.anchors.read(request_id) == list(enumerate(macs, start=1))
    assert trail.head(request_id) == {"seq": 5, "mac": macs[-1]}


def test_the_audit_key_is_the_app_s_own_not_the_pseudonym_key(rt: Runtime) -> None:
    key = audit.trail(rt).key
    # The stack sets DSR_AUDIT_KEY, as infra does with its Key Vault reference
    assert key == os.environ[names.AUDIT_KEY].encode()
    assert key != rt.settings.pseudonym_key
    entry = audit.trail(rt).entries(_a_trail(rt, SUBJECT))[0]
    assert entry.mac == audit.entry_mac(key, entry.content()) != _sha256(entry.content())
