"""Deterministic tenants for the simulator: `demo_tenant()` (hand-shaped edge cases) and `large_tenant()`.

Response shapes follow the public Azure REST API specifications (azure-rest-api-specs,
specification/machinelearningservices): ARM workspaces and computes (resource-manager 2019-11-01), run history
(data-plane runHistory.json: Experiment, Run, RunMetric, CreatedBy), artifacts (artifact.json: Artifact),
datastores (datastore.json 2019-09-30: DataStore with its storage, data lake, SQL and PostgreSQL sections) and
model management (modelManagement.json 2019-09-30: Model, Asset, ImageResponseBase, ServiceResponseBase).
The v2 (ARM) resources next to them are built by v2_demo.py (contract: contract_v2.py).

Identity fields follow devtools/amlsim/contract.py, which cites the source of each one; nothing names a person
where the contract does not (a kind simulator hides an export that finds nothing on a real tenant):
- ARM at api-version 2019-11-01 has no `systemData`: a workspace names nobody; a compute instance names its
  creator at `properties.properties.createdBy` {userName (UPN), userOrgId, userId (object id)}; a cluster names
  nobody. (`personalComputeInstanceSettings.assignedUser` exists only at newer api-versions: not served.)
- Runs carry `createdBy` (run history v1.0): full {userObjectId, userPuId, userIdp, userIss, userTenantId,
  userName, upn}; older records only {userObjectId, userName}; some records name no object id at all
  ({userTenantId, userName, upn}, or only the display name `userName`). A service principal's `userName` is
  its app id. Models and services carry model management's `createdBy` (User: no `upn`); pipeline modules
  carry aether's `CreatedBy` {UserObjectId, UserTenantId, UserName}.
- No creator at all on experiments, metrics, artifacts, notification tasks (no public spec: the harsher
  choice), datastores, assets, images, and pipeline experiments, graphs, templates and data sources. The owner
  annotation (state.Record.owner) still says who made them: `Tenant.truth()` is what a person made,
  `Tenant.findable()` what the contract lets a faithful product attribute to them.
- Pipelines (the "aether" service) answer camelCase entities. The mapping from runs to pipeline objects:
  a run created by a pipeline has `properties["azureml.runsource"] == "azureml.PipelineRun"`,
  `properties["azureml.graphId"]` (the E24 graph id) and `properties["azureml.pipelineTemplateId"]` (the E26
  template id); its `experimentId` is the E23 pipeline experiment id. A graph lists `moduleNodes[].moduleId`
  (E25 ids) and `datasetNodes[].dataSourceId` (E27 ids). Modules and data sources may be shared between
  graphs and may belong to another person than the run.
- Notification tasks: E11 lists tasks (`id`, `name`, `runId`, ..., `notificationCount`); E12
  returns one task with its `notifications` (channel, recipient e-mail address, event, status, time).
- Deterministic: ids are uuid5 of stable names; `large_tenant` draws from `random.Random(seed)`.

Demo people (key: what they are for):
- alice: the demo data subject; her UPN differs from her e-mail; her records use her object id with the UPN,
  another letter case of it, only her object id and display name (older records), only her UPN (no object
  id), or only her display name (a record no rule may attribute to her).
- bob, carol, erin: colleagues whose objects interleave with hers; dave: his records use another letter case.
- asmith: a guest from another organisation with the same display name as alice ("Alice Smith"): matching
  on display names would wrongly take her objects.
- automation (a service principal, not a person) owns the default datastores and some objects.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable, Sequence
from typing import Any

from devtools.amlsim.ids import guid, timestamp
from devtools.amlsim.state import JSON, GeneratedCollection, Principal, Record, Tenant, WorkspaceData
from devtools.amlsim.v2_demo import mirror_jobs_in_run_history, populate_demo, populate_large

DEMO_TENANT_ID = "72f988bf-0000-4000-8000-00000000d5a1"
FABRIKAM_TENANT_ID = "5f1c2b3a-4d5e-4f60-8a71-92b3c4d5e6f7"
SUBSCRIPTION_1 = "6d6e2f4a-3c1b-4e8f-9a7d-5b2c1e0f4a01"
SUBSCRIPTION_2 = "9e8d7c6b-5a49-4382-b1f0-e2d3c4b5a602"
RUN_SOURCE_PIPELINE = "azureml.PipelineRun"

# (subscription, resource group, workspace, location) of the demo tenant, in creation order.
DEMO_WORKSPACES: tuple[tuple[str, str, str, str], ...] = (
    (SUBSCRIPTION_1, "rg-research", "mlw-research-01", "westeurope"),
    (SUBSCRIPTION_1, "rg-research", "mlw-research-02", "westeurope"),
    (SUBSCRIPTION_1, "rg-production", "mlw-prod-01", "northeurope"),
    (SUBSCRIPTION_2, "rg-analytics", "mlw-analytics", "westeurope"),
)


def fake_secret(*parts: object, size: int = 64) -> str:
    """A deterministic, obviously fake secret value (base64 of a hash)."""
    digest = hashlib.sha512("/".join(str(p) for p in parts).encode()).digest()
    return base64.b64encode(digest * 2)[:size].decode()


# -- people ------------------------------------------------------------------------------------------------
def _user(key: str, oid: str, display: str, upn: str, email: str, home: str = DEMO_TENANT_ID) -> Principal:
    puid = hashlib.sha1(key.encode()).hexdigest()[:16].upper()  # noqa: S324 - a fake id, not security
    return Principal(
        key=key,
        object_id=oid,
        display_name=display,
        upn=upn,
        email=email,
        tenant_id=DEMO_TENANT_ID,
        home_tenant_id=home,
        puid=puid,
    )


def demo_people() -> dict[str, Principal]:
    people = [
        _user(
            "alice",
            "a11ce5a1-7c3e-4d2b-9f10-1a2b3c4d5e01",
            "Alice Smith",
            "alice@contoso.com",
            "alice.smith@contoso.com",
        ),
        _user(
            "bob", "b0b0b0b2-6d4f-4e3c-8a21-2b3c4d5e6f02", "Bob Jones", "bob@contoso.com", "bob@contoso.com"
        ),
        _user(
            "carol",
            "ca201ca3-5e6a-4f4d-b732-3c4d5e6f7a03",
            "Carol White",
            "carol.w@contoso.com",
            "carol.white@contoso.com",
        ),
        _user(
            "dave",
            "da7eda74-4f7b-4a5e-8c43-4d5e6f7a8b04",
            "Dave Brown",
            "dave@contoso.com",
            "dave@contoso.com",
        ),
        _user(
            "erin",
            "e1e1e1e5-3a8c-4b6f-9d54-5e6f7a8b9c05",
            "Erin Green",
            "erin@contoso.com",
            "erin@contoso.com",
        ),
        _user(
            "asmith",
            "a5a5a5a6-2b9d-4c7a-8e65-6f7a8b9cad06",
            "Alice Smith",
            "alice.smith_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            "alice.smith@fabrikam.com",
            home=FABRIKAM_TENANT_ID,
        ),
    ]
    return {p.key: p for p in people}


AUTOMATION = Principal(
    key="automation",
    object_id="0a0a0a07-1c0e-4d8b-9f76-7a8b9cadbe07",
    display_name="mlops-automation",
    tenant_id=DEMO_TENANT_ID,
    kind="ServicePrincipal",
    app_id="3c5d7e9f-0a1b-4c2d-8e3f-4a5b6c7d8e09",
)


# -- identity fragments (only at the paths devtools/amlsim/contract.py allows) -------------------------------
def created_by(actor: Principal, style: str = "full") -> JSON:
    """A run's `createdBy` (run-history v1.0 User). Styles: full; case (UPN in another letter case); legacy
    (object id + display name); upn (UPN + display name, no object id); name (display name only)."""
    if actor.kind == "ServicePrincipal":
        return {"userObjectId": actor.object_id, "userTenantId": actor.tenant_id, "userName": actor.app_id}
    if style == "legacy":
        return {"userObjectId": actor.object_id, "userName": actor.display_name}
    if style == "upn":
        return {"userTenantId": actor.tenant_id, "userName": actor.display_name, "upn": actor.upn}
    if style == "name":
        return {"userName": actor.display_name}
    home = actor.home_tenant_id or actor.tenant_id
    return {
        "userObjectId": actor.object_id,
        "userPuId": actor.puid,
        "userIdp": None if home == actor.tenant_id else f"https://sts.windows.net/{home}/",
        "userIss": f"https://sts.windows.net/{actor.tenant_id}/",
        "userTenantId": actor.tenant_id,
        "userName": actor.display_name,
        "upn": actor.upn_variant if style == "case" else actor.upn,
    }


def mms_created_by(actor: Principal, style: str = "full") -> JSON:
    """Model management's `createdBy` (modelManagement.json User; azureml-core _restclient/models/user.py):
    no `upn`. Styles upn and name carry no object id (only the display name and the tenant)."""
    body = created_by(actor, style)
    body.pop("upn", None)
    return body


def aeva_created_by(actor: Principal, style: str = "full") -> JSON:
    """A pipeline module's `CreatedBy` (azureml-pipeline-core aeva models/created_by.py; PascalCase keys)."""
    body = created_by(actor, style)
    out = {"UserObjectId": body.get("userObjectId"), "UserTenantId": body.get("userTenantId")}
    out["UserName"] = body.get("userName")
    return {k: v for k, v in out.items() if k in ("UserName",) or v is not None}


