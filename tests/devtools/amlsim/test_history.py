"""Run history (E5-E9), artifacts (E10), notification tasks (E11, E12) and datastores (E13, E14)."""

from __future__ import annotations

from typing import Any

from devtools.amlsim import Simulator

from .conftest import PROD, R1, Client, ws_path

HISTORY = "/history/v1.0" + ws_path(*R1)
BIG = "train-churn-r1"  # 13 runs, 13 metrics; its first run has 12 artifacts


def alice(sim: Simulator) -> dict[str, Any]:
    return sim.people["alice"]


def test_e5_experiments_page_with_continuation_token(client: Client) -> None:
    items, pages = client.walk(client.url("experiments", HISTORY + "/experiments"))
    assert len(items) == 12
    assert [len(p["value"]) for p in pages] == [5, 5, 2]
    for page in pages[:2]:
        assert page["continuationToken"]
        assert f"$continuationtoken={page['continuationToken']}" in page["nextLink"]
    assert pages[2]["continuationToken"] is None
    assert pages[2]["nextLink"] is None
    exp = items[0]
    assert set(exp) >= {"experimentId", "name", "createdUtc"}
    assert "createdBy" not in exp  # ExperimentDto has no creator (devtools/amlsim/contract.py)
    assert exp["name"] == BIG
    assert "pipeline-training-r1" in {e["name"] for e in items}


def test_history_token_is_read_from_its_query_parameter_and_top_sets_page_size(client: Client) -> None:
    url = client.url("experiments", HISTORY + f"/experiments/{BIG}/runs")
    first = client.get(url).json()
    via_link = client.get(first["nextLink"]).json()
    via_param = client.get(url, {"$continuationtoken": first["continuationToken"]}).json()
    assert via_link == via_param
    # another spelling is not the contract's parameter (runHistory.json Runs_List): ignored, the first page again
    ignored = client.get(url, {"continuationToken": first["continuationToken"]}).json()
    assert (ignored["value"], ignored["continuationToken"]) == (first["value"], first["continuationToken"])
    assert [r["runId"] for r in via_param["value"]] != [r["runId"] for r in first["value"]]
    items, pages = client.walk(url, {"$top": "4"})
    assert [len(p["value"]) for p in pages] == [4, 4, 4, 1]
    assert all("%24top=4" in p["nextLink"] or "$top=4" in p["nextLink"] for p in pages[:3])
    assert len({r["runId"] for r in items}) == 13


def test_e6_runs_and_e7_one_run(client: Client, sim: Simulator) -> None:
    runs, pages = client.walk(client.url("experiments", HISTORY + f"/experiments/{BIG}/runs"))
    assert len(runs) == 13
    assert len(pages) == 3
    experiment = client.get(client.url("experiments", HISTORY + f"/experiments/{BIG}")).json()
    run = runs[0]
    assert run["experimentId"] == experiment["experimentId"]
    assert run["status"] in ("Completed", "Failed")
    assert run["createdBy"]["userObjectId"] == alice(sim)["objectId"]
    assert run["createdBy"]["userTenantId"] == sim.tenant.tenant_id
    assert run["createdBy"]["upn"] == "alice@contoso.com"
    assert isinstance(run["properties"], dict)
    one = client.get(client.url("experiments", HISTORY + f"/experiments/{BIG}/runs/{run['runId']}"))
    assert one.status_code == 200
    assert one.json() == run
    owners = [r["createdBy"].get("userObjectId") for r in runs]
    # interleaved with other people's runs; a fourth run of hers names her UPN only (no object id)
    assert owners.count(alice(sim)["objectId"]) >= 3
    assert owners.count(None) == 1
    assert len(set(owners)) >= 4


