"""Workflow rules that depend on settings, against keyless Azurite (no host, no simulator needed)."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from azure.identity import ManagedIdentityCredential

from shared.core import settings as names
from shared.core.errors import ForbiddenError
from shared.core.principal import Principal
from shared.core.settings import Settings
from shared.lifecycle import decisions, intake
from shared.lifecycle.submission import SubmitIn
from shared.runtime import Runtime
from tests.conftest import APP_CLIENT_ID

SUB = "3f2a1b4c-0000-4000-8000-0000000000a1"
WS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw-one"
ALICE = {"objectId": "0a1b2c3d-0000-4000-8000-000000000001"}


@pytest.fixture
def base_settings(azurite, identity_endpoint, tls, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls[0]))
    for key, value in identity_endpoint.environment().items():
        monkeypatch.setenv(key, value)
    return Settings.from_env(
        {
            names.STORAGE_BLOB_URI: azurite.url("blob"),
            names.STORAGE_QUEUE_URI: azurite.url("queue"),
            names.STORAGE_TABLE_URI: azurite.url("table"),
            names.IDENTITY_CLIENT_ID: APP_CLIENT_ID,
            names.PSEUDONYM_KEY: "test-key",
        }
    )


def runtime(settings: Settings, **changes) -> Runtime:
    rt = Runtime.create(
        dataclasses.replace(settings, **changes), ManagedIdentityCredential(client_id=APP_CLIENT_ID)
    )
    rt.storage.ensure()
    rt.storage.queue_service.get_queue_client(names.PLAN_QUEUE).clear_messages()
    return rt


def requests_stored(rt: Runtime) -> int:
    return len(list(rt.store.requests.query_entities("RowKey eq 'request'", select=["PartitionKey"])))


def test_workspace_deletion_is_refused_when_the_setting_is_off_and_nothing_is_stored(base_settings):
    rt = runtime(base_settings, allow_workspace_deletion=False)
    before = requests_stored(rt)
    body = SubmitIn.model_validate(
        {"type": "erasure", "scope": {"workspaces": [WS]}, "deleteWorkspace": {"confirm": "mlw-one"}}
    )
    with pytest.raises(ForbiddenError, match="DSR_ALLOW_WORKSPACE_DELETION"):
        intake.submit(rt, body, None)
    assert requests_stored(rt) == before
    assert rt.storage.queue_service.get_queue_client(names.PLAN_QUEUE).peek_messages() == []


@pytest.mark.parametrize(("auto", "expected"), [(False, "awaiting_approval"), (True, "accepted")])
def test_erasure_waits_for_approval_unless_policy_approves_it(base_settings, auto, expected):
    rt = runtime(base_settings, auto_approve_erasure=auto)
    body = SubmitIn.model_validate({"type": "erasure", "subject": ALICE, "scope": {"workspaces": [WS]}})
    request, _ = intake.submit(rt, body, None, Principal("p1", "officer", "easyauth"))
    assert request.status == expected
    assert request.submitted_by == {"id": "p1", "name": "officer", "source": "easyauth"}
    queued = rt.storage.queue_service.get_queue_client(names.PLAN_QUEUE).peek_messages()
    assert len(queued) == (1 if auto else 0)


def test_dry_run_erasure_needs_no_approval(base_settings):
    rt = runtime(base_settings)
    body = SubmitIn.model_validate(
        {"type": "erasure", "dryRun": True, "subject": ALICE, "scope": {"workspaces": [WS]}}
    )
    request, _ = intake.submit(rt, body, None)
    assert (request.status, request.dry_run) == ("accepted", True)


def test_an_idempotency_key_belongs_to_the_caller_that_used_it(base_settings):
    # Given two callers who happen to use the same Idempotency-Key for the same body
    rt = runtime(base_settings)
    body = SubmitIn.model_validate({"type": "export", "subject": ALICE, "scope": {"workspaces": [WS]}})
    first = Principal("0a1b2c3d-0000-4000-8000-0000000000f1", "ticketing", "entra-app")
    second = Principal("0a1b2c3d-0000-4000-8000-0000000000f2", "hr-system", "entra-app")
    mine, replayed = intake.submit(rt, body, "ticket-42", first)
    assert not replayed
    # When the second caller submits, it gets a request of its own, not the first caller's
    theirs, replayed = intake.submit(rt, body, "ticket-42", second)
    assert not replayed
    assert theirs.id != mine.id
    assert theirs.submitted_by["id"] == second.id
    # And the first caller, in any letter case of its id, still replays its own
    again, replayed = intake.submit(rt, body, "ticket-42", dataclasses.replace(first, id=first.id.upper()))
    assert (again.id, replayed) == (mine.id, True)


@pytest.mark.parametrize(("auto", "expected"), [(False, "awaiting_approval"), (True, "accepted")])
def test_whole_workspace_export_waits_for_approval_unless_the_setting_approves_it(
    base_settings, auto, expected
):
    # A whole-workspace export holds everyone's records: it waits for approval like an erasure
    rt = runtime(base_settings, auto_approve_whole_workspace_export=auto)
    body = SubmitIn.model_validate({"type": "export", "wholeWorkspace": True, "scope": {"workspaces": [WS]}})
    request, _ = intake.submit(rt, body, None, Principal("p1", "officer", "easyauth"))
    assert (request.status, request.subject) == (expected, None)
    queued = rt.storage.queue_service.get_queue_client(names.PLAN_QUEUE).peek_messages()
    assert len(queued) == (1 if auto else 0)


def test_an_approved_whole_workspace_export_is_planned(base_settings):
    rt = runtime(base_settings)
    body = SubmitIn.model_validate({"type": "export", "wholeWorkspace": True, "scope": {"workspaces": [WS]}})
    request, _ = intake.submit(rt, body, None, Principal("p1", "officer", "easyauth"))
    plan = rt.storage.queue_service.get_queue_client(names.PLAN_QUEUE)
    assert (request.status, plan.peek_messages()) == ("awaiting_approval", [])
    approved = decisions.decide(
        rt, request.id, "approve", Principal("p2", "approver", "easyauth"), "ticket 7"
    )
    assert approved.status == "accepted"
    assert approved.decision["by"]["id"] == "p2"
    assert [json.loads(base64.b64decode(m.content))["requestId"] for m in plan.peek_messages()] == [
        request.id
    ]


@pytest.mark.parametrize("auto", [False, True])
def test_a_subjects_export_never_waits_for_approval(base_settings, auto):
    rt = runtime(base_settings, auto_approve_whole_workspace_export=auto)
    body = SubmitIn.model_validate({"type": "export", "subject": ALICE, "scope": {"workspaces": [WS]}})
    request, _ = intake.submit(rt, body, None)
    assert request.status == "accepted"