def compute_created_by(actor: Principal, style: str) -> JSON:
    """A compute instance's `properties.properties.createdBy` at 2019-11-01 (examples/getComputeInstance.json):
    {userName (the UPN), userOrgId (tenant), userId (object id)}."""
    upn = actor.upn_variant if style == "case" and actor.upn else actor.upn
    return {"userName": upn or actor.app_id, "userOrgId": actor.tenant_id, "userId": actor.object_id}


# -- bodies (pure functions of their arguments, so large tenants can render them lazily) ---------------------
def workspace_body(sub: str, rg: str, name: str, location: str, actor: Principal, style: str, t: int) -> JSON:
    group = f"/subscriptions/{sub}/resourceGroups/{rg}/providers"
    arm_id = f"{group}/Microsoft.MachineLearningServices/workspaces/{name}"
    short = name.replace("-", "")[:20]
    return {
        "id": arm_id,
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces",
        "location": location,
        "tags": {"costCenter": "ml-platform"},
        "sku": {"name": "Basic", "tier": "Basic"},
        "identity": {
            "type": "SystemAssigned",
            "principalId": guid(arm_id, "identity"),
            "tenantId": DEMO_TENANT_ID,
        },
        "properties": {
            "friendlyName": name,
            "description": f"Workspace {name}",
            "workspaceId": guid(arm_id, "workspaceId"),
            "discoveryUrl": None,  # set at answer time: it names the simulator's own address
            "storageAccount": f"{group}/Microsoft.Storage/storageAccounts/st{short}",
            "keyVault": f"{group}/Microsoft.KeyVault/vaults/kv-{name}",
            "applicationInsights": f"{group}/microsoft.insights/components/ai-{name}",
            "containerRegistry": f"{group}/Microsoft.ContainerRegistry/registries/cr{short}",
            "creationTime": timestamp(t),
            "provisioningState": "Succeeded",
            "hbiWorkspace": False,
        },
    }


def compute_body(
    ws_id: str, name: str, location: str, kind: str, actor: Principal, style: str, t: int
) -> JSON:
    inner: JSON
    if kind == "ComputeInstance":
        inner = {
            "vmSize": "STANDARD_DS3_V2",
            "applicationSharingPolicy": "Personal",
            "sshSettings": {"sshPublicAccess": "Disabled", "adminUserName": "azureuser"},
            "createdBy": compute_created_by(actor, style),
            "state": "Stopped",
            "errors": None,
        }
    else:
        inner = {
            "vmSize": "STANDARD_NC6",
            "vmPriority": "Dedicated",
            "scaleSettings": {"maxNodeCount": 4, "minNodeCount": 0, "nodeIdleTimeBeforeScaleDown": "PT120S"},
            "remoteLoginPortPublicAccess": "Disabled",
            "allocationState": "Steady",
            "currentNodeCount": 0,
            "targetNodeCount": 0,
        }
    return {
        "id": f"{ws_id}/computes/{name}",
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/computes",
        "location": location,
        "properties": {
            "computeType": kind,
            "computeLocation": location,
            "description": f"{kind} {name}",
            "createdOn": timestamp(t),
            "modifiedOn": timestamp(t + 5),
            "provisioningState": "Succeeded",
            "isAttachedCompute": False,
            "properties": inner,
        },
    }


def experiment_body(exp_id: str, name: str, actor: Principal, style: str, t: int) -> JSON:
    return {
        "experimentId": exp_id,
        "name": name,
        "description": f"Experiment {name}",
        "createdUtc": timestamp(t),
        "tags": {},
        "archivedTime": None,
        "latestCreatedRunCreatedUtc": None,
        "latestCreatedRunId": None,
    }


def run_body(
    run_id: str,
    exp_id: str,
    number: int,
    actor: Principal,
    style: str,
    t: int,
    status: str,
    properties: tuple[tuple[str, str], ...],
    target: str,
) -> JSON:
    props = dict(properties)
    pipeline = props.get("azureml.runsource") == RUN_SOURCE_PIPELINE
    return {
        "runNumber": number,
        "rootRunId": run_id,
        "experimentId": exp_id,
        "createdUtc": timestamp(t),
        "createdBy": created_by(actor, style),
        "userId": actor.object_id,
        "error": None,
        "warnings": None,
        "revision": 3,
        "runId": run_id,
        "parentRunId": None,
        "status": status,
        "startTimeUtc": timestamp(t + 1),
        "endTimeUtc": timestamp(t + 9) if status in ("Completed", "Failed", "Canceled") else None,
        "heartbeatEnabled": False,
        "options": {"generateDataContainerIdIfNotSpecified": True},
        "name": None,
        "dataContainerId": f"dcid.{run_id}",
        "description": None,
        "hidden": False,
        "runType": "azureml.PipelineRun" if pipeline else "azureml.scriptrun",
        "properties": props,
        "scriptName": None if pipeline else "train.py",
        "target": target,
        "tags": {},
        "runDefinition": None,
        "createdFrom": None,
        "cancelUri": None,
        "diagnosticsUri": None,
    }


def metric_body(metric_id: str, run_id: str, name: str, value: float, t: int) -> JSON:
    return {
        "runId": run_id,
        "metricId": metric_id,
        "dataContainerId": f"dcid.{run_id}",
        "metricType": "azureml.v1.scalar",
        "createdUtc": timestamp(t),
        "name": name,
        "description": "",
        "label": "",
        "numCells": 1,
        "dataLocation": None,
        "cells": [{name: value}],
        "schema": {"numProperties": 1, "properties": [{"propertyId": name, "name": name, "type": "float"}]},
    }