def test_older_records_and_letter_case_variants_are_seeded(client: Client, sim: Simulator) -> None:
    runs, _ = client.walk(client.url("experiments", HISTORY + f"/experiments/{BIG}/runs"))
    mine = [r["createdBy"] for r in runs if r["createdBy"].get("userObjectId") == alice(sim)["objectId"]]
    assert {"userObjectId", "userName"} == set(next(c for c in mine if "upn" not in c))  # older record
    assert "Alice@Contoso.COM" in {c.get("upn") for c in mine}  # another letter case
    namesake = [
        r["createdBy"]
        for r in runs
        if r["createdBy"].get("userName") == "Alice Smith"
        and r["createdBy"].get("userObjectId") not in (None, alice(sim)["objectId"])
    ]
    assert namesake  # asmith has alice's display name
    # alice's runs with no object id: UPN and display name only (not attributable by object id)
    no_oid = [r["createdBy"] for r in runs if "userObjectId" not in r["createdBy"]]
    assert {"userTenantId", "userName", "upn"} == set(no_oid[0])
    assert no_oid[0]["upn"] == alice(sim)["upn"]


def test_e8_metrics_and_e9_one_metric(client: Client) -> None:
    metrics, pages = client.walk(client.url("experiments", HISTORY + f"/experiments/{BIG}/metrics"))
    runs, _ = client.walk(client.url("experiments", HISTORY + f"/experiments/{BIG}/runs"))
    assert len(metrics) == 13
    assert len(pages) == 3
    assert {m["runId"] for m in metrics} == {r["runId"] for r in runs}
    metric = metrics[3]
    assert metric["cells"][0]["accuracy"] == metric["cells"][0][metric["name"]]
    one = client.get(client.url("experiments", HISTORY + f"/experiments/{BIG}/metrics/{metric['metricId']}"))
    assert one.status_code == 200
    assert one.json() == metric


def test_history_not_found_cases(client: Client) -> None:
    runs = client.get(client.url("experiments", HISTORY + f"/experiments/{BIG}/runs")).json()["value"]
    cases = {
        "/experiments/nope/runs": "ExperimentNotFound",
        "/experiments/nope/metrics": "ExperimentNotFound",
        f"/experiments/{BIG}/runs/nope": "RunNotFound",
        f"/experiments/train-fraud-r1/runs/{runs[0]['runId']}": "RunNotFound",  # a run of another experiment
        f"/experiments/{BIG}/metrics/00000000-0000-0000-0000-000000000000": "MetricNotFound",
    }
    for path, code in cases.items():
        response = client.get(client.url("experiments", HISTORY + path))
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == code


def test_e10_artifacts_of_a_run_page_by_continuation_token(client: Client) -> None:
    run = client.get(client.url("experiments", HISTORY + f"/experiments/{BIG}/runs")).json()["value"][0]
    assert run["dataContainerId"] == f"dcid.{run['runId']}"
    containers = "/artifact/v1.0" + ws_path(*R1) + "/artifacts/origins/ExperimentRun/containers/"
    path = containers + run["dataContainerId"]
    items, pages = client.walk(client.url("experiments", path))
    assert len(items) == 12
    assert [len(p["value"]) for p in pages] == [5, 5, 2]
    assert "continuationToken=" in pages[0]["nextLink"]
    artifact = items[0]
    assert artifact["origin"] == "ExperimentRun"
    assert artifact["container"] == f"dcid.{run['runId']}"
    assert artifact["artifactId"] == f"ExperimentRun/dcid.{run['runId']}/{artifact['path']}"
    token = pages[0]["continuationToken"]
    assert client.get(client.url("experiments", path), {"continuationToken": token}).json() == pages[1]
    # The bare run id names no container: the service finds nothing there (an empty list, not an error)
    empty = {"value": [], "continuationToken": None, "nextLink": None}
    for container in (run["runId"], "nope", "dcid.nope"):
        missing = client.get(client.url("experiments", containers + container))
        assert (missing.status_code, missing.json()) == (200, empty), container


def test_e11_tasks_and_e12_notifications_of_one_task(client: Client, sim: Simulator) -> None:
    base = "/notification/v1.0" + ws_path(*R1)
    tasks, pages = client.walk(client.url("experiments", base + "/tasks"))
    assert len(tasks) == 12
    assert len(pages) == 3
    task = tasks[0]
    assert "createdBy" not in task  # no public spec: the harsher choice, no creator
    assert task["runId"]
    assert "notifications" not in task
    one = client.get(client.url("experiments", base + f"/tasks/{task['id']}"))
    assert one.status_code == 200
    body = one.json()
    assert body["id"] == task["id"]
    assert len(body["notifications"]) == task["notificationCount"] >= 1
    assert body["notifications"][0]["recipient"] == "alice.smith@contoso.com"
    defective = f"{client.url('experiments', base)}tasks/{task['id']}"  # the document's missing slash
    assert client.get(defective).status_code == 404
    assert client.get(client.url("experiments", base + "/tasks/nope")).status_code == 404


