"""D1: deleting a workspace, at once or as a long-running operation (Azure-AsyncOperation, Location)."""

from __future__ import annotations

import time

import pytest

from devtools.amlsim import Simulator

from .conftest import ARM_VERSION, R1, R2, Client, ws_path

HISTORY = "/history/v1.0" + ws_path(*R1) + "/experiments"


def test_async_operation_in_progress_then_succeeded_and_everything_is_gone(
    client: Client, sim: Simulator
) -> None:
    sim.set_lro(polls_in_progress=2, outcome="Succeeded", retry_after=3)
    before = sim.truth("alice")
    assert ws_path(*R1) in before["workspaces"]
    response = client.delete(client.url("arm", ws_path(*R1)), ARM_VERSION)
    assert response.status_code == 202
    assert response.headers["Retry-After"] == "3"
    status_url = response.headers["Azure-AsyncOperation"]
    assert status_url.startswith(f"{sim.base_url}/management.azure.com/subscriptions/{R1[0]}/")
    assert response.headers["Location"].startswith(f"{sim.base_url}/management.azure.com/")
    during = client.get(client.url("arm", ws_path(*R1)), ARM_VERSION)
    assert during.status_code == 200
    assert during.json()["properties"]["provisioningState"] == "Deleting"
    again = client.delete(client.url("arm", ws_path(*R1)), ARM_VERSION)
    assert again.status_code == 202
    assert again.headers["Azure-AsyncOperation"] == status_url  # the same operation
    statuses = [client.get(status_url).json()["status"] for _ in range(3)]
    assert statuses == ["InProgress", "InProgress", "Succeeded"]
    assert client.get(status_url).json()["status"] == "Succeeded"
    gone = client.get(client.url("arm", ws_path(*R1)), ARM_VERSION)
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "ResourceNotFound"
    assert client.get(client.url("experiments", HISTORY)).status_code == 404
    assert (
        client.get(client.url("modelmanagement", "/api" + ws_path(*R1) + "/models"), ARM_VERSION).status_code
        == 404
    )
    after = sim.truth("alice")
    assert ws_path(*R1) not in after["workspaces"]
    assert len(after["models"]) < len(before["models"])
    assert not any(i.startswith(ws_path(*R1)) for i in after["computes"])
    assert client.delete(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 204
    assert client.get(client.url("arm", ws_path(*R2)), ARM_VERSION).status_code == 200  # the neighbour stays


def test_location_answers_202_while_running_then_200(client: Client, sim: Simulator) -> None:
    sim.set_lro(polls_in_progress=2)
    location = client.delete(client.url("arm", ws_path(*R1)), ARM_VERSION).headers["Location"]
    codes = []
    for _ in range(3):
        poll = client.get(location)
        codes.append(poll.status_code)
        if poll.status_code == 202:
            assert poll.headers["Location"] == location
            assert poll.headers["Retry-After"] == "1"
    assert codes == [202, 202, 200]
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 404


@pytest.mark.parametrize(("outcome", "location_status"), [("Failed", 500), ("Canceled", 409)])
def test_failed_or_canceled_operation_keeps_the_workspace(
    client: Client, sim: Simulator, outcome: str, location_status: int
) -> None:
    sim.set_lro(polls_in_progress=1, outcome=outcome)
    response = client.delete(client.url("arm", ws_path(*R1)), ARM_VERSION)
    status_url, location = response.headers["Azure-AsyncOperation"], response.headers["Location"]
    assert client.get(status_url).json()["status"] == "InProgress"
    final = client.get(status_url).json()
    assert final["status"] == outcome
    assert final["error"]["code"] in ("WorkspaceDeletionFailed", "OperationCanceled")
    assert final["error"]["message"]
    result = client.get(location)
    assert result.status_code == location_status
    assert result.json()["error"] == final["error"]
    still = client.get(client.url("arm", ws_path(*R1)), ARM_VERSION)
    assert still.status_code == 200
    assert still.json()["properties"]["provisioningState"] == "Succeeded"
    assert client.get(client.url("experiments", HISTORY)).status_code == 200


@pytest.mark.parametrize("status", [200, 204])
def test_synchronous_delete(client: Client, sim: Simulator, status: int) -> None:
    sim.set_lro(initial_status=status)
    response = client.delete(client.url("arm", ws_path(*R1)), ARM_VERSION)
    assert response.status_code == status
    assert "Azure-AsyncOperation" not in response.headers
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 404


def test_unknown_operation_and_bad_settings(client: Client, sim: Simulator) -> None:
    url = client.url(
        "arm",
        f"/subscriptions/{R1[0]}/providers/Microsoft.MachineLearningServices/locations/westeurope"
        "/workspaceOperationsStatus/nope",
    )
    assert client.get(url, ARM_VERSION).status_code == 404
    with pytest.raises(ValueError, match="outcome"):
        sim.set_lro(outcome="Maybe")
    with pytest.raises(ValueError, match="initial_status"):
        sim.set_lro(initial_status=201)


# -- soft delete and purge (concept-soft-delete; stable/2024-04-01/workspaceRP.json WorkspaceForceToPurgeParameter)
PURGE_VERSION = {"api-version": "2024-04-01", "forceToPurge": "true"}
DAY = 24 * 3600


def test_a_delete_without_force_to_purge_soft_deletes_the_data_is_kept_and_recoverable(
    client: Client, sim: Simulator
) -> None:
    sim.set_lro(polls_in_progress=0, initial_status=202)
    objects = sim.tenant.find_workspace(*R1)
    assert objects is not None
    held = objects.count()
    response = client.delete(client.url("arm", ws_path(*R1)), {"api-version": "2025-12-01"})
    assert response.status_code == 202
    assert client.get(response.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded"
    # It answers 404 everywhere, like a purged one would
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 404
    assert client.get(client.url("experiments", HISTORY)).status_code == 404
    # But its data is retained for 14 days, and it can be recovered whole
    [entry] = sim.deleted_workspaces().values()
    assert entry["state"] == "soft-deleted"
    assert entry["objectsRetained"] == held > 0
    deleted_at = time.mktime(time.strptime(entry["deletedAt"], "%Y-%m-%dT%H:%M:%SZ"))
    until = time.mktime(time.strptime(entry["recoverableUntil"], "%Y-%m-%dT%H:%M:%SZ"))
    assert until - deleted_at == 14 * DAY
    assert sim.recover_workspace(ws_path(*R1)) == {"id": ws_path(*R1), "objects": held}
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 200
    assert client.get(client.url("experiments", HISTORY)).status_code == 200
    assert sim.deleted_workspaces() == {}


def test_force_to_purge_at_an_api_version_that_has_it_purges(client: Client, sim: Simulator) -> None:
    sim.set_lro(polls_in_progress=1, initial_status=202)
    response = client.delete(client.url("arm", ws_path(*R1)), PURGE_VERSION)
    assert response.status_code == 202
    assert {"Azure-AsyncOperation", "Location", "Retry-After"} <= set(response.headers)
    assert sim.deleted_workspaces() == {}  # nothing happens before the operation ends
    assert [client.get(response.headers["Location"]).status_code for _ in range(2)] == [202, 200]
    entry = sim.deleted_workspaces()[ws_path(*R1)]
    assert (entry["state"], entry["purgedBy"], entry["objectsRetained"]) == ("purged", "forceToPurge", 0)
    assert entry["objectsAtDeletion"] > 0
    with pytest.raises(KeyError):
        sim.recover_workspace(ws_path(*R1))
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 404
    assert sim.snapshot()["deletedWorkspaces"][0]["state"] == "purged"


@pytest.mark.parametrize("version", ["2019-11-01", "2023-10-01", "2023-06-01-preview"])
def test_force_to_purge_at_an_older_api_version_is_ignored_and_soft_deletes(
    client: Client, sim: Simulator, version: str
) -> None:
    sim.set_lro(initial_status=200)
    response = client.delete(
        client.url("arm", ws_path(*R1)), {"api-version": version, "forceToPurge": "true"}
    )
    assert response.status_code == 200
    assert sim.deleted_workspaces()[ws_path(*R1)]["state"] == "soft-deleted"


def test_a_soft_deleted_workspace_is_purged_by_a_later_force_to_purge_or_when_retention_ends(
    client: Client, sim: Simulator
) -> None:
    sim.set_lro(initial_status=204)
    for ws in (R1, R2):
        assert client.delete(client.url("arm", ws_path(*ws)), ARM_VERSION).status_code == 204
    # a second plain DELETE finds nothing: 204, still soft-deleted
    assert client.delete(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 204
    assert sim.deleted_workspaces()[ws_path(*R1)]["state"] == "soft-deleted"
    assert client.delete(client.url("arm", ws_path(*R1)), PURGE_VERSION).status_code == 204
    assert sim.deleted_workspaces()[ws_path(*R1)]["state"] == "purged"
    # R2's retention ends: the service purges it
    assert sim.expire_soft_deleted(time.time() + 13 * DAY) == []
    assert sim.expire_soft_deleted(time.time() + 14 * DAY + 60) == [ws_path(*R2)]
    assert sim.deleted_workspaces()[ws_path(*R2)]["purgedBy"] == "retention expired"


def test_the_control_api_shows_deleted_workspaces_and_recovers(client: Client, sim: Simulator) -> None:
    sim.set_lro(initial_status=200)
    client.delete(client.url("arm", ws_path(*R2)), ARM_VERSION)
    session, base = client.session, sim.base_url
    shown = session.get(f"{base}/_sim/deleted", verify=client.cert, timeout=10).json()
    assert shown[ws_path(*R2)]["state"] == "soft-deleted"
    back = session.post(f"{base}/_sim/recover", json={"id": ws_path(*R2)}, verify=client.cert, timeout=10)
    assert back.status_code == 200
    assert back.json()["id"] == ws_path(*R2)
    assert session.get(f"{base}/_sim/deleted", verify=client.cert, timeout=10).json() == {}
    missing = session.post(f"{base}/_sim/recover", json={"id": ws_path(*R2)}, verify=client.cert, timeout=10)
    assert missing.status_code == 400