def artifact_body(run_id: str, path: str, t: int) -> JSON:
    container = f"dcid.{run_id}"
    return {
        "artifactId": f"ExperimentRun/{container}/{path}",
        "origin": "ExperimentRun",
        "container": container,
        "path": path,
        "etag": '"' + hashlib.md5(f"{run_id}/{path}".encode()).hexdigest() + '"',  # noqa: S324 - an etag
        "createdTime": timestamp(t),
        "dataPath": {
            "dataStoreName": "workspaceartifactstore",
            "relativePath": f"{container}/{path}",
            "sqlDataPath": None,
        },
    }


def task_body(
    task_id: str,
    name: str,
    actor: Principal,
    style: str,
    t: int,
    run_id: str,
    exp_name: str,
    recipients: tuple[str, ...],
) -> JSON:
    return {
        "id": task_id,
        "name": name,
        "taskType": "RunStatusNotification",
        "runId": run_id,
        "experimentName": exp_name,
        "createdTime": timestamp(t),
        "lastModifiedTime": timestamp(t + 2),
        "status": "Active",
        "notifications": [
            {
                "id": guid(task_id, "notification", i),
                "channel": "Email",
                "recipient": recipient,
                "event": "RunCompleted" if i % 2 == 0 else "RunFailed",
                "status": "Sent",
                "sentTime": timestamp(t + 30 + i),
            }
            for i, recipient in enumerate(recipients)
        ],
    }


DATASTORE_KINDS = ("blob-key", "file-sas", "adls2-secret", "adls1-cert", "sql-secret", "postgres-password")


def datastore_body(
    name: str, kind: str, actor: Principal, style: str, t: int, sub: str, rg: str, note: str | None = None
) -> JSON:
    """A DataStore DTO with real secrets (fake values); `includeSecret=false` nulls the secret fields."""
    key = fake_secret(sub, rg, name, "key", size=88)
    client = {"clientId": guid(name, "client"), "tenantId": DEMO_TENANT_ID}
    storage: JSON | None = None
    lake: JSON | None = None
    sql: JSON | None = None
    postgres: JSON | None = None
    account = "st" + hashlib.sha1(f"{sub}/{rg}".encode()).hexdigest()[:12]  # noqa: S324 - a name
    base_storage = {
        "accountName": account,
        "containerName": name.replace("_", "-"),
        "endpoint": "core.windows.net",
        "protocol": "https",
        "credentialType": "None",
        "credential": None,
        "clientCredentials": None,
        "blobCacheTimeout": 0,
        "isSas": False,
        "accountKey": None,
        "sasToken": None,
        "areWorkspaceManagedIdentitiesAllowed": False,
        "subscriptionId": sub,
        "resourceGroup": rg,
    }
    if kind == "blob-key":
        store_type = "AzureBlob"
        storage = {**base_storage, "credentialType": "AccountKey", "credential": key, "accountKey": key}
    elif kind == "file-sas":
        store_type = "AzureFile"
        sas = "sv=2019-12-12&ss=f&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig=" + fake_secret(
            name, "sig", size=43
        )
        storage = {**base_storage, "credentialType": "Sas", "credential": sas, "sasToken": sas, "isSas": True}
    elif kind == "adls2-secret":
        store_type = "AzureDataLakeGen2"
        storage = {
            **base_storage,
            "credentialType": "ClientCredentials",
            "clientCredentials": {
                **client,
                "isCertAuth": False,
                "certificate": None,
                "thumbprint": None,
                "clientSecret": fake_secret(name, "secret", size=40),
                "authorityUrl": "https://login.microsoftonline.com",
                "resourceUri": "https://storage.azure.com/",
                "subscriptionId": sub,
                "resourceGroup": rg,
            },
        }
    elif kind == "adls1-cert":
        store_type = "AzureDataLake"
        lake = {
            "storeName": f"adls{account}",
            **client,
            "isCertAuth": True,
            "certificate": "-----BEGIN CERTIFICATE-----\n"
            + fake_secret(name, "cert", size=76)
            + "\n-----END CERTIFICATE-----",
            "thumbprint": hashlib.sha1(name.encode()).hexdigest().upper(),  # noqa: S324 - a fake thumbprint
            "clientSecret": None,
            "authorityUrl": "https://login.microsoftonline.com",
            "resourceUri": "https://datalake.azure.net/",
            "subscriptionId": sub,
            "resourceGroup": rg,
        }
    elif kind == "sql-secret":
        store_type = "AzureSqlDatabase"
        sql = {
            "serverName": f"sql-{account}",
            "databaseName": "features",
            "endpoint": "database.windows.net",
            **client,
            "isCertAuth": False,
            "certificate": None,
            "thumbprint": None,
            "clientSecret": fake_secret(name, "sqlsecret", size=40),
            "authorityUrl": "https://login.microsoftonline.com",
            "resourceUri": "https://database.windows.net/",
            "subscriptionId": sub,
            "resourceGroup": rg,
        }
    else:
        store_type = "AzurePostgreSql"
        postgres = {
            "serverName": f"pg-{account}",
            "databaseName": "labels",
            "userId": "mlreader",
            "userPassword": fake_secret(name, "password", size=24),
            "portNumber": "5432",
            "endpoint": "postgres.database.azure.com",
            "subscriptionId": sub,
            "resourceGroup": rg,
        }
    tags = {"purpose": kind}
    if note:
        tags["note"] = note
    return {
        "name": name,
        "dataStoreType": store_type,
        "hasBeenValidated": True,
        "tags": tags,
        "azureStorageSection": storage,
        "azureDataLakeSection": lake,
        "azureSqlDatabaseSection": sql,
        "azurePostgreSqlSection": postgres,
        "glusterFsSection": None,
        "createdTime": timestamp(t),
        "modifiedTime": timestamp(t + 1),
    }


def model_body(
    model_id: str, actor: Principal, style: str, t: int, run_id: str | None, exp_name: str | None
) -> JSON:
    name, _, version = model_id.partition(":")
    return {
        "id": model_id,
        "name": name,
        "framework": "ScikitLearn",
        "frameworkVersion": "1.3.2",
        "version": int(version),
        "datasets": [],
        "url": f"aml://artifact/ExperimentRun/dcid.{run_id}/outputs/model.pkl"
        if run_id
        else f"aml://asset/{guid(model_id)}",
        "mimeType": "application/octet-stream",
        "description": f"Model {model_id}",
        "createdTime": timestamp(t),
        "modifiedTime": timestamp(t + 3),
        "unpack": False,
        "parentModelId": None,
        "runId": run_id,
        "experimentName": exp_name,
        "kvTags": {},
        "properties": {},
        "createdBy": mms_created_by(actor, style),
    }


def asset_body(asset_id: str, name: str, actor: Principal, style: str, t: int, run_id: str | None) -> JSON:
    return {
        "id": asset_id,
        "name": name,
        "description": f"Asset {name}",
        "artifacts": [
            {
                "id": f"ExperimentRun/dcid.{run_id}/outputs" if run_id else f"LocalUpload/{asset_id}",
                "prefix": "outputs/",
            }
        ],
        "kvTags": {},
        "properties": {},
        "runid": run_id,
        "meta": {},
        "createdTime": timestamp(t),
    }


def image_body(image_id: str, actor: Principal, style: str, t: int, model_ids: tuple[str, ...]) -> JSON:
    name, _, version = image_id.partition(":")
    return {
        "id": image_id,
        "name": name,
        "version": int(version),
        "description": f"Image {image_id}",
        "kvTags": {},
        "properties": {},
        "createdTime": timestamp(t),
        "modifiedTime": timestamp(t + 4),
        "autoDelete": False,
        "imageType": "Docker",
        "imageFlavor": "WebApiContainer",
        "creationState": "Succeeded",
        "error": None,
        "modelIds": list(model_ids),
        "modelDetails": [],
        "imageLocation": f"cr.azurecr.io/{name}:{version}",
        "imageBuildLogUri": None,
        "operationId": guid(image_id, "operation"),
        "driverProgram": "score.py",
    }


