"""The v2 (ARM) resources of a simulated workspace, and their ground truth.

A workspace's v2 resources (jobs, registered assets and their versions, endpoints and deployments, schedules,
connections) live in `V2Workspace`, attached to `WorkspaceData.v2`. Each is a `state.Record` whose id is its path
under the workspace (`models/churn/versions/1`), whose `parent` is the path of its container, endpoint or pipeline
job, and whose owner annotation says who made it (never served). Two families are views of v1 objects, as on
Azure: `datastores` (the datastores the v1 data plane lists, rendered as ARM v2 Datastore, credentials without
secrets) and `computes` (the ARM computes, rendered at the new api-version with a compute instance's
`personalComputeInstanceSettings.assignedUser`).

Ground truth, for a person (contract: devtools/amlsim/contract_v2.py):
- `truth`: the owner annotation (and, for compute instances, the assigned user);
- `reachable`: what a faithful product attributes by the contract's rules, from the served bodies only:
  `systemData.createdBy` equal to the person's UPN or e-mail (case-insensitive) with createdByType User or absent
  (never an application's); a compute instance's createdBy.userId or assignedUser.objectId; a pipeline's child
  jobs only where jobs also appear in run history (the only list of children); connections never;
- `findable` = truth AND reachable; `erasable`: the ordered deletions of a faithful erasure, dependencies first
  (schedules; deployments; endpoints left with no deployment; jobs; versions no remaining deployment uses;
  containers left with no version; datastores; compute instances), objects still in use by others kept.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from devtools.amlsim.contract_v2 import V2_CONTRACT
from devtools.amlsim.state import JSON, Collection, Principal, Record, Tenant, WorkspaceData

# The families stored in a V2Workspace, in erasure order (dependencies first), then the two views of v1 objects.
OWN_FAMILIES: tuple[str, ...] = (
    "schedules",
    "online_deployments",
    "batch_deployments",
    "online_endpoints",
    "batch_endpoints",
    "jobs",
    "child_jobs",
    "model_versions",
    "data_versions",
    "environment_versions",
    "component_versions",
    "code_versions",
    "model_containers",
    "data_containers",
    "environment_containers",
    "component_containers",
    "code_containers",
    "connections",
)
VIEW_FAMILIES: tuple[str, ...] = ("datastores", "computes")
V2_FAMILIES: tuple[str, ...] = (*OWN_FAMILIES, *VIEW_FAMILIES)
ENDPOINT_OF = {"online_deployments": "online_endpoints", "batch_deployments": "batch_endpoints"}
ASSETS = ("model", "data", "environment", "component", "code")
CREATED_BY_MODES = (
    "upn",
    "name",
)  # systemData.createdBy: UPN/e-mail (as specified) or display name (as recorded)


@dataclass
class V2Workspace:
    """The v2 resources of one workspace and how they are built (see the module docstring)."""

    kind: str = "Default"  # Default | Hub | Project
    hub_id: str | None = None  # a project's hub (properties.hubResourceId)
    created_by: str = "upn"  # CREATED_BY_MODES
    jobs_in_run_history: bool = False  # every job is also a run in run history (the v1 endpoints)
    collections: dict[str, Collection] = field(
        default_factory=lambda: {f: Collection() for f in OWN_FAMILIES}
    )
    assigned: dict[str, str] = field(
        default_factory=dict
    )  # compute name -> key of the person it is assigned to
    styles: dict[str, str] = field(default_factory=dict)  # datastore name -> systemData style of its creator


def store(ws: WorkspaceData) -> V2Workspace:
    """The workspace's v2 resources (an empty set for a workspace built without any)."""
    if ws.v2 is None:
        ws.v2 = V2Workspace()
    assert isinstance(ws.v2, V2Workspace)
    return ws.v2


def family_of(path: str) -> str:
    """The contract family of a record path (`onlineEndpoints/e/deployments/d` -> online_deployments)."""
    parts = path.split("/")
    segment, nested = parts[0], len(parts) > 2
    for family, row in V2_CONTRACT.items():
        row_parts = row.path.split("/")
        if row_parts[0] == segment and (len(row_parts) > 2) == nested and family != "child_jobs":
            return family
    raise KeyError(path)


