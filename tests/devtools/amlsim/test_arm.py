"""ARM: subscription and resource-group workspace lists, E1-E4, the corrected paths, errors, api-version."""

from __future__ import annotations

import json

from devtools.amlsim.fixture import SUBSCRIPTION_1, SUBSCRIPTION_2

from .conftest import ARM_VERSION, PROD, R1, Client, ws_path

PROVIDER = "/providers/Microsoft.MachineLearningServices/workspaces"


def test_subscription_list_pages_to_all_workspaces_of_the_subscription(client: Client) -> None:
    items, pages = client.walk(client.url("arm", f"/subscriptions/{SUBSCRIPTION_1}{PROVIDER}"), ARM_VERSION)
    assert [w["name"] for w in items] == ["mlw-research-01", "mlw-research-02", "mlw-prod-01"]
    assert len(pages) == 1
    assert "nextLink" not in pages[0]
    items2, _ = client.walk(client.url("arm", f"/subscriptions/{SUBSCRIPTION_2}{PROVIDER}"), ARM_VERSION)
    assert [w["name"] for w in items2] == ["mlw-analytics"]


def test_e1_lists_the_workspaces_of_a_resource_group(client: Client) -> None:
    url = client.url("arm", f"/subscriptions/{SUBSCRIPTION_1}/resourceGroups/rg-research{PROVIDER}")
    response = client.get(url, ARM_VERSION)
    assert response.status_code == 200
    body = response.json()
    assert [w["name"] for w in body["value"]] == ["mlw-research-01", "mlw-research-02"]
    assert all(w["location"] == "westeurope" for w in body["value"])
    empty = client.get(
        client.url("arm", f"/subscriptions/{SUBSCRIPTION_2}/resourceGroups/rg-empty{PROVIDER}"), ARM_VERSION
    )
    assert empty.status_code == 200
    assert empty.json() == {"value": []}


def test_e2_one_workspace_has_arm_shape_and_local_discovery_url(client: Client) -> None:
    response = client.get(client.url("arm", ws_path(*PROD)), ARM_VERSION)
    assert response.status_code == 200
    ws = response.json()
    assert ws["id"] == ws_path(*PROD)
    assert ws["name"] == "mlw-prod-01"
    assert ws["type"] == "Microsoft.MachineLearningServices/workspaces"
    assert ws["location"] == "northeurope"
    assert ws["properties"]["discoveryUrl"] == f"{client.sim.base_url}/northeurope.api.azureml.ms/discovery"
    assert ws["properties"]["provisioningState"] == "Succeeded"
    # api-version 2019-11-01 has no systemData: a workspace names nobody (devtools/amlsim/contract.py)
    assert "systemData" not in ws
    r1 = client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).json()
    assert "systemData" not in r1
    assert "createdBy" not in json.dumps(r1)


def test_arm_names_are_case_insensitive(client: Client) -> None:
    sub, _, _ = R1
    path = ws_path(sub.upper(), "RG-Research", "MLW-Research-01")
    response = client.get(client.url("arm", path), ARM_VERSION)
    assert response.status_code == 200
    assert response.json()["name"] == "mlw-research-01"


def test_e3_computes_page_and_e4_one_compute(client: Client) -> None:
    items, pages = client.walk(client.url("arm", ws_path(*R1) + "/computes"), ARM_VERSION)
    assert len(items) == 12
    assert [len(p["value"]) for p in pages] == [5, 5, 2]
    assert all(
        "$skipToken=" in p["nextLink"] and "api-version=2019-11-01" in p["nextLink"] for p in pages[:2]
    )
    assert "nextLink" not in pages[2]
    names = [c["name"] for c in items]
    assert len(set(names)) == 12
    instance = next(c for c in items if c["properties"]["computeType"] == "ComputeInstance")
    one = client.get(client.url("arm", ws_path(*R1) + f"/computes/{instance['name']}"), ARM_VERSION)
    assert one.status_code == 200
    body = one.json()
    assert body == instance
    assert body["id"] == ws_path(*R1) + f"/computes/{instance['name']}"
    assert body["type"] == "Microsoft.MachineLearningServices/workspaces/computes"
    # 2019-11-01 (examples/getComputeInstance.json): createdBy {userName, userOrgId, userId}, no assignedUser
    created = body["properties"]["properties"]["createdBy"]
    assert set(created) == {"userName", "userOrgId", "userId"}
    assert created["userId"] in {p["objectId"] for p in client.sim.people.values()} | {
        client.sim.tenant.principals["automation"].object_id
    }
    assert "personalComputeInstanceSettings" not in body["properties"]["properties"]
    assert "systemData" not in body
    cluster = next(c for c in items if c["properties"]["computeType"] == "AmlCompute")
    assert "createdBy" not in json.dumps(cluster)


def test_defective_resource_group_segment_is_404_and_corrected_one_answers(client: Client) -> None:
    sub, rg, ws = R1
    bad = (
        f"/subscriptions/{sub}/resourceGroup/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
    )
    for suffix in ("/computes", "/computes/cc-r1-01"):
        wrong = client.get(client.url("arm", bad + suffix), ARM_VERSION)
        assert wrong.status_code == 404
        assert wrong.json()["error"]["code"].endswith("NotFound")
        right = client.get(client.url("arm", ws_path(*R1) + suffix), ARM_VERSION)
        assert right.status_code == 200


def test_unknown_ids_answer_arm_not_found_errors(client: Client) -> None:
    sub, rg, _ = R1
    cases = {
        ws_path(sub, rg, "nope"): "ResourceNotFound",
        ws_path(sub, "rg-nope", "nope"): "ResourceGroupNotFound",
        ws_path("00000000-0000-0000-0000-000000000000", rg, "nope"): "SubscriptionNotFound",
        ws_path(*R1) + "/computes/nope": "ResourceNotFound",
        f"/subscriptions/{sub}/resourceGroups/rg-nope{PROVIDER}": "ResourceGroupNotFound",
    }
    for path, code in cases.items():
        response = client.get(client.url("arm", path), ARM_VERSION)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == code, path
        assert response.json()["error"]["message"]


def test_api_version_is_required_on_arm(client: Client) -> None:
    missing = client.get(client.url("arm", ws_path(*R1)))
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"
    bad = client.get(client.url("arm", ws_path(*R1)), {"api-version": "latest"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "InvalidApiVersionParameter"


def test_arm_skip_token_is_bound_to_its_list(client: Client) -> None:
    first = client.get(client.url("arm", ws_path(*R1) + "/computes"), ARM_VERSION).json()
    token = first["nextLink"].split("$skipToken=")[1]
    other = client.get(client.url("arm", ws_path(*PROD) + "/computes"), {**ARM_VERSION, "$skipToken": token})
    assert other.status_code == 400
    assert other.json()["error"]["code"] == "InvalidContinuationToken"


def test_unknown_host_and_method(client: Client) -> None:
    response = client.get(f"{client.sim.base_url}/example.com/anything")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "HostNotFound"
    put = client.request("PUT", client.url("arm", ws_path(*R1)), params=ARM_VERSION, json={})
    assert put.status_code == 405