def service_body(
    service_id: str, compute: str, actor: Principal, style: str, t: int, image_id: str, location: str
) -> JSON:
    return {
        "id": service_id,
        "name": service_id,
        "description": f"Web service {service_id}",
        "kvTags": {},
        "properties": {},
        "operationId": guid(service_id, "operation"),
        "state": "Healthy",
        "createdTime": timestamp(t),
        "updatedTime": timestamp(t + 6),
        "error": None,
        "computeType": compute,
        "deploymentType": "HttpRealtimeEndpoint",
        "imageId": image_id,
        "scoringUri": f"http://{service_id}.{location}.azurecontainer.io/score",
        "location": location,
        "authEnabled": compute == "AKS",
        "appInsightsEnabled": False,
        "createdBy": mms_created_by(actor, style),
    }


def pipeline_experiment_body(exp_id: str, name: str, actor: Principal, style: str, t: int) -> JSON:
    return {
        "id": exp_id,
        "name": name,
        "description": f"Pipeline experiment {name}",
        "runHistoryExperimentName": name,
        "entityStatus": "Active",
        "createdDate": timestamp(t),
        "lastModifiedDate": timestamp(t + 1),
    }


def graph_body(
    graph_id: str,
    actor: Principal,
    style: str,
    t: int,
    module_ids: tuple[str, ...],
    datasource_ids: tuple[str, ...],
) -> JSON:
    module_nodes = [{"id": f"m{i}", "moduleId": m, "comment": None} for i, m in enumerate(module_ids)]
    dataset_nodes = [{"id": f"d{i}", "dataSourceId": d} for i, d in enumerate(datasource_ids)]
    edges = [
        {
            "sourceOutputPort": {"nodeId": f"d{i}", "portName": "output"},
            "destinationInputPort": {"nodeId": "m0", "portName": f"input{i}"},
        }
        for i in range(len(datasource_ids))
    ]
    return {
        "id": graph_id,
        "moduleNodes": module_nodes,
        "datasetNodes": dataset_nodes,
        "edges": edges,
        "entityStatus": "Active",
        "createdDate": timestamp(t),
        "lastModifiedDate": timestamp(t),
    }


def module_body(module_id: str, name: str, actor: Principal, style: str, t: int) -> JSON:
    return {
        "id": module_id,
        "name": name,
        "displayName": name,
        "description": f"Module {name}",
        "moduleExecutionType": "escloud",
        "hash": hashlib.sha256(module_id.encode()).hexdigest(),
        "version": "1",
        "entityStatus": "Active",
        "structuredInterface": {
            "inputs": [{"name": "input0", "dataTypeIdsList": ["AnyDirectory"]}],
            "outputs": [{"name": "output", "dataTypeId": "AnyDirectory"}],
        },
        "CreatedBy": aeva_created_by(actor, style),
        "createdDate": timestamp(t),
        "lastModifiedDate": timestamp(t),
    }


def template_body(template_id: str, name: str, actor: Principal, style: str, t: int, graph_id: str) -> JSON:
    return {
        "id": template_id,
        "name": name,
        "description": f"Pipeline template {name}",
        "graphId": graph_id,
        "version": "1.0",
        "pipelineParameters": {"learning_rate": "0.01"},
        "entityStatus": "Active",
        "createdDate": timestamp(t),
        "lastModifiedDate": timestamp(t),
    }


def datasource_body(ds_id: str, name: str, actor: Principal, style: str, t: int) -> JSON:
    return {
        "id": ds_id,
        "name": name,
        "description": f"Data source {name}",
        "dataSourceType": "PipelineDataSource",
        "dataTypeId": "AnyDirectory",
        "dataLocation": {
            "storageType": "AzureBlob",
            "storageId": "workspaceblobstore",
            "uri": None,
            "dataReference": {
                "type": "AzureBlob",
                "azureBlobReference": {
                    "relativePath": f"datasets/{name}/",
                    "aml_data_store_name": "workspaceblobstore",
                },
            },
        },
        "entityStatus": "Active",
        "createdDate": timestamp(t),
        "lastModifiedDate": timestamp(t),
    }


# -- the builder ---------------------------------------------------------------------------------------------
Owner = tuple[Principal, str]  # (principal, createdBy style)