# -- systemData ------------------------------------------------------------------------------------------------
def system_data(
    actor: Principal, style: str, created: str, modified: str, shape: str, mode: str = "upn"
) -> JSON:
    """ARM systemData as the service writes it for `actor`.

    style: upn | case (UPN in another letter case) | mail | name (display name) for a user; app (createdBy = app id,
    createdByType Application) for a service principal. mode "name" writes every createdBy as the display name
    (REC). shape: full (assets, datastores, schedules), created (jobs: createdAt/By/ByType) or tracked (endpoints
    and deployments: createdAt, createdBy, lastModifiedAt, no types)."""
    kind = "Application" if actor.kind == "ServicePrincipal" else "User"
    if mode == "name":
        who = actor.display_name
    elif kind == "Application":
        who = actor.app_id
    else:
        who = {"upn": actor.upn, "case": actor.upn_variant, "mail": actor.email}.get(
            style, actor.display_name
        )
    if shape == "tracked":
        return {"createdAt": created, "createdBy": who, "lastModifiedAt": modified}
    body: JSON = {"createdAt": created, "createdBy": who, "createdByType": kind}
    if shape == "full":
        body.update(lastModifiedAt=modified, lastModifiedBy=who, lastModifiedByType=kind)
    return body


# -- reading --------------------------------------------------------------------------------------------------
def records(ws: WorkspaceData, family: str) -> Iterator[Record]:
    """Every record of one v2 family in the workspace (views: the v1 records they show)."""
    if family == "datastores":  # SQL and PostgreSQL datastores have no v2 DatastoreType: not in the view
        yield from (r for r in ws.datastores if r.body()["dataStoreType"] in _STORE_TYPES)
    elif family == "computes":
        yield from ws.computes
    elif ws.v2 is not None:
        yield from ws.v2.collections[family]


def resource_id(ws: WorkspaceData, family: str, record: Record) -> str:
    """The record's ARM id, which is also its id in the ground truth."""
    if family in VIEW_FAMILIES:
        return f"{ws.arm_id}/{family}/{record.id}"
    return f"{ws.arm_id}/{record.id}"


def render(tenant: Tenant, ws: WorkspaceData, family: str, record: Record) -> JSON:
    """The record as a GET at the new api-version answers it."""
    if family == "datastores":
        return datastore_view(tenant, ws, record)
    if family == "computes":
        return compute_view(tenant, ws, record)
    if family == "child_jobs":  # azure-ai-ml _is_pipeline_child_job: MFE answers a child with no properties
        body = record.body()
        return {"id": body["id"], "name": body["name"], "type": body["type"], "properties": None}
    return record.body()


_STORE_TYPES = {
    "AzureBlob": ("AzureBlob", "AccountKey"),
    "AzureFile": ("AzureFile", "Sas"),
    "AzureDataLakeGen2": ("AzureDataLakeGen2", "ServicePrincipal"),
    "AzureDataLake": ("AzureDataLakeGen1", "ServicePrincipal"),
}


