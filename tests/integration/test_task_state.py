"""A task's state larger than a Table property (64 KiB) round-trips through a blob, on Azurite."""

from __future__ import annotations

from shared.core.model import Task, WorkspaceRef, new_request_id
from shared.runtime import Runtime
from shared.storage.store import SPILL_CHARS, SPILL_PREFIX

WS = WorkspaceRef("00000000-0000-4000-8000-0000000000b2", "rg-ml", "mlw-sweeps", "westeurope")


def state_blobs(rt: Runtime, request_id: str) -> list[str]:
    return sorted(b.name for b in rt.storage.container.list_blobs(name_starts_with=f"{request_id}/_state/"))


def test_a_checkpoint_of_thousands_of_run_ids_is_kept_whole(rt):
    # Given a runs task of someone's hyperparameter sweep: 6,000 kept run ids (about 250,000 characters)
    request_id = new_request_id()
    task = Task(request_id, "ws-sweeps-exp-1", "runs", workspace=WS, params={"experiment": "sweep"})
    rt.store.create_tasks([task])
    stored = rt.store.get_task(request_id, task.task_id)
    assert stored is not None
    run_ids = [f"HD_5f0c3a9e-1b2d-4c3e-8f00-{i:012d}" for i in range(6000)]
    stored.checkpoint = {"runIds": run_ids, "page": "token-after-page-120"}

    # When it is saved and read back
    rt.store.update_task(stored)
    again = rt.store.get_task(request_id, task.task_id)

    # Then nothing is lost, the row holds a pointer, and one blob holds the state
    assert again is not None
    assert again.checkpoint["runIds"] == run_ids
    assert again.checkpoint["page"] == "token-after-page-120"
    assert again.params == {"experiment": "sweep"}  # small fields stay in the row
    row = rt.store.requests.get_entity(request_id, "task-" + task.task_id)
    assert row["Checkpoint"].startswith(SPILL_PREFIX)
    assert len(row["Checkpoint"]) < SPILL_CHARS
    assert not row["Params"].startswith(SPILL_PREFIX)
    first = state_blobs(rt, request_id)
    assert len(first) == 1

    # When the checkpoint grows and is saved again, the old blob goes; when it shrinks, the row holds it again
    again.checkpoint["runIds"].append("HD_5f0c3a9e-1b2d-4c3e-8f00-999999999999")
    rt.store.update_task(again)
    second = state_blobs(rt, request_id)
    assert len(second) == 1
    assert second != first
    latest = rt.store.get_task(request_id, task.task_id)
    assert latest is not None
    assert len(latest.checkpoint["runIds"]) == 6001
    latest.checkpoint = {"done": True}
    rt.store.update_task(latest)
    assert state_blobs(rt, request_id) == []
    final = rt.store.get_task(request_id, task.task_id)
    assert final is not None
    assert final.checkpoint == {"done": True}


def test_large_params_of_a_new_task_are_spilled_when_it_is_created(rt):
    request_id = new_request_id()
    refs = {"graph": {f"graph-{i:05d}": "used by the subject's pipeline run" for i in range(1500)}}
    rt.store.create_tasks(
        [Task(request_id, "ws-pipelines", "pipelines", workspace=WS, params={"refs": refs})]
    )
    task = rt.store.get_task(request_id, "ws-pipelines")
    assert task is not None
    assert task.params["refs"] == refs
    assert len(state_blobs(rt, request_id)) == 1
