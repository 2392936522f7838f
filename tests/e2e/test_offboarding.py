"""Offboarding: an HR event on the Azurite queue erases exactly that person's items, in each envelope format."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
import requests
from azure.identity import ManagedIdentityCredential
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devtools.amlsim.fixture import demo_tenant
from devtools.demo import container_client, wait
from devtools.stack import APP_CLIENT_ID, TENANT_ID, wait_for

DELETABLE = ("services", "images", "models", "assets")


@pytest.fixture
def fresh(sim):
    sim.reset(demo_tenant())
    sim.clear_log()
    return sim


def queue(stack, name="offboarding-events"):
    return QueueClient(
        stack.settings["AzureWebJobsStorage__queueServiceUri"],
        name,
        credential=ManagedIdentityCredential(client_id=APP_CLIENT_ID),
        message_encode_policy=TextBase64EncodePolicy(),
    )


def get(stack, path, **params):
    response = requests.get(
        f"{stack.api_url}/v1/{path}",
        params=params,
        headers={"x-functions-key": stack.function_key},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def data_of(sim, key, **over):
    p = sim.tenant.people[key]
    data = {"objectId": p.object_id, "tenantId": TENANT_ID, "userPrincipalName": p.upn, "mail": p.email}
    data.update(over)
    return data


def envelope(kind, data, event_id):
    if kind == "plain":
        return {**data, "eventId": event_id}
    if kind == "cloudevents":
        return {
            "specversion": "1.0",
            "id": event_id,
            "source": "/hr/workday",
            "type": "com.contoso.hr.offboarded",
            "time": "2026-11-28T09:00:00Z",
            "datacontenttype": "application/json",
            "data": data,
        }
    return [
        {
            "id": event_id,
            "eventType": "Contoso.HR.EmployeeOffboarded",
            "subject": "employees/offboarded",
            "eventTime": "2026-11-28T09:00:00Z",
            "dataVersion": "1.0",
            "data": data,
        }
    ]


def requests_of(stack, sim, key):
    found = get(stack, "requests", subjectObjectId=sim.tenant.people[key].object_id)["value"]
    return [r for r in found if r["source"] == "offboarding"]


def owned(sim, key):
    return {
        (ws.arm_id, family, record.id)
        for ws in sim.tenant.workspaces.values()
        for family in DELETABLE
        for record in ws.records(family)
        if record.owner == key
    }


@pytest.mark.parametrize(
    ("kind", "person"), [("plain", "bob"), ("cloudevents", "carol"), ("eventgrid", "erin")]
)
def test_an_event_erases_exactly_that_persons_items(stack, fresh, kind, person):
    sim = fresh
    expected = sim.tenant.erasable(person)  # what the contract lets an erasure attribute to that person
    theirs = owned(sim, person)  # the owner annotation, before the erasure
    others_before = {k for k in owned_all(sim) if k not in expected}
    queue(stack).send_message(json.dumps(envelope(kind, data_of(sim, person), f"evt-{uuid.uuid4()}")))
    [found] = wait_for(lambda: requests_of(stack, sim, person))
    assert (found["type"], found["source"]) == ("erasure", "offboarding")
    view = wait(stack, f"{stack.api_url}/v1/requests/{found['id']}", timeout=240)
    assert view["status"] in ("completed", "completed_with_errors"), view["errors"]
    blob = container_client(stack).get_blob_client(f"{view['id']}/erasure-record.json")
    record = json.loads(blob.download_blob().readall())
    assert {(i["workspace"], i["family"], i["id"]) for i in record["items"]} == expected
    assert {i["outcome"] for i in record["items"]} <= {"deleted", "blocked"}
    deleted = {(i["workspace"], i["family"], i["id"]) for i in record["items"] if i["outcome"] == "deleted"}
    assert deleted
    assert owned_all(sim) == (others_before | expected) - deleted  # nothing but what was matched was touched
    # a model or service (they name their creator's object id) is deleted only when it is that person's
    assert {k for k in deleted if k[1] in ("models", "services")} <= theirs


def owned_all(sim):
    return {
        (ws.arm_id, family, record.id)
        for ws in sim.tenant.workspaces.values()
        for family in DELETABLE
        for record in ws.records(family)
    }


def test_a_duplicate_event_starts_nothing_and_is_linked_to_the_first(stack, fresh):
    sim = fresh
    event_id = f"evt-{uuid.uuid4()}"
    body = json.dumps(envelope("plain", data_of(sim, "dave", effectiveAt="2030-01-01T00:00:00Z"), event_id))
    q = queue(stack)
    q.send_message(body)
    [first] = wait_for(lambda: requests_of(stack, sim, "dave"))
    assert first["status"] == "scheduled"  # effective in 2030: waits, visible to HR meanwhile
    q.send_message(body)  # the same eventId
    q.send_message(json.dumps(envelope("plain", data_of(sim, "dave"), f"evt-{uuid.uuid4()}")))  # same person

    def linked():
        found = get(stack, "offboarding/events", status="duplicate")["value"]
        mine = [e for e in found if e["duplicateOf"] == first["id"]]
        return mine if len(mine) >= 2 else None

    duplicates = wait_for(linked)
    assert {d["reason"] for d in duplicates} == {
        "the same eventId was received before",
        "the same person was offboarded within the dedupe window",
    }
    assert [r["id"] for r in requests_of(stack, sim, "dave")] == [first["id"]]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("this is not json", "not JSON"),
        (json.dumps({"eventId": "e-1", "tenantId": TENANT_ID}), "no identifier"),
        (json.dumps({"hello": "world"}), "unknown schema"),
        (
            json.dumps({"eventId": "e-2", "objectId": str(uuid.uuid4()), "tenantId": str(uuid.uuid4())}),
            "another tenant",
        ),
        (json.dumps({"eventId": "e-4", "objectId": str(uuid.uuid4())}), "names no tenant"),
        (
            json.dumps(
                {"specversion": "1.0", "id": "e-3", "source": "/hr", "type": "t", "data": {"objectId": "42"}}
            ),
            "not a GUID",
        ),
    ],
)
def test_a_bad_event_is_rejected_once_with_its_reason_and_creates_nothing(stack, fresh, payload, reason):
    before = len(get(stack, "offboarding/events", status="rejected")["value"])
    message = queue(stack).send_message(payload)
    rejected = wait_for(
        lambda: [
            e
            for e in get(stack, "offboarding/events", status="rejected")["value"]
            if e["messageId"] == message.id
        ]
    )
    assert len(rejected) == 1
    assert reason in rejected[0]["reason"]
    assert rejected[0]["requestId"] is None
    assert len(get(stack, "offboarding/events", status="rejected")["value"]) == before + 1
    assert queue(stack, "offboarding-events-poison").peek_messages(max_messages=32) == []


def test_the_grace_period_is_waited_out_with_a_delayed_message(stack, fresh):
    sim = fresh
    effective = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
    data = data_of(sim, "asmith", effectiveAt=effective.isoformat().replace("+00:00", "Z"))
    queue(stack).send_message(json.dumps(envelope("cloudevents", data, f"evt-{uuid.uuid4()}")))
    [found] = wait_for(lambda: requests_of(stack, sim, "asmith"))
    assert found["status"] == "scheduled"
    assert found["notBefore"].startswith(effective.isoformat()[:19])
    view = wait(stack, f"{stack.api_url}/v1/requests/{found['id']}", timeout=240)
    assert view["status"] in ("completed", "completed_with_errors")
    first_call = min(e["time"] for e in sim.log)
    assert first_call >= effective.timestamp() - 0.5  # no Azure ML call before the grace period ended


def test_a_message_in_the_poison_queue_is_recorded_as_failed(stack):
    # The host moves a message here after maxDequeueCount failures (tests/devtools/funchost prove that part)
    message = queue(stack, "offboarding-events-poison").send_message(json.dumps({"eventId": "crashed"}))
    failed = wait_for(
        lambda: [
            e
            for e in get(stack, "offboarding/events", status="failed")["value"]
            if e["messageId"] == message.id
        ]
    )
    assert "poison queue" in failed[0]["reason"]