def datastore_view(tenant: Tenant, ws: WorkspaceData, record: Record) -> JSON:
    """A v1 datastore as ARM Datastores_Get answers it (example Datastore/list.json): no secret value at all."""
    body = record.body()
    kind, credentials = _STORE_TYPES.get(body["dataStoreType"], ("AzureBlob", "None"))
    section = body.get("azureStorageSection") or body.get("azureDataLakeSection") or {}
    creds: JSON = {"credentialsType": credentials}
    if credentials in ("AccountKey", "Sas"):
        creds["secrets"] = {"secretsType": credentials}
    elif credentials == "ServicePrincipal":
        client = section.get("clientCredentials") or section
        creds.update(clientId=client.get("clientId"), tenantId=client.get("tenantId"))
    actor = tenant.principals[record.owner or "automation"]
    style = store(ws).styles.get(record.id, "app" if actor.kind == "ServicePrincipal" else "upn")
    return {
        "id": f"{ws.arm_id}/datastores/{record.id}",
        "name": record.id,
        "type": "Microsoft.MachineLearningServices/workspaces/datastores",
        "properties": {
            "datastoreType": kind,
            "accountName": section.get("accountName") or section.get("storeName"),
            "containerName": section.get("containerName"),
            "endpoint": section.get("endpoint", "core.windows.net"),
            "protocol": section.get("protocol", "https"),
            "credentials": creds,
            "isDefault": record.id == "workspaceblobstore",
            "description": None,
            "properties": None,
            "tags": {k: v for k, v in body.get("tags", {}).items() if k != "note"},
        },
        "systemData": system_data(
            actor, style, body["createdTime"], body["modifiedTime"], "full", store(ws).created_by
        ),
    }


def compute_view(tenant: Tenant, ws: WorkspaceData, record: Record) -> JSON:
    """A compute at the new api-version (example Compute/get/ComputeInstance.json): a compute instance gains
    personalComputeInstanceSettings.assignedUser; no systemData (example; REC for clusters)."""
    body = copy.deepcopy(record.body())
    inner = body["properties"]["properties"]
    if body["properties"]["computeType"] == "ComputeInstance":
        person = tenant.principals[store(ws).assigned.get(record.id, record.owner or "")]
        inner["computeInstanceAuthorizationType"] = "personal"
        inner["personalComputeInstanceSettings"] = {
            "assignedUser": {"objectId": person.object_id, "tenantId": person.tenant_id}
        }
    return body


def uses(ws: WorkspaceData, arm_id: str) -> list[Record]:
    """The online and batch deployments whose model, environment or code is `arm_id` (case-insensitive)."""
    wanted = arm_id.lower()
    found = []
    for family in ENDPOINT_OF:
        for record in records(ws, family):
            props = record.body()["properties"]
            model = props.get(
                "model"
            )  # an ARM id (online) or an AssetReference {referenceType, assetId} (batch)
            model = model.get("assetId") if isinstance(model, dict) else model
            refs = (
                model,
                props.get("environmentId"),
                (props.get("codeConfiguration") or {}).get("codeId"),
            )
            if any(isinstance(r, str) and r.lower() == wanted for r in refs):
                found.append(record)
    return found


def children(ws: WorkspaceData, family: str, parent: str) -> list[Record]:
    """Records of `family` under the container, endpoint or pipeline job at path `parent`."""
    return [r for r in records(ws, family) if r.parent == parent]


# -- ground truth ----------------------------------------------------------------------------------------------
def truth(tenant: Tenant, person: str) -> dict[str, list[str]]:
    """{family: sorted ARM ids} of the v2 objects `person` made (or, compute instances, is assigned)."""
    found: dict[str, list[str]] = {family: [] for family in V2_FAMILIES}
    for ws in list(tenant.workspaces.values()):
        for family in V2_FAMILIES:
            for record in records(ws, family):
                people = {record.owner}
                if family == "computes":
                    people.add(store(ws).assigned.get(record.id))
                if person in people:
                    found[family].append(resource_id(ws, family, record))
    return {family: sorted(ids) for family, ids in found.items()}


def _names_by_system_data(body: JSON, principal: Principal) -> bool:
    data = body.get("systemData") or {}
    who = str(data.get("createdBy") or "").strip().lower()
    mine = {v.lower() for v in (principal.upn, principal.email) if v}
    return data.get("createdByType", "User") == "User" and who in mine


def _names_by_object_id(body: JSON, principal: Principal) -> bool:
    inner = (body.get("properties") or {}).get("properties") or {}
    oids = {
        (inner.get("createdBy") or {}).get("userId"),
        ((inner.get("personalComputeInstanceSettings") or {}).get("assignedUser") or {}).get("objectId"),
    }
    return body["properties"].get("computeType") == "ComputeInstance" and principal.object_id in oids