class WorkspaceBuilder:
    """Adds objects to one workspace with consistent ids, times and owners; lazy=True stores renderers."""

    def __init__(
        self,
        tenant: Tenant,
        sub: str,
        rg: str,
        name: str,
        location: str,
        creator: Owner,
        *,
        lazy: bool = False,
        clock: int = 0,
    ) -> None:
        self.tenant = tenant
        self.sub, self.rg, self.name, self.location = sub, rg, name, location
        self.lazy = lazy
        self.t = clock
        actor, style = creator
        arm = Record(name, actor.key, workspace_body(sub, rg, name, location, actor, style, self.t))
        self.ws = tenant.add_workspace(WorkspaceData(sub, rg, name, location, arm))
        self.run_numbers: dict[str, int] = {}

    def _tick(self) -> int:
        self.t += 7
        return self.t

    def _record(self, id: str, owner: Principal, render: Callable[..., JSON], *args: Any) -> Record:
        if self.lazy:
            return Record(id, owner.key, render=render, args=args)
        return Record(id, owner.key, render(*args))

    def compute(self, name: str, kind: str, owner: Owner) -> str:
        actor, style = owner
        ws_id = self.ws.arm_id
        self.ws.computes.add(
            Record(
                name, actor.key, compute_body(ws_id, name, self.location, kind, actor, style, self._tick())
            )
        )
        return name

    def experiment(self, name: str, owner: Owner, exp_id: str | None = None) -> str:
        actor, style = owner
        exp_id = exp_id or guid(self.ws.arm_id, "experiment", name)
        self.ws.add_experiment(
            self._record(exp_id, actor, experiment_body, exp_id, name, actor, style, self._tick()), name
        )
        return exp_id

    def run(
        self,
        exp_name: str,
        owner: Owner,
        *,
        status: str = "Completed",
        properties: Sequence[tuple[str, str]] = (),
        target: str = "cpu-cluster",
    ) -> str:
        actor, style = owner
        exp = self.ws.experiment_names[exp_name]
        number = self.run_numbers.get(exp_name, 0) + 1
        self.run_numbers[exp_name] = number
        t = self._tick()
        run_id = (
            f"{exp_name.replace('-', '_')}_{1704704400 + t * 60}_{guid(self.ws.arm_id, exp_name, number)[:8]}"
        )
        props = tuple(properties) or (("azureml.runsource", "experiment"),)
        self.ws.add_run(
            exp_name,
            self._record(
                run_id, actor, run_body, run_id, exp.id, number, actor, style, t, status, props, target
            ),
        )
        return run_id

    def metric(self, run_id: str, name: str, value: float) -> str:
        run = self.ws.run_index[run_id]
        assert run.parent is not None
        assert run.owner is not None
        metric_id = guid(run_id, "metric", name)
        owner = self.tenant.principals[run.owner]
        self.ws.add_metric(
            run.parent, self._record(metric_id, owner, metric_body, metric_id, run_id, name, value, self.t)
        )
        return metric_id

    def artifact(self, run_id: str, path: str) -> str:
        run = self.ws.run_index[run_id]
        assert run.owner is not None
        owner = self.tenant.principals[run.owner]
        artifact_id = f"ExperimentRun/dcid.{run_id}/{path}"
        self.ws.add_artifact(run_id, self._record(artifact_id, owner, artifact_body, run_id, path, self.t))
        return artifact_id

    def task(self, name: str, owner: Owner, run_id: str, recipients: tuple[str, ...]) -> str:
        actor, style = owner
        task_id = guid(self.ws.arm_id, "task", name)
        run = self.ws.run_index[run_id]
        self.ws.tasks.add(
            self._record(
                task_id,
                actor,
                task_body,
                task_id,
                name,
                actor,
                style,
                self._tick(),
                run_id,
                run.parent,
                recipients,
            )
        )
        return task_id

    def datastore(self, name: str, kind: str, owner: Owner, note: str | None = None) -> str:
        actor, style = owner
        self.ws.datastores.add(
            Record(
                name,
                actor.key,
                datastore_body(name, kind, actor, style, self._tick(), self.sub, self.rg, note),
            )
        )
        return name

    def model(self, model_id: str, owner: Owner, run_id: str | None = None) -> str:
        actor, style = owner
        exp_name = self.ws.run_index[run_id].parent if run_id else None
        self.ws.models.add(
            self._record(model_id, actor, model_body, model_id, actor, style, self._tick(), run_id, exp_name)
        )
        return model_id

    def asset(self, name: str, owner: Owner, run_id: str | None = None) -> str:
        actor, style = owner
        asset_id = guid(self.ws.arm_id, "asset", name).replace("-", "")
        self.ws.assets.add(
            self._record(asset_id, actor, asset_body, asset_id, name, actor, style, self._tick(), run_id)
        )
        return asset_id

    def image(self, image_id: str, owner: Owner, model_ids: Sequence[str]) -> str:
        actor, style = owner
        for model_id in model_ids:
            assert self.ws.models.get(model_id) is not None, model_id
        self.ws.images.add(
            self._record(image_id, actor, image_body, image_id, actor, style, self._tick(), tuple(model_ids))
        )
        return image_id

    def service(self, service_id: str, owner: Owner, image_id: str, compute: str = "ACI") -> str:
        actor, style = owner
        assert self.ws.images.get(image_id) is not None, image_id
        self.ws.services.add(
            self._record(
                service_id,
                actor,
                service_body,
                service_id,
                compute,
                actor,
                style,
                self._tick(),
                image_id,
                self.location,
            )
        )
        return service_id

    def pipeline_experiment(self, name: str, owner: Owner) -> str:
        """A history experiment for pipeline runs, and the E23 pipeline experiment with the same id."""
        actor, style = owner
        exp_id = self.experiment(name, owner)
        self.ws.pipeline["pipeline_experiments"].add(
            self._record(exp_id, actor, pipeline_experiment_body, exp_id, name, actor, style, self.t)
        )
        return exp_id

    def module(self, name: str, owner: Owner) -> str:
        actor, style = owner
        module_id = guid(self.ws.arm_id, "module", name)
        self.ws.pipeline["pipeline_modules"].add(
            self._record(module_id, actor, module_body, module_id, name, actor, style, self._tick())
        )
        return module_id

    def datasource(self, name: str, owner: Owner) -> str:
        actor, style = owner
        ds_id = guid(self.ws.arm_id, "datasource", name)
        self.ws.pipeline["pipeline_datasources"].add(
            self._record(ds_id, actor, datasource_body, ds_id, name, actor, style, self._tick())
        )
        return ds_id

    def template(self, name: str, owner: Owner, graph_id: str) -> str:
        actor, style = owner
        template_id = guid(self.ws.arm_id, "template", name)
        self.ws.pipeline["pipeline_templates"].add(
            self._record(
                template_id, actor, template_body, template_id, name, actor, style, self._tick(), graph_id
            )
        )
        return template_id

    def pipeline_run(
        self,
        exp_name: str,
        owner: Owner,
        *,
        template_id: str | None,
        template_name: str,
        template_owner: Owner,
        module_ids: Sequence[str],
        datasource_ids: Sequence[str],
    ) -> tuple[str, str, str]:
        """A pipeline run: its graph (owned by the run's creator), its template (new or reused) and the run.

        Returns (run id, graph id, template id)."""
        actor, style = owner
        number = self.run_numbers.get(exp_name, 0) + 1
        graph_id = guid(self.ws.arm_id, exp_name, "graph", number)
        self.ws.pipeline["pipeline_graphs"].add(
            self._record(
                graph_id,
                actor,
                graph_body,
                graph_id,
                actor,
                style,
                self._tick(),
                tuple(module_ids),
                tuple(datasource_ids),
            )
        )
        if template_id is None:
            template_id = self.template(template_name, template_owner, graph_id)
        properties = (
            ("azureml.runsource", RUN_SOURCE_PIPELINE),
            ("runSource", "SDK"),
            ("azureml.graphId", graph_id),
            ("azureml.pipelineTemplateId", template_id),
            ("azureml.continue_on_step_failure", "False"),
        )
        run_id = self.run(exp_name, owner, properties=properties, target="pipeline")
        return run_id, graph_id, template_id


# -- the demo tenant -----------------------------------------------------------------------------------------
def _new_tenant(name: str) -> Tenant:
    people = demo_people()
    tenant = Tenant(name=name, tenant_id=DEMO_TENANT_ID, people=people)
    tenant.principals = {**people, AUTOMATION.key: AUTOMATION}
    return tenant


