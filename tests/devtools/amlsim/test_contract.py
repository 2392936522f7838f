"""Every answer of the simulator names a person only where Microsoft's contract does (devtools/amlsim/contract.py).

The walk goes through the simulator's real HTTP API (lists paged to the end, every detail read, pipeline objects
by id), for the demo tenant and a small generated tenant; every JSON key from the identity-key set must sit at a
path the family's contract row allows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devtools.amlsim import FAMILIES, Simulator, large_tenant
from devtools.amlsim.contract import CONTRACT, IDENTITY_KEYS, allowed, identity_keys_at
from devtools.amlsim.identity import TokenIssuer

from .conftest import ARM_VERSION, Client

PIPELINE_PATHS = {
    "pipeline_experiments": "Experiments",
    "pipeline_graphs": "Graphs",
    "pipeline_modules": "Modules",
    "pipeline_templates": "Templates",
    "pipeline_datasources": "DataSources",
}


def served(client: Client) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(family, endpoint label, record) for every record of every list and detail answer."""
    sim = client.sim
    subs = sorted({ws.subscription_id for ws in sim.tenant.workspaces.values()})
    for sub in subs:
        url = client.url(
            "arm", f"/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/workspaces"
        )
        workspaces, _ = client.walk(url, ARM_VERSION)
        for ws in workspaces:
            yield "workspaces", "S1", ws
            yield from _workspace(client, ws)


