"""Completion accounting: hundreds of tasks finishing at once still end the request exactly once, with every
task counted (the "all done?" decision is a query over task rows, so there is no counter to lose updates on)."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.core import settings as names
from shared.core.model import Task
from shared.lifecycle import completion
from shared.tasks import dispatch
from tests.integration.conftest import running_request

TASKS = 300


@pytest.fixture
def rt(make_runtime):
    runtime = make_runtime()
    for queue in (names.WORK_QUEUE, names.FINALIZE_QUEUE):
        runtime.storage.queue_service.get_queue_client(queue).clear_messages()
    return runtime


def test_hundreds_of_tasks_finishing_concurrently_end_the_request_once(rt, monkeypatch):
    calls = []

    def noop(ctx):  # a task that only counts itself
        ctx.count("seen")
        calls.append(ctx.task.task_id)

    monkeypatch.setitem(dispatch.HANDLERS, "noop", noop)
    request = running_request(rt)
    rt.store.create_tasks([Task(request.id, f"t{i:04d}", "noop") for i in range(TASKS)])
    # When every task runs at once on 32 threads
    with ThreadPoolExecutor(32) as pool:
        outcomes = list(pool.map(lambda i: dispatch.execute(rt, request.id, f"t{i:04d}"), range(TASKS)))
    # Then each ran once, and at least one finisher saw that nothing was left and asked for finalize
    assert outcomes.count("done") == TASKS
    assert sorted(calls) == [f"t{i:04d}" for i in range(TASKS)]
    assert not rt.store.has_open_tasks(request.id)
    finalize_queue = rt.storage.queue_service.get_queue_client(names.FINALIZE_QUEUE)
    messages = finalize_queue.receive_messages(max_messages=32)
    requested = [json.loads(base64.b64decode(m.content))["requestId"] for m in messages]
    assert requested
    assert set(requested) == {request.id}
    # And however many finalize messages came, the request ends once, counting every task
    results = [completion.finalize(rt, request.id) for _ in requested]
    assert results[0] == "completed"
    assert set(results[1:]) <= {"duplicate"}
    manifest = json.loads(
        rt.storage.container.get_blob_client(f"{request.id}/manifest.json").download_blob().readall()
    )
    assert manifest["families"]["noop"]["tasks"] == TASKS
    assert manifest["families"]["noop"]["seen"] == TASKS


def test_a_concurrent_finalize_never_completes_a_request_whose_next_stage_is_being_spawned(rt, monkeypatch):
    from shared.core.model import WorkspaceRef

    ws = WorkspaceRef("3f2a1b4c-0000-4000-8000-0000000000a1", "rg", "mlw", "westeurope")
    request = running_request(rt, stage="collect")
    runs = Task(
        request.id,
        "ws-x-runs-1",
        "runs",
        workspace=ws,
        status="done",
        found={"pipelines": {"graph": {"g1": "azureml.graphId of run r1"}}},
    )
    rt.store.create_tasks([runs])
    real_spawn = completion.spawn
    outcomes = []

    def racing_spawn(runtime, new_tasks):
        # Another finalize message is handled at the worst moment: while this one moves to the next stage
        monkeypatch.setattr(completion, "spawn", real_spawn)
        outcomes.append(completion.finalize(runtime, request.id))
        real_spawn(runtime, new_tasks)

    monkeypatch.setattr(completion, "spawn", racing_spawn)
    outcomes.append(completion.finalize(rt, request.id))
    stored = rt.store.get_request(request.id)
    assert stored is not None
    assert stored.status == "running", outcomes  # not completed while the pipeline stage has work
    assert stored.stage == "pipelines"
    pipeline_tasks = [t for t in rt.store.list_tasks(request.id) if t.kind == "pipelines"]
    assert [t.status for t in pipeline_tasks] == ["queued"]
