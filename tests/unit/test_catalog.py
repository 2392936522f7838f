"""The endpoint catalog: every published endpoint is there, with the two documented defects corrected."""

import pytest

from shared.aml.catalog import (
    ENDPOINTS,
    FAMILIES,
    FAMILY_TITLES,
    PIPELINE_KINDS,
    V2_TASK_KINDS,
    WORKSPACE_FAMILIES,
)
from shared.core.outbound import UnsafePathSegmentError

WS_VALUES = {"subscriptionId": "s", "resourceGroupName": "rg", "workspaceName": "ws"}
WS_PATH = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"


def test_every_published_endpoint_is_catalogued():
    expected = {f"E{i}" for i in range(1, 28)} | {f"D{i}" for i in range(1, 6)} | {"S1"}
    expected |= {f"V{i}" for i in range(1, 37)}  # the v2 (ARM) families: a list and a get each
    assert set(ENDPOINTS) == expected


def test_compute_paths_use_resource_groups_plural():
    # The published text prints /resourceGroup/ (singular) for E3 and E4; ARM's segment is resourceGroups.
    assert ENDPOINTS["E3"].render(**WS_VALUES) == WS_PATH + "/computes"
    assert ENDPOINTS["E4"].render(**WS_VALUES, computeName="gpu") == WS_PATH + "/computes/gpu"
    assert "/resourceGroup/" not in ENDPOINTS["E3"].path


def test_notification_task_path_has_its_slash():
    # The published text prints .../workspaces/{workspaceName}tasks/{taskId}.
    assert ENDPOINTS["E12"].render(**WS_VALUES, taskId="t1") == "/notification/v1.0" + WS_PATH + "/tasks/t1"


def test_paths_per_service():
    assert (
        ENDPOINTS["E6"].render(**WS_VALUES, experimentName="exp")
        == "/history/v1.0" + WS_PATH + "/experiments/exp/runs"
    )
    assert ENDPOINTS["E10"].render(**WS_VALUES, containerId="dcid.r1") == (
        "/artifact/v1.0" + WS_PATH + "/artifacts/origins/ExperimentRun/containers/dcid.r1"
    )
    assert (
        ENDPOINTS["E14"].render(**WS_VALUES, name="blob") == "/datastore/v1.0" + WS_PATH + "/datastores/blob"
    )
    # model management as azureml-core builds it, not the 2020 procedure's `/api` form
    assert (
        ENDPOINTS["D2"].render(**WS_VALUES, id="m:1") == "/modelmanagement/v1.0" + WS_PATH + "/models/m%3A1"
    )
    assert ENDPOINTS["E24"].render(**WS_VALUES, graphId="g") == "/api/v1.0" + WS_PATH + "/Graphs/g"
    assert ENDPOINTS["E1"].render(subscriptionId="s", resourceGroupName="rg") == (
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces"
    )


def test_values_are_encoded_as_one_segment():
    rendered = ENDPOINTS["E7"].render(**WS_VALUES, experimentName="exp 1", runId="a:b..c")
    assert rendered.endswith("/experiments/exp%201/runs/a%3Ab..c")


@pytest.mark.parametrize(
    ("endpoint", "field", "value"),
    [
        ("E7", "runId", ".."),
        ("E7", "experimentName", "../x?y#z"),
        ("E24", "graphId", "../Modules/m"),
        ("D2", "id", "."),
        ("D2", "id", ""),
        ("E10", "containerId", "dcid.%2e%2e"),
        ("E16", "id", "m\r\n1"),
        ("E1", "resourceGroupName", "rg/x"),
    ],
)
def test_a_value_that_cannot_stay_one_segment_is_refused_naming_the_field(endpoint, field, value):
    values = {**WS_VALUES, **{name: "ok" for name in ENDPOINTS[endpoint].placeholders}, field: value}
    with pytest.raises(UnsafePathSegmentError, match=f"^{endpoint} {field} "):
        ENDPOINTS[endpoint].render(**values)


def test_api_versions_and_paging_styles():
    assert ENDPOINTS["E2"].api_version == "2019-11-01"
    assert ENDPOINTS["E15"].api_version == "2019-11-01"
    assert ENDPOINTS["E5"].api_version is None
    assert {ENDPOINTS[i].paging for i in ("E1", "E3", "S1")} == {"arm"}
    assert {ENDPOINTS[i].paging for i in ("E5", "E6", "E8", "E10", "E11", "E13")} == {"continuation"}
    assert {ENDPOINTS[i].paging for i in ("E15", "E17", "E19", "E21")} == {"skiptoken"}


def test_families_reference_real_endpoints_and_delete_dependents_first():
    for family in FAMILIES.values():
        assert family.list in ENDPOINTS
        assert family.detail is None or family.detail_param in ENDPOINTS[family.detail].placeholders
    order = sorted((f for f in FAMILIES.values() if f.delete), key=lambda f: f.delete_order)
    assert [f.name for f in order] == ["services", "images", "models", "assets"]
    assert [f.delete for f in order] == ["D5", "D4", "D2", "D3"]
    assert set(WORKSPACE_FAMILIES) <= set(FAMILIES)
    assert set(PIPELINE_KINDS.values()) == {"E23", "E24", "E25", "E26", "E27"}


def test_continuation_parameters_follow_the_specs():
    assert {ENDPOINTS[i].continuation_param for i in ("E5", "E6", "E8", "E11")} == {"$continuationtoken"}
    assert {ENDPOINTS[i].continuation_param for i in ("E10", "E13")} == {"continuationToken"}


def test_v2_endpoints_are_arm_lists_and_gets_at_the_v2_api_version():
    v2 = [e for e in ENDPOINTS.values() if e.id.startswith("V")]
    assert {e.service for e in v2} == {"arm"}
    assert all(e.v2 for e in v2)
    assert all(e.method == "GET" for e in v2)  # this slice reads; nothing here deletes
    assert ENDPOINTS["V1"].render(**WS_VALUES) == WS_PATH + "/jobs"
    assert ENDPOINTS["V5"].render(**WS_VALUES, container="churn") == WS_PATH + "/models/churn/versions"
    assert ENDPOINTS["V25"].render(**WS_VALUES, container="ep") == WS_PATH + "/onlineEndpoints/ep/deployments"
    assert ENDPOINTS["V29"].render(**WS_VALUES, container="b") == WS_PATH + "/batchEndpoints/b/deployments"
    # archived jobs and assets, disabled schedules are a person's data too; code lists take no listViewType
    all_views = {e.id for e in v2 if ("listViewType", "All") in e.query}
    assert all_views == {"V1", "V3", "V5", "V7", "V9", "V11", "V13", "V15", "V17", "V31"}
    # never a secret: no listSecrets call is catalogued
    assert not any("secret" in e.path.lower() for e in ENDPOINTS.values())
    # the compute family reads at the v2 api-version too (a compute instance's assigned user)
    assert ENDPOINTS["E3"].v2
    assert ENDPOINTS["E4"].v2


def test_every_v2_output_family_has_a_list_and_a_plain_title():
    outputs = [f for kind in V2_TASK_KINDS.values() for f in kind]
    assert len(outputs) == len(set(outputs)) == 19
    for name in outputs:
        assert ENDPOINTS[FAMILIES[name].list].paging == "arm", name
        assert FAMILY_TITLES[name]
        assert FAMILY_TITLES[name] != name
    assert all(FAMILY_TITLES[kind] != kind for kind in V2_TASK_KINDS)
    assert not set(V2_TASK_KINDS) & set(WORKSPACE_FAMILIES)