def reachable_in(tenant: Tenant, ws: WorkspaceData, principal: Principal) -> dict[str, list[str]]:
    """{family: ARM ids} the contract's rules attribute to `principal` in one workspace (see the docstring)."""
    found: dict[str, list[str]] = {family: [] for family in V2_FAMILIES}
    for family in V2_FAMILIES:
        if family in ("child_jobs", "connections"):
            continue
        match = _names_by_object_id if family == "computes" else _names_by_system_data
        found[family] = [
            resource_id(ws, family, r)
            for r in records(ws, family)
            if match(render(tenant, ws, family, r), principal)
        ]
    if store(ws).jobs_in_run_history:  # children are listed by run history, the parent names the subject
        parents = {i.removeprefix(ws.arm_id + "/") for i in found["jobs"]}
        found["child_jobs"] = [
            resource_id(ws, "child_jobs", r) for r in records(ws, "child_jobs") if r.parent in parents
        ]
    return found


def reachable(tenant: Tenant, person: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {family: [] for family in V2_FAMILIES}
    principal = tenant.principals.get(person)
    if principal is not None:
        for ws in list(tenant.workspaces.values()):
            for family, ids in reachable_in(tenant, ws, principal).items():
                found[family].extend(ids)
    return {family: sorted(ids) for family, ids in found.items()}


def findable(tenant: Tenant, person: str) -> dict[str, list[str]]:
    """truth AND reachable: what of the person's v2 objects the contract lets a faithful product find."""
    mine, rules = truth(tenant, person), reachable(tenant, person)
    return {family: sorted(set(mine[family]) & set(rules[family])) for family in V2_FAMILIES}


def erasable(tenant: Tenant, person: str) -> list[tuple[str, str, str]]:
    """(workspace id, family, ARM id) a faithful erasure deletes for `person`, in a working order: what depends on
    an object is deleted before it, and an object another person's object still needs is kept."""
    principal = tenant.principals.get(person)
    order: list[tuple[str, str, str]] = []
    if principal is None:
        return order
    for ws in list(tenant.workspaces.values()):
        order.extend((ws.arm_id, f, i) for f, i in _erasable_in(tenant, ws, principal))
    return order


def _erasable_in(tenant: Tenant, ws: WorkspaceData, principal: Principal) -> list[tuple[str, str]]:
    mine = {f: set(ids) for f, ids in reachable_in(tenant, ws, principal).items()}
    gone: set[str] = set()
    steps: list[tuple[str, str]] = []

    def path(arm_id: str) -> str:
        return arm_id.removeprefix(ws.arm_id + "/")

    def all_gone(found: list[Record]) -> bool:
        return all(f"{ws.arm_id}/{r.id}" in gone for r in found)

    def take(family: str, ids: set[str]) -> None:
        for arm_id in sorted(ids):
            gone.add(arm_id)
            steps.append((family, arm_id))

    take("schedules", mine["schedules"])  # before the jobs they would create
    for deployments in ENDPOINT_OF:
        take(deployments, mine[deployments])
    for deployments, endpoints in ENDPOINT_OF.items():
        take(endpoints, {i for i in mine[endpoints] if all_gone(children(ws, deployments, path(i)))})
    take("jobs", mine["jobs"])  # a pipeline job's children go with it
    for asset in ASSETS:
        versions = f"{asset}_versions"
        take(versions, {i for i in mine[versions] if all_gone(uses(ws, i))})
    for asset in ASSETS:
        versions, containers = f"{asset}_versions", f"{asset}_containers"
        take(containers, {i for i in mine[containers] if all_gone(children(ws, versions, path(i)))})
    for family in VIEW_FAMILIES:
        take(family, mine[family])
    return steps


def describe_kind(ws: WorkspaceData) -> dict[str, Any]:
    """What a workspace answer gains at the new api-version: its kind, and a project's hub."""
    extra: dict[str, Any] = {"kind": store(ws).kind}
    if store(ws).hub_id:
        extra["hubResourceId"] = store(ws).hub_id
    return extra
