"""The audit trail: append-only and hash-chained in Table storage; an entry edited in Azurite is named by the
verification (module, endpoint and command); concurrent writers never fork the chain; no subject identifier is
stored in clear."""

from __future__ import annotations

import json
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
    assert all(entries[i].prev == entries[i - 1].hash for i in range(1, 5))
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
    # When the forger also recomputes entry 2's hash, the link from entry 3 breaks instead
    entry = audit.trail(rt).entries(request_id)[1]
    entity["Hash"] = audit.entry_hash(entry.content())
    table.update_entity(entity, mode=UpdateMode.REPLACE)
    assert [p["seq"] for p in audit.verify(rt, request_id)["problems"]] == [3]
    # And a removed entry is found too
    table.delete_entity(request_id, audit.row_key(4))
    problems = audit.verify(rt, request_id)["problems"]
    assert {p["seq"] for p in problems} >= {3, 5}


def test_concurrent_appends_make_one_unbroken_chain(rt: Runtime) -> None:
    request_id = str(uuid.uuid4())
    # Separate trails (as separate instances would be), 6 writers x 8 entries at once
    trails = [audit.AuditTrail(audit.trail(rt).table, rt.pseudonym) for _ in range(6)]
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
    assert (result["valid"], result["entries"]) == (True, 48)


def test_the_audit_endpoint_needs_a_role_and_knows_unknown_requests(api: Api) -> None:
    assert api.call("GET", f"v1/requests/{uuid.uuid4()}/audit", READER).status_code == 404
    assert api.call("GET", f"v1/requests/{uuid.uuid4()}/audit", SUBMITTER).status_code == 403


@pytest.mark.parametrize("value", ["Alice@Contoso.com", "x alice@contoso.com y"])
def test_redaction_of_e_mail_shaped_text(rt: Runtime, value: str) -> None:
    trail = audit.trail(rt)
    assert "@" not in json.dumps(trail.redact({"reason": value, "nested": [{"upn": "bob"}]}))