def _get(client: Client, url: str, params: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.get(url, params)
    assert response.status_code == 200, (url, response.text)
    body = response.json()
    assert isinstance(body, dict)
    return body


def _workspace(client: Client, ws: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    path, loc = ws["id"], ws["location"]
    yield "workspaces", "E2", _get(client, client.url("arm", path), ARM_VERSION)
    computes, _ = client.walk(client.url("arm", path + "/computes"), ARM_VERSION)
    for c in computes:
        yield "computes", "E3", c
        yield "computes", "E4", _get(client, client.url("arm", f"{path}/computes/{c['name']}"), ARM_VERSION)
    history = "/history/v1.0" + path
    experiments, _ = client.walk(client.url("experiments", history + "/experiments", loc))
    for exp in experiments:
        yield "experiments", "E5", exp
        base = history + f"/experiments/{exp['name']}"
        runs, _ = client.walk(client.url("experiments", base + "/runs", loc))
        for run in runs:
            yield "runs", "E6", run
            yield "runs", "E7", _get(client, client.url("experiments", f"{base}/runs/{run['runId']}", loc))
            container = (
                f"/artifact/v1.0{path}/artifacts/origins/ExperimentRun/containers/{run['dataContainerId']}"
            )
            artifacts, _ = client.walk(client.url("experiments", container, loc))
            for artifact in artifacts:
                yield "artifacts", "E10", artifact
        metrics, _ = client.walk(client.url("experiments", base + "/metrics", loc))
        for metric in metrics:
            yield "metrics", "E8", metric
            url = client.url("experiments", f"{base}/metrics/{metric['metricId']}", loc)
            yield "metrics", "E9", _get(client, url)
    tasks, _ = client.walk(client.url("experiments", f"/notification/v1.0{path}/tasks", loc))
    for task in tasks:
        yield "tasks", "E11", task
        yield (
            "tasks",
            "E12",
            _get(client, client.url("experiments", f"/notification/v1.0{path}/tasks/{task['id']}", loc)),
        )
    stores_url = client.url("experiments", f"/datastore/v1.0{path}/datastores", loc)
    for secret in ("false", "true"):  # includeSecret defaults to true: both answers are served
        stores, _ = client.walk(stores_url, {"includeSecret": secret})
        for store in stores:
            yield "datastores", "E13", store
            yield (
                "datastores",
                "E14",
                _get(client, f"{stores_url}/{store['name']}", {"includeSecret": secret}),
            )
    for kind, (list_id, one_id) in {
        "models": ("E15", "E16"),
        "assets": ("E17", "E18"),
        "images": ("E19", "E20"),
        "services": ("E21", "E22"),
    }.items():
        url = client.url("modelmanagement", f"/api{path}/{kind}", loc)
        items, _ = client.walk(url, ARM_VERSION)
        for item in items:
            yield kind, list_id, item
            yield kind, one_id, _get(client, f"{url}/{item['id']}", ARM_VERSION)
    # Pipeline objects have no list call: read each one the tenant holds by its id.
    state = client.sim.tenant.find_workspace(*_parts(path))
    assert state is not None
    for family, segment in PIPELINE_PATHS.items():
        for record in state.collection(family):
            url = client.url("pipelines", f"/api/v1.0{path}/{segment}/{record.id}", loc)
            yield family, "E23-E27", _get(client, url)


def _parts(arm_id: str) -> tuple[str, str, str]:
    parts = arm_id.split("/")
    return parts[2], parts[4], parts[8]


def violations(client: Client) -> tuple[list[str], dict[str, int]]:
    bad: list[str] = []
    counts: dict[str, int] = {}
    for family, endpoint, record in served(client):
        counts[family] = counts.get(family, 0) + 1
        for path in identity_keys_at(record):
            if not allowed(family, path):
                bad.append(f"{family} {endpoint}: {path}")
    return sorted(set(bad)), counts


def test_every_demo_answer_names_people_only_where_the_contract_does(client: Client) -> None:
    bad, counts = violations(client)
    assert bad == []
    # every family was served and checked, not just a few
    assert set(counts) == set(FAMILIES)
    assert all(n >= 2 for n in counts.values()), counts


@pytest.fixture
def large_client(issuer: TokenIssuer, tls: tuple[Path, Path]) -> Iterator[Client]:
    tenant = large_tenant(
        workspaces=2,
        experiments_per_workspace=2,
        runs_per_experiment=3,
        models_per_workspace=8,
        people=8,
        seed=3,
    )
    cert, key = tls
    with Simulator(tenant, issuer, cert=cert, key=key, page_size=50) as sim:
        session = requests.Session()
        session.trust_env = False
        token = issuer.mint("https://management.azure.com")["access_token"]
        yield Client(sim, str(cert), token, session)
        session.close()


def test_every_large_tenant_answer_names_people_only_where_the_contract_does(large_client: Client) -> None:
    bad, counts = violations(large_client)
    assert bad == []
    assert set(counts) == set(FAMILIES)


def test_the_walk_flags_an_invented_creator() -> None:
    # the check itself: a kind simulator's invented fields are caught, the contract's own are not
    invented = {"name": "x", "createdBy": {"userObjectId": "o", "upn": "u"}, "systemData": {"createdBy": "u"}}
    paths = identity_keys_at(invented)
    assert sorted(p for p in paths if not allowed("experiments", p)) == [
        "createdBy",
        "createdBy.upn",
        "createdBy.userObjectId",
        "systemData",
        "systemData.createdBy",
    ]
    assert [
        p
        for p in identity_keys_at({"createdBy": {"userObjectId": "o", "upn": "u"}})
        if not allowed("runs", p)
    ] == []
    assert not allowed("models", "createdBy.upn")  # model management's User has no upn
    assert allowed("tasks", "notifications[].recipient")
    assert not allowed("computes", "systemData.createdBy")  # not at 2019-11-01


def test_every_contract_row_cites_a_source_and_covers_a_family() -> None:
    assert set(CONTRACT) == set(FAMILIES)
    for family, row in CONTRACT.items():
        assert row.family == family
        assert row.sources, family
        assert all(len(source) > 20 for source in row.sources), family
        assert all((row.endpoints, row.api_version, row.creator, row.rule)), family
        for path in row.identity:
            assert path.replace("[]", "").split(".")[-1] in IDENTITY_KEYS, (family, path)
    no_spec = [f for f, row in CONTRACT.items() if any("no public spec" in s for s in row.sources)]
    assert "tasks" in no_spec
    assert CONTRACT["tasks"].identity == ("notifications[].recipient",)  # the harsher choice: no creator
    creators = {
        family
        for family, row in CONTRACT.items()
        if any("reatedBy." in p and p.endswith(("ObjectId", "userId")) for p in row.identity)
    }
    assert creators == {"computes", "runs", "models", "services", "pipeline_modules"}
