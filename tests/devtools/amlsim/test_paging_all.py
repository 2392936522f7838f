"""Every list of every workspace pages to the end, without gaps or duplicates, stable, under deletes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devtools.amlsim import Simulator

from .conftest import ARM_VERSION, R1, Client, ws_path


def walk_workspace(client: Client, ws: dict[str, Any]) -> dict[str, list[str]]:
    """Ids of every family of one workspace, read only through the paged APIs."""
    path, loc = ws["id"], ws["location"]
    history = "/history/v1.0" + path
    found: dict[str, list[str]] = {}
    computes, _ = client.walk(client.url("arm", path + "/computes"), ARM_VERSION)
    found["computes"] = [c["id"] for c in computes]
    experiments, _ = client.walk(client.url("experiments", history + "/experiments", loc))
    found["experiments"] = [e["experimentId"] for e in experiments]
    found["runs"], found["metrics"], found["artifacts"] = [], [], []
    for exp in experiments:
        runs, _ = client.walk(client.url("experiments", history + f"/experiments/{exp['name']}/runs", loc))
        found["runs"] += [r["runId"] for r in runs]
        metrics, _ = client.walk(
            client.url("experiments", history + f"/experiments/{exp['name']}/metrics", loc)
        )
        found["metrics"] += [m["metricId"] for m in metrics]
        for run in runs:
            container = (
                f"/artifact/v1.0{path}/artifacts/origins/ExperimentRun/containers/{run['dataContainerId']}"
            )
            artifacts, _ = client.walk(client.url("experiments", container, loc))
            found["artifacts"] += [a["artifactId"] for a in artifacts]
    tasks, _ = client.walk(client.url("experiments", f"/notification/v1.0{path}/tasks", loc))
    found["tasks"] = [t["id"] for t in tasks]
    stores, _ = client.walk(
        client.url("experiments", f"/datastore/v1.0{path}/datastores", loc), {"includeSecret": "false"}
    )
    found["datastores"] = [s["name"] for s in stores]
    for kind in ("models", "assets", "images", "services"):
        items, _ = client.walk(client.url("modelmanagement", f"/api{path}/{kind}", loc), ARM_VERSION)
        found[kind] = [i["id"] for i in items]
    return found


def snapshot_ids(ws: dict[str, Any]) -> dict[str, list[str]]:
    families = ws["families"]
    ids = {family: [r["id"] for r in families[family]] for family in families}
    ids["computes"] = [r["body"]["id"] for r in families["computes"]]
    return ids


def test_every_list_walks_to_exactly_the_stored_objects(client: Client, sim: Simulator) -> None:
    sim.page_size = 2
    state = sim.snapshot()
    assert len(state["workspaces"]) == 4
    calls = 0
    for ws in state["workspaces"]:
        walked = walk_workspace(client, ws)
        expected = snapshot_ids(ws)
        for family, ids in walked.items():
            assert len(ids) == len(set(ids)), (ws["name"], family)
            assert ids == expected[family], (ws["name"], family)
            assert ids, (ws["name"], family)
        calls = len(sim.log)
    assert calls > 300


def test_arm_workspace_lists_with_page_size_one(client: Client, sim: Simulator) -> None:
    sim.page_size = 1
    url = client.url("arm", f"/subscriptions/{R1[0]}/providers/Microsoft.MachineLearningServices/workspaces")
    items, pages = client.walk(url, ARM_VERSION)
    assert [w["name"] for w in items] == ["mlw-research-01", "mlw-research-02", "mlw-prod-01"]
    assert len(pages) == 3


def test_the_same_walk_is_stable(client: Client) -> None:
    url = client.url("modelmanagement", "/api" + ws_path(*R1) + "/models")
    first_items, first_pages = client.walk(url, ARM_VERSION)
    second_items, second_pages = client.walk(url, ARM_VERSION)
    assert first_items == second_items
    assert [p.get("nextLink") for p in first_pages] == [p.get("nextLink") for p in second_pages]


def test_deleting_what_was_already_read_neither_skips_nor_repeats(client: Client, sim: Simulator) -> None:
    sim.set_service_lro(
        initial_status=200
    )  # each service goes at once (its 202 operation: test_model_management)
    url = client.url("modelmanagement", "/api" + ws_path(*R1) + "/services")
    everything, _ = client.walk(url, ARM_VERSION)
    first = client.get(url, ARM_VERSION).json()
    for service in first["value"][:3]:  # erase while paging, as an erasure run does
        assert (
            client.delete(
                client.url("modelmanagement", "/api" + ws_path(*R1) + f"/services/{service['id']}"),
                ARM_VERSION,
            ).status_code
            == 200
        )
    rest, _ = client.walk(first["nextLink"])
    assert [s["id"] for s in first["value"] + rest] == [s["id"] for s in everything]


def test_a_continuation_token_of_another_list_is_refused(client: Client) -> None:
    runs = client.url("experiments", "/history/v1.0" + ws_path(*R1) + "/experiments/train-churn-r1/runs")
    token = client.get(runs).json()["continuationToken"]
    experiments = client.url("experiments", "/history/v1.0" + ws_path(*R1) + "/experiments")
    for bad in (token, "%%%", "bm90LWEtdG9rZW4"):
        response = client.get(experiments, {"$continuationtoken": bad})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "InvalidContinuationToken"
    assert client.get(runs, {"$top": "0"}).status_code == 400


def test_concurrent_walks_agree(client: Client, sim: Simulator) -> None:
    sim.page_size = 3
    ws = next(w for w in sim.snapshot()["workspaces"] if w["name"] == "mlw-research-01")
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: walk_workspace(client, ws), range(6)))
    assert all(result == results[0] for result in results)
    assert results[0]["runs"] == snapshot_ids(ws)["runs"]


@pytest.mark.parametrize("size", [1, 4, 100])
def test_history_page_sizes(client: Client, sim: Simulator, size: int) -> None:
    sim.page_size = size
    url = client.url("experiments", "/history/v1.0" + ws_path(*R1) + "/experiments/train-churn-r1/metrics")
    items, pages = client.walk(url)
    assert len(items) == 13
    assert len(pages) == -(-13 // size)