def test_e13_datastores_return_secrets_by_default(client: Client) -> None:
    base = "/datastore/v1.0" + ws_path(*R1)
    stores, pages = client.walk(client.url("experiments", base + "/datastores"))
    assert len(stores) == 12
    assert len(pages) == 3
    assert "continuationToken=" in pages[0]["nextLink"]
    by_type = {s["dataStoreType"]: s for s in stores}
    assert set(by_type) >= {
        "AzureBlob",
        "AzureFile",
        "AzureDataLakeGen2",
        "AzureDataLake",
        "AzureSqlDatabase",
        "AzurePostgreSql",
    }
    blob = by_type["AzureBlob"]["azureStorageSection"]
    assert blob["accountKey"]
    assert blob["credential"] == blob["accountKey"]
    assert by_type["AzureFile"]["azureStorageSection"]["sasToken"].startswith("sv=")
    assert by_type["AzureDataLakeGen2"]["azureStorageSection"]["clientCredentials"]["clientSecret"]
    assert by_type["AzureDataLake"]["azureDataLakeSection"]["certificate"].startswith(
        "-----BEGIN CERTIFICATE"
    )
    assert by_type["AzureSqlDatabase"]["azureSqlDatabaseSection"]["clientSecret"]
    assert by_type["AzurePostgreSql"]["azurePostgreSqlSection"]["userPassword"]
    _, small = client.walk(client.url("experiments", base + "/datastores"), {"count": "7"})
    assert [len(p["value"]) for p in small] == [7, 5]


def test_e13_e14_include_secret_false_nulls_every_secret_field(client: Client) -> None:
    base = "/datastore/v1.0" + ws_path(*R1)
    stores, _ = client.walk(client.url("experiments", base + "/datastores"), {"includeSecret": "false"})
    assert len(stores) == 12
    for store in stores:
        storage = store["azureStorageSection"] or {}
        assert storage.get("accountKey") is None
        assert storage.get("sasToken") is None
        assert storage.get("credential") is None
        assert (storage.get("clientCredentials") or {}).get("clientSecret") is None
        for section in ("azureDataLakeSection", "azureSqlDatabaseSection"):
            assert (store[section] or {}).get("clientSecret") is None
            assert (store[section] or {}).get("certificate") is None
        assert (store["azurePostgreSqlSection"] or {}).get("userPassword") is None
    assert stores[0]["azureStorageSection"]["accountName"]  # what is not secret stays
    # a connection string a user pasted into a tag is not a secret field: redacting it is the client's job
    leaked = [s for s in stores if "AccountKey=" in s["tags"].get("note", "")]
    assert len(leaked) == 1
    name = leaked[0]["name"]
    with_secret = client.get(client.url("experiments", base + f"/datastores/{name}"))
    without = client.get(client.url("experiments", base + f"/datastores/{name}"), {"includeSecret": "false"})
    assert with_secret.status_code == without.status_code == 200
    assert with_secret.json()["name"] == name
    assert without.json() == leaked[0]
    missing = client.get(client.url("experiments", base + "/datastores/nope"))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "DatastoreNotFound"


def test_regional_host_must_match_the_workspace_region(client: Client) -> None:
    path = "/history/v1.0" + ws_path(*PROD) + "/experiments"
    assert client.get(client.url("experiments", path, location="northeurope")).status_code == 200
    wrong = client.get(client.url("experiments", path, location="westeurope"))
    assert wrong.status_code == 404
    assert wrong.json()["error"]["code"] == "WorkspaceNotFound"
    unknown = client.get(
        client.url(
            "experiments",
            "/history/v1.0" + ws_path(PROD[0], PROD[1], "nope") + "/experiments",
            location="northeurope",
        )
    )
    assert unknown.status_code == 404