def demo_tenant(
    *, v2_created_by: str = "upn", jobs_in_run_history: bool = False, foundry: bool = False
) -> Tenant:
    """Two subscriptions, three resource groups in two regions, four workspaces, six people; v2 (ARM) resources
    next to the v1 objects (v2_demo.py). `v2_created_by`: "upn" or "name" (systemData.createdBy as recorded);
    `jobs_in_run_history`: v2 jobs also appear as v1 runs; `foundry`: a hub and a project in sub 1 / rg-foundry.

    Layout (with page_size 5, alice's lists in mlw-research-01 span three pages and interleave with others):
    - sub 1 / rg-research (westeurope): mlw-research-01 (created by alice, by e-mail; the large one),
      mlw-research-02 (created by bob)
    - sub 1 / rg-production (northeurope): mlw-prod-01 (created by the automation service principal)
    - sub 2 / rg-analytics (westeurope): mlw-analytics (created by asmith, alice's namesake; alice owns
      nothing there, asmith owns a lot); sub 2 / rg-empty has no workspace
    """
    tenant = _new_tenant("demo")
    p = tenant.principals
    tenant.subscriptions = {SUBSCRIPTION_1: "Contoso Research", SUBSCRIPTION_2: "Contoso Analytics"}
    tenant.add_resource_group(SUBSCRIPTION_1, "rg-research", "westeurope")
    tenant.add_resource_group(SUBSCRIPTION_1, "rg-production", "northeurope")
    tenant.add_resource_group(SUBSCRIPTION_2, "rg-analytics", "westeurope")
    tenant.add_resource_group(SUBSCRIPTION_2, "rg-empty", "westeurope")

    alice, alice_case, alice_old = (p["alice"], "full"), (p["alice"], "case"), (p["alice"], "legacy")
    alice_upn, alice_name = (p["alice"], "upn"), (p["alice"], "name")  # no object id: a findable gap
    bob, carol, dave = (p["bob"], "full"), (p["carol"], "full"), (p["dave"], "case")
    erin, asmith, svc = (p["erin"], "full"), (p["asmith"], "full"), (p["automation"], "full")
    bob_old, carol_old = (p["bob"], "legacy"), (p["carol"], "legacy")

    # mlw-research-01: every family has 11+ objects; alice at positions 0, 2, 5, 10 of the rotation.
    r1_rotation: list[Owner] = [
        alice,
        bob,
        alice_case,
        carol,
        dave,
        alice_old,
        erin,
        asmith,
        svc,
        bob_old,
        alice_upn,
        carol,
        dave,
    ]
    b = WorkspaceBuilder(
        tenant, SUBSCRIPTION_1, "rg-research", "mlw-research-01", "westeurope", (p["alice"], "email"), clock=0
    )
    _populate(
        b,
        "r1",
        r1_rotation,
        computes=12,
        experiments=11,
        big_runs=13,
        runs=2,
        tasks=12,
        datastores=10,
        people=tenant.people,
    )
    _research01_model_management(
        b, alice, alice_case, alice_old, bob, carol, dave, erin, asmith, svc, alice_name
    )
    _pipelines(
        b,
        "r1",
        [alice, bob, alice_case],
        template_owner=[alice, bob, alice],
        shared_module_owner=carol,
        shared_source_owner=erin,
    )

    r2_rotation: list[Owner] = [bob, alice, carol, alice_case, erin]
    b = WorkspaceBuilder(
        tenant, SUBSCRIPTION_1, "rg-research", "mlw-research-02", "westeurope", bob, clock=5000
    )
    _populate(
        b,
        "r2",
        r2_rotation,
        computes=5,
        experiments=5,
        big_runs=3,
        runs=3,
        tasks=5,
        datastores=4,
        people=tenant.people,
    )
    _simple_model_management(b, "r2", r2_rotation, models=6, assets=4, images=4, services=3)
    _pipelines(b, "r2", [alice], template_owner=[alice], shared_module_owner=bob, shared_source_owner=bob)

    prod_rotation: list[Owner] = [carol, alice, dave, svc, alice_old, bob]
    b = WorkspaceBuilder(
        tenant, SUBSCRIPTION_1, "rg-production", "mlw-prod-01", "northeurope", svc, clock=10000
    )
    _populate(
        b,
        "p1",
        prod_rotation,
        computes=5,
        experiments=5,
        big_runs=4,
        runs=3,
        tasks=5,
        datastores=4,
        people=tenant.people,
    )
    _simple_model_management(b, "p1", prod_rotation, models=6, assets=4, images=4, services=3)
    _pipelines(
        b,
        "p1",
        [alice, carol],
        template_owner=[alice, carol],
        shared_module_owner=dave,
        shared_source_owner=alice,
    )

    an_rotation: list[Owner] = [asmith, bob, erin, svc, carol_old, asmith]
    b = WorkspaceBuilder(
        tenant, SUBSCRIPTION_2, "rg-analytics", "mlw-analytics", "westeurope", asmith, clock=15000
    )
    _populate(
        b,
        "a1",
        an_rotation,
        computes=4,
        experiments=4,
        big_runs=3,
        runs=2,
        tasks=4,
        datastores=3,
        people=tenant.people,
    )
    _simple_model_management(b, "a1", an_rotation, models=5, assets=3, images=3, services=2)
    _pipelines(b, "a1", [asmith], template_owner=[asmith], shared_module_owner=erin, shared_source_owner=erin)
    _demo_v2(tenant, v2_created_by, jobs_in_run_history, foundry)
    return tenant


def _demo_v2(tenant: Tenant, created_by: str, jobs_in_run_history: bool, foundry: bool) -> None:
    """The demo's v2 resources; with `foundry`, first an AI Foundry hub (the application's) and alice's project."""
    if foundry:
        tenant.add_resource_group(SUBSCRIPTION_1, "rg-foundry", "westeurope")
        svc, alice = (tenant.principals["automation"], "full"), (tenant.principals["alice"], "full")
        WorkspaceBuilder(tenant, SUBSCRIPTION_1, "rg-foundry", "hub-churn", "westeurope", svc, clock=18000)
        WorkspaceBuilder(tenant, SUBSCRIPTION_1, "rg-foundry", "proj-churn", "westeurope", alice, clock=18500)
    populate_demo(tenant, created_by)
    if jobs_in_run_history:
        mirror_jobs_in_run_history(tenant, experiment_body, run_body)


def _populate(
    b: WorkspaceBuilder,
    short: str,
    rotation: list[Owner],
    *,
    computes: int,
    experiments: int,
    big_runs: int,
    runs: int,
    tasks: int,
    datastores: int,
    people: dict[str, Principal],
) -> None:
    """Computes, experiments with runs, metrics and artifacts, notification tasks and datastores."""

    def owner(i: int) -> Owner:
        return rotation[i % len(rotation)]

    for i in range(computes):
        kind = "ComputeInstance" if i % 3 == 0 else "AmlCompute"
        b.compute(f"{'ci' if kind == 'ComputeInstance' else 'cc'}-{short}-{i:02d}", kind, owner(i))
    topics = [
        "churn",
        "fraud",
        "forecast",
        "nlp",
        "vision",
        "ranker",
        "anomaly",
        "pricing",
        "uplift",
        "ltv",
        "segments",
        "demand",
    ]
    all_runs: list[str] = []
    for e in range(experiments):
        name = f"train-{topics[e % len(topics)]}-{short}"
        b.experiment(name, owner(e))
        count = big_runs if e == 0 else runs
        for r in range(count):
            run_owner = owner(r) if e == 0 else owner(e + r)
            status = "Failed" if r % 5 == 4 else "Completed"
            run_id = b.run(name, run_owner, status=status)
            all_runs.append(run_id)
            b.metric(run_id, "accuracy", round(0.7 + (r % 10) / 40, 4))
            if e == 0 and r == 0:
                for a in range(12):
                    b.artifact(run_id, f"outputs/checkpoint_{a:02d}.pt" if a else "outputs/model.pkl")
            else:
                b.artifact(run_id, "outputs/model.pkl")
                b.artifact(run_id, "logs/azureml/70_driver_log.txt")
    for i in range(tasks):
        task_owner = owner(i)
        run_id = all_runs[i % len(all_runs)]
        actor = task_owner[0]
        recipients: tuple[str, ...] = (actor.email,) if actor.email else ("mlops@contoso.com",)
        if i % 4 == 1:
            recipients = (*recipients, people["bob"].email)
        b.task(f"notify-{short}-{i:02d}", task_owner, run_id, recipients)
    svc_owner: Owner = (b.tenant.principals["automation"], "full")
    b.datastore("workspaceblobstore", "blob-key", svc_owner)
    b.datastore("workspacefilestore", "file-sas", svc_owner)
    for i in range(datastores):
        kind = DATASTORE_KINDS[(i + 2) % len(DATASTORE_KINDS)]
        note = None
        if short == "r1" and i == 3:  # a connection string pasted into a tag: includeSecret=false keeps it
            note = (
                "DefaultEndpointsProtocol=https;AccountName=stleak;AccountKey="
                + fake_secret("leak", size=88)
                + ";EndpointSuffix=core.windows.net"
            )
        b.datastore(f"ds_{short}_{kind.replace('-', '_')}_{i:02d}", kind, owner(i), note)


