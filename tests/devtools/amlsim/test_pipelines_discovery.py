"""Pipelines (E23-E27) reached through run properties, and the discovery document with the newer host."""

from __future__ import annotations

from devtools.amlsim import Simulator

from .conftest import ARM_VERSION, PROD, R1, Client, ws_path


def pipeline_runs(client: Client, ws: tuple[str, str, str], exp: str, location: str) -> list[dict]:
    runs, _ = client.walk(
        client.url("experiments", "/history/v1.0" + ws_path(*ws) + f"/experiments/{exp}/runs", location)
    )
    return [r for r in runs if r["properties"].get("azureml.runsource") == "azureml.PipelineRun"]


def test_pipeline_objects_are_reached_from_run_properties(client: Client, sim: Simulator) -> None:
    runs = pipeline_runs(client, R1, "pipeline-training-r1", "westeurope")
    assert len(runs) == 3
    base = "/api/v1.0" + ws_path(*R1)
    alice = sim.people["alice"]["objectId"]
    run = next(r for r in runs if r["createdBy"]["userObjectId"] == alice)
    experiment = client.get(client.url("pipelines", base + f"/Experiments/{run['experimentId']}"))
    assert experiment.status_code == 200
    assert experiment.json()["id"] == run["experimentId"]
    assert "createdBy" not in experiment.json()  # no public contract names a creator
    graph = client.get(client.url("pipelines", base + f"/Graphs/{run['properties']['azureml.graphId']}"))
    assert graph.status_code == 200
    graph_body = graph.json()
    assert "createdBy" not in graph_body  # aeva GraphEntity has none
    module_owners = []
    for node in graph_body["moduleNodes"]:
        module = client.get(client.url("pipelines", base + f"/Modules/{node['moduleId']}"))
        assert module.status_code == 200
        assert module.json()["id"] == node["moduleId"]
        module_owners.append(module.json()["CreatedBy"]["UserObjectId"])  # aeva ModuleEntity.CreatedBy
    assert alice in module_owners
    assert len(set(module_owners)) == 2  # a module shared from another person
    for node in graph_body["datasetNodes"]:
        source = client.get(client.url("pipelines", base + f"/DataSources/{node['dataSourceId']}"))
        assert source.status_code == 200
        assert source.json()["dataLocation"]["storageId"] == "workspaceblobstore"
    template_id = run["properties"]["azureml.pipelineTemplateId"]
    template = client.get(client.url("pipelines", base + f"/Templates/{template_id}"))
    assert template.status_code == 200
    assert template.json()["id"] == template_id
    truth = sim.truth("alice")
    assert run["experimentId"] in truth["pipeline_experiments"]
    assert run["properties"]["azureml.graphId"] in truth["pipeline_graphs"]
    assert template_id in truth["pipeline_templates"]


def test_pipeline_objects_not_found(client: Client) -> None:
    base = "/api/v1.0" + ws_path(*R1)
    for kind in ("Experiments", "Graphs", "Modules", "Templates", "DataSources"):
        response = client.get(client.url("pipelines", base + f"/{kind}/00000000-0000-0000-0000-000000000000"))
        assert response.status_code == 404
        # aether's ErrorResponse is PascalCase (azureml-pipeline-core, _restclients/aeva/models/error_response.py)
        assert response.json()["Error"]["Code"].endswith("NotFound")
        assert "error" not in response.json()


def test_discovery_document_names_local_hosts_that_serve_the_data_plane(client: Client) -> None:
    ws = client.get(client.url("arm", ws_path(*PROD)), ARM_VERSION).json()
    discovery = client.get(ws["properties"]["discoveryUrl"])
    assert discovery.status_code == 200
    doc = discovery.json()
    api = f"{client.sim.base_url}/northeurope.api.azureml.ms"
    assert doc["api"] == doc["history"] == doc["modelmanagement"] == doc["pipelines"] == api
    history = client.get(doc["history"] + "/history/v1.0" + ws_path(*PROD) + "/experiments")
    assert history.status_code == 200
    assert len(history.json()["value"]) == 5
    models = client.get(
        doc["modelmanagement"] + "/modelmanagement/v1.0" + ws_path(*PROD) + "/models", ARM_VERSION
    )
    assert models.status_code == 200
    # the 2020 procedure's `/api/...` form is known only on the regional model-management host, not here
    seed_form = client.get(doc["modelmanagement"] + "/api" + ws_path(*PROD) + "/models", ARM_VERSION)
    assert seed_form.status_code == 404
    legacy_mms = client.url(
        "modelmanagement", "/modelmanagement/v1.0" + ws_path(*PROD) + "/models", "northeurope"
    )
    assert client.get(legacy_mms, ARM_VERSION).json()["value"] == models.json()["value"]
    run = pipeline_runs(client, PROD, "pipeline-training-p1", "northeurope")[0]
    graph = client.get(
        doc["pipelines"] + "/api/v1.0" + ws_path(*PROD) + f"/Graphs/{run['properties']['azureml.graphId']}"
    )
    assert graph.status_code == 200
    legacy = client.get(client.url("experiments", "/discovery", "northeurope"))
    assert legacy.json() == doc


def test_each_legacy_host_serves_only_its_own_paths(client: Client) -> None:
    history = "/history/v1.0" + ws_path(*R1) + "/experiments"
    assert client.get(client.url("experiments", history)).status_code == 200
    wrong = client.get(client.url("modelmanagement", history))
    assert wrong.status_code == 404
    assert wrong.json()["error"]["code"] == "RouteNotFound"
    models = "/api" + ws_path(*R1) + "/models"
    assert client.get(client.url("experiments", models), ARM_VERSION).status_code == 404
    assert client.get(client.url("pipelines", models), ARM_VERSION).status_code == 404
