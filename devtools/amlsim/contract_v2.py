"""What Microsoft's published contract says of the v2 (ARM) resources under a workspace, one row per family, each
fact with the source it was read in. The simulator's v2 routes (v2_routes.py) take their paths, paging parameters
and delete style from this table; tests/devtools/amlsim/test_v2.py walks every v2 answer against it.

Contract: the newest stable api-version of Microsoft.MachineLearningServices, 2026-07-01 (TypeSpec-generated
`openapi.json`; the same file sits in the newer layout `.../MachineLearningServices/stable/2026-07-01/`; its
readme's default tag is package-2026-07-01). Read 2026-12.

Where the contract is silent, two further sources are used and named: real answers of the service recorded by the
Azure PowerShell module's tests (api-version 2022-05-01, REC below), and the azure-ai-ml (SDK v2) sources (AIML).
Facts the recordings show that change what a product can find:
- the service writes `systemData.createdBy` as the user's DISPLAY NAME ("Lucas Yao (Wicresoft North America)" on
  jobs, models, data, environments, components, code, datastores, endpoints, deployments), not the UPN; the
  2026-07-01 example ModelContainer/list.json shows a name too ("John Smith"). v2_fixture builds either form
  (`created_by="upn"`, the default the product was specified against, or `created_by="name"`, as recorded);
- jobs carry only createdAt/createdBy/createdByType; endpoints and deployments carry createdAt, createdBy and
  lastModifiedAt but no createdByType; connections answer `"systemData": null`; computes carry no systemData.
Where even those are silent the row says so and takes the HARSHER choice (the one that hides less from a test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from devtools.amlsim.contract import IDENTITY_KEYS, allowed_in
from devtools.amlsim.contract import identity_keys_at as v1_identity_keys_at
from devtools.amlsim.contract_http import ERRORS

V2_API_VERSION: Final = "2026-07-01"
# The oldest api-version the simulator serves the v2 families at: the first stable one with jobs, assets,
# endpoints and v2 datastores (REC: every recording below calls 2022-05-01). Older ones answer 400
# NoRegisteredProviderFound, as ARM does for a resource type an api-version does not know.
V2_SINCE: Final = "2022-05-01"

_RM: Final = "Azure/azure-rest-api-specs:specification/machinelearningservices/resource-manager/"
SPEC: Final = _RM + "Microsoft.MachineLearningServices/stable/2026-07-01/"
OPENAPI: Final = SPEC + "openapi.json"
EX: Final = SPEC + "examples/"
EX2: Final = _RM + "Microsoft.MachineLearningServices/MachineLearningServices/examples/2026-07-01/"
REC: Final = "Azure/azure-powershell:src/MachineLearningServices/test/"
AIML: Final = "Azure/azure-sdk-for-python:sdk/ml/azure-ai-ml/azure/ai/ml/"

# Keys that may name a person in a v2 answer, beyond contract.IDENTITY_KEYS: a connection's `sharedUserList`
# (array of strings, content undocumented) and the `mlflow.user` tag MLflow autologging writes on a job (REC:
# Get-AzMLWorkspaceJob.Recording.json, the user's display name).
V2_IDENTITY_KEYS: Final = IDENTITY_KEYS | {"sharedUserList", "mlflow.user", "lastModifiedByType"}

SYSTEM_DATA_FULL: Final = (
    "systemData.createdBy",
    "systemData.createdByType",
    "systemData.lastModifiedBy",
    "systemData.lastModifiedByType",
)
ASSET_VIEWS: Final = ("ActiveOnly", "ArchivedOnly", "All")  # listViewType, default first (openapi.json)
SCHEDULE_VIEWS: Final = ("EnabledOnly", "DisabledOnly", "All")
# Operation URLs: locations/{region}/mfeOperationResults/{id} (Location) and computeOperationsStatus/{id} (a
# compute's Azure-AsyncOperation). The spec names no URL; both are resource types the provider registers (a public
# list of ARM resource types: locations/mfeOperationResults, mfeOperationsStatus, computeOperationsStatus,
# workspaceOperationsStatus), and REC New-AzMLWorkspaceCompute shows computeOperationsStatus.
LRO_LOCATION: Final = "202 + Location + Retry-After; the Location answers 202 until done, then 200"
LRO_COMPUTE: Final = (
    "202 + Azure-AsyncOperation + Location (Compute_Delete); status {status, percentComplete}"
)
SYNC: Final = "200 deleted, 204 not there (no LRO)"


@dataclass(frozen=True)
class Paging:
    token: tuple[str, ...] = ("$skip", "$skipToken")  # accepted; the first goes into nextLink
    size: tuple[str, ...] = ()  # page-size parameters the operation takes (else the simulator's page size)
    views: tuple[str, ...] = ()  # listViewType values, the default first
    filters: tuple[str, ...] = ()  # other query parameters the contract lists (served: jobType)


@dataclass(frozen=True)
class V2Contract:
    family: str
    path: str  # under the workspace's ARM id; the last `{...}` is the record's name
    operations: tuple[str, ...]  # list, get, delete operationIds in openapi.json
    identity: tuple[str, ...]  # dotted paths that may name a person; () = none
    creator: str  # plain words: what names the creator
    sources: tuple[str, ...]
    paging: Paging = field(default_factory=Paging)
    delete: str = SYNC
    statuses: tuple[int, ...] = (200, 204, 400, 404)
    error_shape: str = ERRORS["arm"].form  # ARM's error body, as for every ARM operation
    rule: str = (
        "systemData.createdBy = the subject's UPN or e-mail (case-insensitive), createdByType User or absent"
    )
    in_use: str = ""
    archive: str = ""
    parent: str | None = None  # the family whose record this one sits under


_SD: Final = (
    "systemData {createdBy, createdByType, createdAt, lastModifiedBy, lastModifiedByType, lastModifiedAt}"
)
_NAME: Final = "systemData.createdBy holds a display name in REC, a UPN/e-mail in the default build"
_ASSET_ARCHIVE: Final = (
    "isArchived: archived objects are listed only with listViewType=ArchivedOnly|All; DELETE deletes"
)
_VERSIONS_FIRST: Final = (
    "409 Conflict while versions remain (contract silent; harsher: versions before their container)"
)
_USED_BY_DEPLOYMENT: Final = (
    "409 Conflict while an online or batch deployment uses it (contract silent; harsher)"
)


def _assets(
    family: str, segment: str, op: str, example: str, *, views: bool = True
) -> tuple[V2Contract, ...]:
    """A container row and its version row (models, data, environments, components, codes)."""
    v = ASSET_VIEWS if views else ()
    container = V2Contract(
        f"{family}_containers",
        f"{segment}/{{name}}",
        (f"{op}Containers_List", f"{op}Containers_Get", f"{op}Containers_Delete"),
        SYSTEM_DATA_FULL,
        f"{_SD}; {_NAME}",
        (
            OPENAPI + f" ({op}Containers_*; delete 200/204)",
            EX + f"Workspace/{example}Container/list.json",
            REC + f"Get-AzMLWorkspace{example}Container.Recording.json",
        ),
        Paging(size=("count",) if family == "model" else (), views=v),
        statuses=(200, 204, 400, 404, 409),
        in_use=_VERSIONS_FIRST,
        archive=_ASSET_ARCHIVE if views else "",
    )
    version = V2Contract(
        f"{family}_versions",
        f"{segment}/{{container}}/versions/{{name}}",
        (f"{op}Versions_List", f"{op}Versions_Get", f"{op}Versions_Delete"),
        SYSTEM_DATA_FULL,
        f"{_SD}; {_NAME}",
        (
            OPENAPI + f" ({op}Versions_*; delete 200/204; list $orderBy, $top, $skip)",
            EX + f"Workspace/{example}Version/list.json",
        ),
        Paging(size=("$top",), views=v),
        statuses=(200, 204, 400, 404, 409),
        in_use=_USED_BY_DEPLOYMENT if family in ("model", "environment", "code") else "",
        archive=_ASSET_ARCHIVE if views else "",
        parent=f"{family}_containers",
    )
    return container, version


def _endpoints(kind: str, segment: str, op: str) -> tuple[V2Contract, ...]:
    tracked = "systemData {createdBy, createdAt, lastModifiedAt}: no createdByType (REC); " + _NAME
    endpoint = V2Contract(
        f"{kind}_endpoints",
        f"{segment}/{{name}}",
        (f"{op}Endpoints_List", f"{op}Endpoints_Get", f"{op}Endpoints_Delete"),
        ("systemData.createdBy",),
        tracked,
        (
            OPENAPI
            + f" ({op}Endpoints_Delete: 200, 202 Location/Retry-After, 204; LRO final-state-via location)",
            EX2 + "Workspace/OnlineEndpoint/delete.json",
            REC + f"New-AzMLWorkspace{op}Endpoint.Recording.json",
        ),
        Paging(size=("count",)),
        LRO_LOCATION,
        (200, 202, 204, 400, 404, 409),
        in_use="409 Conflict while deployments remain (contract silent; the harsher choice, see docs)",
    )
    deployment = V2Contract(
        f"{kind}_deployments",
        f"{segment}/{{container}}/deployments/{{name}}",
        (f"{op}Deployments_List", f"{op}Deployments_Get", f"{op}Deployments_Delete"),
        ("systemData.createdBy",),
        tracked,
        (
            OPENAPI + f" ({op}Deployments_Delete: 200, 202, 204; list $orderBy, $top, $skip)",
            EX2 + "Workspace/BatchDeployment/delete.json",
        ),
        Paging(size=("$top",)),
        LRO_LOCATION,
        (200, 202, 204, 400, 404),
        parent=f"{kind}_endpoints",
    )
    return endpoint, deployment


V2_CONTRACT: Final[dict[str, V2Contract]] = {
    c.family: c
    for c in (
        V2Contract(
            "jobs",
            "jobs/{name}",
            ("Jobs_List", "Jobs_Get", "Jobs_Delete"),
            ("systemData.createdBy", "systemData.createdByType", "properties.tags.mlflow.user"),
            "systemData {createdAt, createdBy, createdByType} (REC); tags['mlflow.user'] = display name when "
            "MLflow autologged (REC)",
            (
                OPENAPI
                + " (Jobs_List $skip, jobType, tag, listViewType, properties; Jobs_Delete 200, 202, 204)",
                EX + "Job/PipelineJob/list.json",
                EX2 + "Job/delete.json",
                REC + "Get-AzMLWorkspaceJob.Recording.json",
            ),
            Paging(views=ASSET_VIEWS, filters=("jobType", "tag", "properties")),
            LRO_LOCATION,
            (200, 202, 204, 400, 404),
            archive="isArchived: archived jobs are listed only with listViewType=ArchivedOnly|All",
        ),
        V2Contract(
            "child_jobs",
            "jobs/{name}",
            ("Jobs_Get", "Jobs_Delete"),
            (),
            "none over ARM: Jobs_Get answers the child with `properties: null`; children are not in Jobs_List and "
            "are listed only through run history (the parent's runs/children)",
            (
                AIML + "operations/_job_operations.py (list(parent_job_name): run history get_run_children; "
                "get: 'Child jobs are no longer available through MFE')",
                AIML + "entities/_job/job.py (_is_pipeline_child_job: properties is None)",
            ),
            Paging(token=()),
            LRO_LOCATION,
            (200, 202, 204, 404),
            rule="a child of a pipeline job that names the subject, found through run history only",
            parent="jobs",
        ),
        *_assets("model", "models", "Model", "Model"),
        *_assets("data", "data", "Data", "Data"),
        *_assets("environment", "environments", "Environment", "Environment"),
        *_assets("component", "components", "Component", "Component"),
        *_assets("code", "codes", "Code", "Code", views=False),
        *_endpoints("online", "onlineEndpoints", "Online"),
        *_endpoints("batch", "batchEndpoints", "Batch"),
        V2Contract(
            "schedules",
            "schedules/{name}",
            ("Schedules_List", "Schedules_Get", "Schedules_Delete"),
            SYSTEM_DATA_FULL,
            f"{_SD} (example Schedule/list.json); {_NAME}",
            (
                OPENAPI + " (Schedules_List $skip, listViewType; Schedules_Delete 200, 202, 204)",
                EX + "Schedule/list.json",
            ),
            Paging(views=SCHEDULE_VIEWS),
            LRO_LOCATION,
            (200, 202, 204, 400, 404),
        ),
        V2Contract(
            "connections",
            "connections/{name}",
            ("WorkspaceConnections_List", "WorkspaceConnections_Get", "WorkspaceConnections_Delete"),
            ("systemData",),
            "none: `systemData: null` (REC Get-AzMLWorkspaceConnection.Recording.json; the 2026-07-01 get example "
            "has none); sharedUserList not served (content undocumented); credentials not in a GET",
            (
                OPENAPI + " (WorkspaceConnections_List target, category, includeAll; delete 200/204; "
                "listsecrets: POST, never served here)",
                EX2 + "WorkspaceConnection/get.json",
                REC + "Get-AzMLWorkspaceConnection.Recording.json",
            ),
            Paging(filters=("target", "category", "includeAll")),
            rule="not matched to a person (no creator field)",
        ),
        V2Contract(
            "datastores",
            "datastores/{name}",
            ("Datastores_List", "Datastores_Get", "Datastores_Delete"),
            SYSTEM_DATA_FULL,
            f"{_SD}; {_NAME}; the same datastores the v1 data plane lists (E13), credentials without secrets",
            (
                OPENAPI
                + " (Datastores_List $skip, count, isDefault, names, searchText, orderBy, orderByAsc)",
                EX
                + "Datastore/list.json (credentials {credentialsType, secrets {secretsType}}: no secret value)",
                REC + "New-AzMLWorkspaceDatastore.Recording.json",
            ),
            Paging(size=("count",), filters=("isDefault", "names", "searchText", "orderBy", "orderByAsc")),
        ),
        V2Contract(
            "computes",
            "computes/{name}",
            ("Compute_List", "Compute_Get", "Compute_Delete"),
            (
                "properties.properties.createdBy.userName",
                "properties.properties.createdBy.userOrgId",
                "properties.properties.createdBy.userId",
                "properties.properties.personalComputeInstanceSettings.assignedUser.objectId",
            ),
            "compute instances: properties.properties.createdBy {userId (object id), userName, userOrgId} and "
            "personalComputeInstanceSettings.assignedUser {objectId, tenantId}; no systemData (example, REC)",
            (
                EX + "Compute/get/ComputeInstance.json (createdBy, assignedUser; no systemData)",
                REC + "New-AzMLWorkspaceCompute.Recording.json (AmlCompute at 2022-05-01: no systemData)",
                OPENAPI
                + " (Compute_Delete: underlyingResourceAction required; 200, 202 Azure-AsyncOperation and "
                "Location, 204)",
            ),
            delete=LRO_COMPUTE,
            statuses=(200, 202, 204, 400, 404),
            rule="createdBy.userId or assignedUser.objectId = the subject's object id (compute instances only)",
        ),
    )
}

WORKSPACE_KINDS: Final = (
    "kind (Default | Hub | Project) and properties.hubResourceId at the new api-version; no identity field is "
    "served (workspaces are never matched)",
    OPENAPI
    + " (Workspaces_ListBySubscription/_ListByResourceGroup: kind, $skip; WorkspaceProperties.hubResourceId)",
)


def allowed(family: str, path: str) -> bool:
    """Whether `path` (dotted, `[]` for list elements) may carry an identity key in a `family` v2 record."""
    return allowed_in(V2_CONTRACT[family].identity, path)


def identity_keys_at(record: object, prefix: str = "") -> list[str]:
    """Every path in `record` whose last key is a v2 identity key (null values included)."""
    return v1_identity_keys_at(record, prefix, V2_IDENTITY_KEYS)