def _research01_model_management(
    b: WorkspaceBuilder,
    alice: Owner,
    alice_case: Owner,
    alice_old: Owner,
    bob: Owner,
    carol: Owner,
    dave: Owner,
    erin: Owner,
    asmith: Owner,
    svc: Owner,
    alice_name: Owner,
) -> None:
    """Models, assets, images and services of mlw-research-01, with the dependency edge cases.

    alice: model churn-r1:1 <- image churn-img-r1:1 <- service churn-svc-r1 (her own chain);
    bob's image fraud-img-r1:1 uses alice's model churn-r1:2; alice's image churn-img-r1:2 uses her
    churn-r1:3 and bob's fraud-r1:1, and carol's service churn-svc-r1-b runs on it.
    """
    runs = list(b.ws.run_index)
    models: list[tuple[str, Owner]] = [
        ("churn-r1:1", alice),
        ("churn-r1:2", alice_case),
        ("fraud-r1:1", bob),
        ("forecast-r1:1", alice_old),
        ("nlp-r1:1", carol),
        ("vision-r1:1", dave),
        ("churn-r1:3", alice),
        ("ranker-r1:1", erin),
        ("ranker-r1:2", asmith),
        ("anomaly-r1:1", svc),
        ("anomaly-r1:2", alice_name),  # createdBy names her display name only: not findable
        ("fraud-r1:2", bob),
    ]
    for i, (model_id, owner) in enumerate(models):
        b.model(model_id, owner, runs[i] if i % 3 != 2 else None)
    assets: list[tuple[str, Owner]] = [
        ("churn-features", alice),
        ("fraud-rules", bob),
        ("churn-labels", alice_case),
        ("nlp-vocab", carol),
        ("vision-aug", dave),
        ("forecast-holidays", alice_old),
        ("ranker-judgements", erin),
        ("ranker-queries", asmith),
        ("anomaly-thresholds", svc),
        ("churn-scorer", alice),
        ("fraud-scorer", bob),
    ]
    for i, (name, owner) in enumerate(assets):
        b.asset(name, owner, runs[i] if i % 2 == 0 else None)
    images: list[tuple[str, Owner, list[str]]] = [
        ("churn-img-r1:1", alice, ["churn-r1:1"]),
        ("fraud-img-r1:1", bob, ["churn-r1:2"]),
        ("forecast-img-r1:1", alice_old, ["forecast-r1:1"]),
        ("nlp-img-r1:1", carol, ["nlp-r1:1"]),
        ("vision-img-r1:1", dave, ["vision-r1:1"]),
        ("churn-img-r1:2", alice, ["churn-r1:3", "fraud-r1:1"]),
        ("ranker-img-r1:1", erin, ["ranker-r1:1"]),
        ("ranker-img-r1:2", asmith, ["ranker-r1:2"]),
        ("anomaly-img-r1:1", svc, ["anomaly-r1:1"]),
        ("anomaly-img-r1:2", alice_case, ["anomaly-r1:2"]),
        ("fraud-img-r1:2", bob, ["fraud-r1:2"]),
    ]
    for image_id, owner, model_ids in images:
        b.image(image_id, owner, model_ids)
    services: list[tuple[str, Owner, str, str]] = [
        ("churn-svc-r1", alice, "churn-img-r1:1", "ACI"),
        ("fraud-svc-r1", bob, "fraud-img-r1:1", "AKS"),
        ("churn-svc-r1-b", carol, "churn-img-r1:2", "AKS"),
        ("nlp-svc-r1", carol, "nlp-img-r1:1", "ACI"),
        ("vision-svc-r1", dave, "vision-img-r1:1", "ACI"),
        ("anomaly-svc-r1", alice_old, "anomaly-img-r1:2", "AKS"),
        ("ranker-svc-r1", erin, "ranker-img-r1:1", "AKS"),
        ("ranker-svc-r1-b", asmith, "ranker-img-r1:2", "ACI"),
        ("anomaly-svc-r1-b", svc, "anomaly-img-r1:1", "ACI"),
        ("fraud-svc-r1-b", bob, "fraud-img-r1:2", "AKS"),
        ("forecast-svc-r1", alice, "forecast-img-r1:1", "ACI"),
    ]
    for service_id, owner, image_id, compute in services:
        b.service(service_id, owner, image_id, compute)


def _simple_model_management(
    b: WorkspaceBuilder,
    short: str,
    rotation: list[Owner],
    *,
    models: int,
    assets: int,
    images: int,
    services: int,
) -> None:
    """Image i uses model i, service i runs image i; owners follow the rotation."""
    runs = list(b.ws.run_index)
    topics = ["churn", "fraud", "forecast", "nlp", "vision", "ranker", "anomaly"]
    model_ids = [
        b.model(
            f"{topics[i % len(topics)]}-{short}:{1 + i // len(topics)}",
            rotation[i % len(rotation)],
            runs[i % len(runs)] if i % 2 == 0 else None,
        )
        for i in range(models)
    ]
    for i in range(assets):
        b.asset(
            f"{topics[i % len(topics)]}-asset-{short}", rotation[(i + 1) % len(rotation)], runs[i % len(runs)]
        )
    image_ids = [
        b.image(f"{topics[i % len(topics)]}-img-{short}:1", rotation[i % len(rotation)], [model_ids[i]])
        for i in range(images)
    ]
    for i in range(services):
        b.service(
            f"{topics[i % len(topics)]}-svc-{short}",
            rotation[(i + 1) % len(rotation)],
            image_ids[i],
            "AKS" if i % 2 else "ACI",
        )


def _pipelines(
    b: WorkspaceBuilder,
    short: str,
    run_owners: list[Owner],
    *,
    template_owner: list[Owner],
    shared_module_owner: Owner,
    shared_source_owner: Owner,
) -> None:
    """A pipeline experiment with one pipeline run per owner; the first run's owner creates the experiment.

    Each run gets its own graph; run i uses template i unless it repeats an earlier run's template owner
    (then it reuses that template). Graphs use a module and a data source of the run's owner plus a shared
    module and a shared data source owned by somebody else."""
    exp_name = f"pipeline-training-{short}"
    b.pipeline_experiment(exp_name, run_owners[0])
    shared_module = b.module(f"train-step-{short}", shared_module_owner)
    shared_source = b.datasource(f"reference-data-{short}", shared_source_owner)
    templates: dict[str, str] = {}
    for i, owner in enumerate(run_owners):
        own_module = b.module(f"prep-step-{short}-{i}", owner)
        own_source = b.datasource(f"raw-data-{short}-{i}", owner)
        t_owner = template_owner[i]
        existing = templates.get(t_owner[0].key)
        run_id, _graph_id, template_id = b.pipeline_run(
            exp_name,
            owner,
            template_id=existing,
            template_name=f"training-pipeline-{short}-{i}",
            template_owner=t_owner,
            module_ids=[own_module, shared_module],
            datasource_ids=[own_source, shared_source],
        )
        templates.setdefault(t_owner[0].key, template_id)
        b.metric(run_id, "pipeline_duration_s", 120.0 + i)
        b.artifact(run_id, "logs/azureml/executionlogs.txt")


# -- the large tenant ----------------------------------------------------------------------------------------
LARGE_REGIONS = ("westeurope", "northeurope", "eastus", "westus2", "uksouth", "francecentral")


