"""Callbacks through the local Functions host: a request with a callbackUrl tells its requester, with signed
CloudEvents, when it waits for approval, when its deadline is extended and when it ends; the status shows the
deliveries."""

from __future__ import annotations

import json
import time

import pytest
import requests

from devtools.demo import APPROVER, SUBMITTER, status, submit, wait
from shared.lifecycle import callback_envelope
from tests.e2e.test_export import export_body
from tests.integration.test_callbacks import Receiver


@pytest.fixture
def receiver(stack, tls):
    instance = Receiver(*tls, port=stack.callback_port)
    yield instance
    instance.stop()


def events(receiver, count, timeout=60):
    deadline = time.monotonic() + timeout
    while len(receiver.received) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return [json.loads(r["body"]) for r in receiver.received]


def test_the_requester_hears_of_approval_extension_and_completion_with_signed_events(stack, sim, receiver):
    key = stack.settings["DSR_CALLBACK_SIGNING_KEY"].encode()
    body = {
        **export_body(sim),
        "type": "erasure",
        "dryRun": False,
        "callbackUrl": f"https://127.0.0.1:{stack.callback_port}/hook",
    }
    created = submit(stack, body, headers=SUBMITTER)
    assert created.status_code == 202, created.text
    view = created.json()
    assert view["status"] == "awaiting_approval"

    first = events(receiver, 1)
    assert [e["type"] for e in first] == ["com.aml-dsr.request.awaiting_approval"]
    assert first[0]["data"]["id"] == view["id"]
    sent = receiver.received[0]
    assert callback_envelope.verify(
        key, sent["headers"][callback_envelope.SIGNATURE_HEADER], sent["body"], time.time()
    )
    assert not callback_envelope.verify(
        b"another key", sent["headers"][callback_envelope.SIGNATURE_HEADER], sent["body"], time.time()
    )
    person = sim.tenant.people["alice"]
    assert person.upn not in sent["body"].decode()  # no identifier of the person leaves in an event
    assert person.object_id not in sent["body"].decode()

    headers = {"x-functions-key": stack.function_key, **APPROVER}
    extend = requests.post(
        f"{view['links']['self']}:extend",
        json={"months": 1, "reason": "many workspaces"},
        headers=headers,
        timeout=30,
    )
    assert extend.status_code == 200, extend.text
    approve = requests.post(f"{view['links']['self']}:approve", json={}, headers=headers, timeout=30)
    assert approve.status_code == 200, approve.text
    ended = wait(stack, view["links"]["self"], timeout=240)
    assert ended["status"] in ("completed", "completed_with_errors")

    received = events(receiver, 3)
    assert [e["type"].rsplit(".", 1)[1] for e in received] == [
        "awaiting_approval",
        "extended",
        ended["status"],
    ]
    assert received[1]["data"]["dueAt"] == ended["dueAt"]
    deliveries = status(stack, view["links"]["self"])["callback"]["deliveries"]
    assert [d["event"] for d in deliveries] == ["awaiting_approval", "extended", ended["status"]]
    assert all(d["status"] == "delivered" for d in deliveries)


def test_a_callback_to_a_host_not_on_the_allow_list_is_refused_at_intake(stack, sim):
    body = {**export_body(sim), "callbackUrl": "https://hooks.example.com/dsr"}
    response = submit(stack, body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "callbackUrl"
