"""Nothing hangs: poisoned work becomes a reported failure, the sweeper re-enqueues lost work, :retry re-runs
only what failed."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import requests
from azure.identity import ManagedIdentityCredential
from azure.storage.queue import QueueClient, TextBase64EncodePolicy

from devtools.demo import wait
from devtools.stack import APP_CLIENT_ID
from shared.core.matching import Subject
from shared.core.model import DsrRequest, Task, WorkspaceRef, utcnow
from shared.core.settings import Settings
from shared.lifecycle import recovery
from shared.runtime import Runtime


def runtime() -> Runtime:
    rt = Runtime.create(Settings.from_env(), ManagedIdentityCredential(client_id=APP_CLIENT_ID))
    rt.storage.ensure()
    return rt


def a_running_request(rt: Runtime, sim, workspace_name: str) -> tuple[DsrRequest, Task]:
    ws = next(w for w in sim.tenant.workspaces.values() if w.name == workspace_name)
    person = sim.tenant.people["alice"]
    request = DsrRequest(
        id=str(uuid.uuid4()),
        type="export",
        subject=Subject(person.object_id, person.upn, person.email),
        scope={"workspaces": [ws.arm_id]},
        received_at=utcnow(),
        status="running",
        stage="done",
    )
    rt.store.create_request(request)
    task = Task(
        request.id,
        "ws-probe-models",
        "models",
        workspace=WorkspaceRef(ws.subscription_id, ws.resource_group, ws.name, ws.location),
    )
    rt.store.create_tasks([task])
    return request, task


def send(stack, queue_name: str, body: dict) -> None:
    QueueClient(
        stack.settings["AzureWebJobsStorage__queueServiceUri"],
        queue_name,
        credential=ManagedIdentityCredential(client_id=APP_CLIENT_ID),
        message_encode_policy=TextBase64EncodePolicy(),
    ).send_message(json.dumps(body))


def test_a_poisoned_task_fails_its_request_visibly_and_retry_reruns_only_it(stack, sim):
    rt = runtime()
    request, task = a_running_request(rt, sim, "mlw-research-01")
    # Given the task's message landed in the poison queue (the host does that after maxDequeueCount failures)
    send(stack, "dsr-work-poison", {"requestId": request.id, "taskId": task.task_id})
    location = f"{stack.api_url}/v1/requests/{request.id}"
    view = wait(stack, location, timeout=60)
    # Then the request ends completed_with_errors naming the task, instead of hanging
    assert view["status"] == "completed_with_errors"
    [error] = view["errors"]
    assert error["task"] == task.task_id
    assert "poison queue" in error["reason"]
    # When an operator retries, only the failed task runs again, and the request completes
    sim.clear_log()
    response = requests.post(f"{location}:retry", headers={"x-functions-key": stack.function_key}, timeout=30)
    assert response.status_code == 202, response.text
    done = wait(stack, location, timeout=60)
    assert done["status"] == "completed"
    assert done["progress"]["models"]["done"] == 1
    assert {e["path"].split("/")[-1] for e in sim.log if e["method"] == "GET"} >= {"models"}
    assert all("/models" in e["path"] for e in sim.log)  # nothing but the retried family was called
    again = requests.post(f"{location}:retry", headers={"x-functions-key": stack.function_key}, timeout=30)
    assert again.status_code == 409


def test_the_sweeper_re_enqueues_a_task_whose_lease_expired(stack, sim):
    rt = runtime()
    request, task = a_running_request(rt, sim, "mlw-research-02")
    stored = rt.store.get_task(request.id, task.task_id)
    assert stored is not None
    # Given a task whose worker died mid-way: running, lease long expired, its message gone
    stored.status = "running"
    stored.lease_owner = "a-dead-worker"
    stored.lease_until = utcnow() - dt.timedelta(minutes=5)
    rt.store.update_task(stored)
    # When the sweeper runs
    counts = recovery.sweep(rt)
    # Then it re-enqueued it, and the request completes
    assert counts["tasks"] >= 1
    view = wait(stack, f"{stack.api_url}/v1/requests/{request.id}", timeout=60)
    assert view["status"] == "completed"
    assert view["progress"]["models"]["recordsKept"] == len(
        [
            m
            for m in next(w for w in sim.tenant.workspaces.values() if w.name == "mlw-research-02").records(
                "models"
            )
            if m.owner == "alice"
        ]
    )


def test_the_client_side_limiter_keeps_429s_under_one_percent(stack, sim):
    from devtools.demo import container_client, submit
    from devtools.package_check import expected_export, read_package

    # Given the simulator enforcing tight ARM-like buckets, and a host whose limiter knows the same numbers
    sim.set_rate_limit(enabled=True, read_burst=15, read_rate=20.0, delete_burst=10, delete_rate=5.0)
    normal = stack.host_processes[0]
    stack.stop_host(normal)
    stack.start_host(DSR_RATE_READ_BURST="15", DSR_RATE_READS_PER_SECOND="20")
    try:
        sim.clear_log()
        person = sim.tenant.people["alice"]
        body = {
            "type": "export",
            "subject": {"objectId": person.object_id, "userPrincipalName": person.upn, "email": person.email},
            "scope": {"subscriptions": sorted({w.subscription_id for w in sim.tenant.workspaces.values()})},
        }
        response = submit(stack, body)
        view = wait(stack, response.headers["Location"], timeout=240)
    finally:
        sim.set_rate_limit(enabled=False)
        stack.stop_host(stack.host_processes[0])
        stack.start_host()
    assert view["status"] == "completed", view["errors"]
    calls = [e for e in sim.log if not e["path"].startswith("/_sim")]
    throttled = [e for e in calls if e["status"] == 429]
    assert len(calls) > 200
    assert len(throttled) / len(calls) < 0.01, (len(throttled), len(calls))
    report = read_package(container_client(stack), view["id"])
    assert report.compare(expected_export(sim, "alice")) == {}


def test_a_task_that_yields_after_every_page_resumes_from_its_checkpoint(stack, sim):
    from devtools.demo import container_client, submit
    from devtools.package_check import expected_export, read_package

    # Given a host whose time budget is spent after every page: each task saves its cursor, re-enqueues
    # itself and continues in a fresh invocation, page after page
    stack.stop_host(stack.host_processes[0])
    stack.start_host(DSR_TASK_TIME_BUDGET_SECONDS="0")
    try:
        sim.clear_log()
        person = sim.tenant.people["bob"]
        body = {
            "type": "export",
            "subject": {"objectId": person.object_id, "userPrincipalName": person.upn, "email": person.email},
            "scope": {"subscriptions": sorted({w.subscription_id for w in sim.tenant.workspaces.values()})},
        }
        view = wait(stack, submit(stack, body).headers["Location"], timeout=240)
        yields = [
            line for line in stack.host_processes[0].log if "Functions.work" in line and "Executed" in line
        ]
    finally:
        stack.stop_host(stack.host_processes[0])
        stack.start_host()
    assert view["status"] == "completed", view["errors"]
    tasks = sum(p["tasks"] for p in view["progress"].values())
    assert len(yields) > tasks * 1.5  # most tasks ran in several invocations
    report = read_package(container_client(stack), view["id"])
    assert report.compare(expected_export(sim, "bob")) == {}
    assert report.duplicates == []
    assert report.hash_mismatches == []