def large_tenant(
    workspaces: int = 8,
    regions: int = 2,
    experiments_per_workspace: int = 40,
    runs_per_experiment: int = 60,
    models_per_workspace: int = 100,
    people: int = 50,
    seed: int = 1,
    subject_share: float = 0.0,
    subject: str = "alice",
    v2_jobs_per_workspace: int = 0,
) -> Tenant:
    """A generated tenant for benchmarks: about 20,000 API calls export it all with page size ~100.

    Per workspace: experiments x runs (each with 2 metrics and 3 artifacts; history records are rendered
    lazily), models, models/2 assets, models/2 images, models/4 services, 50 tasks, 10 computes, 8 datastores,
    and one pipeline experiment with 10 pipeline runs. People: the six demo people plus generated users;
    owners are drawn from `random.Random(seed)`. `subject_share` > 0 makes `subject` a heavy user: each object
    a person creates is theirs with that probability (plus their even share of the rest), so an export of that
    person reads that share of every family's details (0: the same tenant as before, draw for draw).
    `v2_jobs_per_workspace` > 0 adds v2 resources (v2_demo.populate_large); 0, the default, adds none.
    """
    if not 0.0 <= subject_share <= 1.0:
        raise ValueError("subject_share must be within [0, 1]")
    rng = random.Random(seed)
    tenant = _new_tenant("large")
    humans = list(tenant.people.values())
    for i in range(max(0, people - len(humans))):
        key = f"user{i:04d}"
        person = _user(
            key, guid("large", "person", i), f"User {i:04d}", f"{key}@contoso.com", f"{key}.mail@contoso.com"
        )
        tenant.people[key] = person
        tenant.principals[key] = person
        humans.append(person)
    svc = tenant.principals["automation"]
    region_names = LARGE_REGIONS[: max(1, min(regions, len(LARGE_REGIONS)))]
    tenant.subscriptions = {SUBSCRIPTION_1: "Contoso Research", SUBSCRIPTION_2: "Contoso Analytics"}
    subs = [SUBSCRIPTION_1, SUBSCRIPTION_2]

    heavy = tenant.people[subject]

    def pick() -> Owner:
        roll = rng.random()
        actor = svc if roll < 0.05 else humans[rng.randrange(len(humans))]
        if subject_share and actor is not svc and rng.random() < subject_share:
            actor = heavy
        style = "legacy" if roll > 0.92 else "case" if roll > 0.88 else "full"
        return actor, style

    for w in range(workspaces):
        sub = subs[w % len(subs)]
        location = region_names[w % len(region_names)]
        rg = f"rg-ml-{location}"
        if not tenant.has_resource_group(sub, rg):
            tenant.add_resource_group(sub, rg, location)
        b = WorkspaceBuilder(
            tenant, sub, rg, f"mlw-bench-{w:02d}", location, pick(), lazy=True, clock=w * 100000
        )
        for i in range(10):
            b.compute(f"cc-{w:02d}-{i:02d}", "ComputeInstance" if i % 4 == 0 else "AmlCompute", pick())
        run_ids: list[str] = []
        for e in range(experiments_per_workspace):
            name = f"exp-{w:02d}-{e:03d}"
            b.experiment(name, pick())
            for _ in range(runs_per_experiment):
                run_id = b.run(name, pick(), status="Failed" if rng.random() < 0.1 else "Completed")
                run_ids.append(run_id)
                b.metric(run_id, "accuracy", round(rng.random(), 4))
                b.metric(run_id, "loss", round(rng.random(), 4))
                for path in ("outputs/model.pkl", "outputs/metrics.json", "logs/azureml/70_driver_log.txt"):
                    b.artifact(run_id, path)
        for i in range(50 if run_ids else 0):
            owner = pick()
            recipients = (owner[0].email,) if owner[0].email else ("mlops@contoso.com",)
            b.task(f"notify-{w:02d}-{i:03d}", owner, run_ids[rng.randrange(len(run_ids))], recipients)
        for i in range(8):
            b.datastore(f"ds_{w:02d}_{i:02d}", DATASTORE_KINDS[i % len(DATASTORE_KINDS)], pick())
        model_ids = [
            b.model(
                f"model-{w:02d}-{i:04d}:1",
                pick(),
                run_ids[rng.randrange(len(run_ids))] if run_ids and i % 2 == 0 else None,
            )
            for i in range(models_per_workspace)
        ]
        for i in range(models_per_workspace // 2):
            b.asset(f"asset-{w:02d}-{i:04d}", pick())
        image_ids: list[str] = []
        for i in range(models_per_workspace // 2):
            if model_ids:
                uses = rng.sample(model_ids, k=min(len(model_ids), 1 + (i % 2)))
                image_ids.append(b.image(f"image-{w:02d}-{i:04d}:1", pick(), uses))
        for i in range(models_per_workspace // 4):
            if image_ids:
                b.service(
                    f"svc-{w:02d}-{i:04d}",
                    pick(),
                    image_ids[rng.randrange(len(image_ids))],
                    "AKS" if i % 2 else "ACI",
                )
        owners = [pick() for _ in range(10)]
        _pipelines(
            b,
            f"{w:02d}",
            owners,
            template_owner=owners,
            shared_module_owner=pick(),
            shared_source_owner=pick(),
        )
    if v2_jobs_per_workspace:
        populate_large(tenant, v2_jobs_per_workspace, seed)
    return tenant


# -- the bulk tenant: one family of one workspace as large as wanted ---------------------------------------------
BULK_EXPERIMENT = "bulk-export"


def bulk_artifact_path(index: int) -> str:
    return f"outputs/shards/part-{index:08d}.parquet"


def bulk_tenant(artifacts: Sequence[int] = (100_000,), subject: str = "alice") -> Tenant:
    """One workspace per entry of `artifacts` (`mlw-bulk-00`, ...), each with one run of `subject` whose artifact
    list (E10) holds that many artifacts, made on demand: an export of that one endpoint family is as large as
    wanted (about 0.7 KB a record in the package, so 1.5 million records are about 1 GB) while the simulator
    stores a handful of objects. Each workspace also has a colleague's run with three artifacts, a model and a
    datastore, so the export still has something to leave out."""
    tenant = _new_tenant("bulk")
    tenant.subscriptions = {SUBSCRIPTION_1: "Contoso Research"}
    tenant.add_resource_group(SUBSCRIPTION_1, "rg-bulk", "westeurope")
    person = tenant.people[subject]
    colleague = tenant.people["bob" if subject != "bob" else "carol"]
    for w, count in enumerate(artifacts):
        if count < 0:
            raise ValueError("artifact counts must be >= 0")
        b = WorkspaceBuilder(
            tenant, SUBSCRIPTION_1, "rg-bulk", f"mlw-bulk-{w:02d}", "westeurope", (person, "full"), lazy=True
        )
        b.experiment(BULK_EXPERIMENT, (person, "full"))
        theirs = b.run(BULK_EXPERIMENT, (colleague, "full"))
        for path in ("outputs/model.pkl", "outputs/metrics.json", "logs/azureml/70_driver_log.txt"):
            b.artifact(theirs, path)
        run_id = b.run(BULK_EXPERIMENT, (person, "full"))
        b.metric(run_id, "rows", float(count))
        t = b.t
        prefix = f"ExperimentRun/dcid.{run_id}/"

        def make(index: int, run_id: str = run_id, t: int = t) -> Record:
            path = bulk_artifact_path(index)
            return Record(
                f"ExperimentRun/dcid.{run_id}/{path}",
                person.key,
                render=artifact_body,
                args=(run_id, path, t),
                parent=run_id,
            )

        def index_of(artifact_id: str, prefix: str = prefix) -> int | None:
            name = artifact_id[len(prefix) :] if artifact_id.startswith(prefix) else ""
            if not (name.startswith("outputs/shards/part-") and name.endswith(".parquet")):
                return None
            digits = name[len("outputs/shards/part-") : -len(".parquet")]
            return int(digits) if digits.isdigit() and bulk_artifact_path(int(digits)) == name else None

        b.ws.artifacts[run_id] = GeneratedCollection(count, make, index_of)
        b.model(f"model-bulk-{w:02d}:1", (colleague, "full"), theirs)
        b.datastore(f"ds_bulk_{w:02d}", "blob-key", (colleague, "full"))
    return tenant


TENANTS: dict[str, Callable[..., Tenant]] = {"demo": demo_tenant, "large": large_tenant, "bulk": bulk_tenant}


def build_tenant(name: str, **params: Any) -> Tenant:
    """A tenant by name, with its function's keyword arguments (demo_tenant, large_tenant, bulk_tenant)."""
    if name not in TENANTS:
        raise ValueError(f"unknown tenant {name!r}; known: {sorted(TENANTS)}")
    return TENANTS[name](**params)
