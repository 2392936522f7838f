"""D1: deleting a workspace, at once or as a long-running operation (Azure-AsyncOperation, Location)."""

from __future__ import annotations

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
