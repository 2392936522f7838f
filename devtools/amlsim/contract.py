"""What Microsoft's published contract says each simulated record carries: the fields that name a person, one row
per resource family, each fact with the source it was read in. The HTTP side (operations, status codes, paging,
error bodies, throttling headers) is contract_http.py.

The simulator (fixture.py) may put a field that names a person ONLY at a path listed here for that family and
api-version; tests/devtools/amlsim/test_contract.py walks every answer of the simulator's HTTP API and fails on
any identity key elsewhere. Where the contract is silent the row says so and takes the HARSHER choice: no
creator field (a kind simulator that invents one hides an export that finds nothing on a real tenant).

Sources (paths relative to the named repository or package; read 2026-12):
- SPECS = Azure/azure-rest-api-specs, specification/machinelearningservices/
- AMLCORE = azureml-core 1.61.0.post4 wheel (PyPI), azureml/ ; AEVA = azureml-pipeline-core 1.62.0 wheel,
  azureml/pipeline/core/_restclients/aeva/models/

Identity paths are dotted; `[]` stands for every element of a list (`notifications[].recipient`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

SPECS: Final = "Azure/azure-rest-api-specs:specification/machinelearningservices/"
ARM_2019: Final = SPECS + "resource-manager/Microsoft.MachineLearningServices/stable/2019-11-01/"
DATA_PLANE: Final = SPECS + "data-plane/Microsoft.MachineLearningServices/preview/"
RUN_HISTORY_V1: Final = (
    SPECS + "data-plane/Microsoft.MachineLearningServices.RunHistory/stable/v1.0/run-history.json"
)
AMLCORE: Final = "azureml-core 1.61.0.post4 (PyPI wheel):azureml/"
AEVA: Final = "azureml-pipeline-core 1.62.0 (PyPI wheel):azureml/pipeline/core/_restclients/aeva/models/"

# Keys that name a person (or could): a key from this set anywhere in a simulated answer must sit at a path
# the family's row allows. `principalId`/`clientId`/`tenantId` of a workspace identity or a datastore's service
# principal are not people and are left out.
IDENTITY_KEYS: Final = frozenset(
    {
        "createdBy",
        "CreatedBy",
        "createdByType",
        "lastModifiedBy",
        "systemData",
        "userObjectId",
        "UserObjectId",
        "userTenantId",
        "UserTenantId",
        "userName",
        "UserName",
        "upn",
        "userPuId",
        "userIdp",
        "userIss",
        "userAltSecId",
        "userId",
        "userOrgId",
        "objectId",
        "assignedUser",
        "email",
        "recipient",
        "owner",
    }
)


@dataclass(frozen=True)
class Contract:
    family: str  # the simulator's family name (state.FAMILIES)
    endpoints: tuple[str, ...]  # the product's endpoint ids (shared/aml/catalog.py) that answer this family
    api_version: str
    identity: tuple[str, ...]  # dotted paths that may name a person; () = the contract names nobody
    creator: str  # plain words: which of `identity` names the creator, or why none does
    sources: tuple[str, ...]  # where each fact above was read (at least one)
    rule: str = ""  # how the product ties a record of this family to a person (shared/tasks/rules.py)
    cannot_find: str = ""  # what the rule cannot find, and why


CONTRACT: Final[dict[str, Contract]] = {
    c.family: c
    for c in (
        Contract(
            "workspaces",
            ("S1", "E1", "E2"),
            "2019-11-01",
            (),
            "none: api-version 2019-11-01 has no systemData (first in later versions); properties name no person",
            (
                ARM_2019 + "machineLearningServices.json (Workspace, WorkspaceProperties: no systemData)",
                ARM_2019 + "examples/getWorkspace.json",
                "Azure/bicep-types-az:generated/machinelearningservices/microsoft.machinelearningservices/"
                "2021-01-01/types.md (systemData appears; absent in 2020-09-01-preview/types.md)",
            ),
            rule="not matched to a person (no creator field)",
            cannot_find="who created the workspace: the manifest lists workspaces under notMatchable",
        ),
        Contract(
            "computes",
            ("E3", "E4"),
            "2019-11-01",
            (
                "properties.properties.createdBy.userName",
                "properties.properties.createdBy.userOrgId",
                "properties.properties.createdBy.userId",
            ),
            "compute instances only: properties.properties.createdBy {userName (UPN), userOrgId (tenant), userId "
            "(object id)}; no systemData at 2019-11-01; personalComputeInstanceSettings.assignedUser "
            "{objectId, tenantId} exists only at newer api-versions (not in the 2019-11-01 example); "
            "clusters (AmlCompute) name nobody",
            (
                ARM_2019 + "examples/getComputeInstance.json (createdBy; no assignedUser, no systemData)",
                ARM_2019 + "examples/getAmlCompute.json (no creator)",
                AMLCORE
                + "core/compute/computeinstance.py (reads personalComputeInstanceSettings.assignedUser."
                "objectId at newer versions)",
            ),
            rule="createdBy.userId (or, at newer api-versions, assignedUser.objectId) = the subject's object id",
            cannot_find="compute clusters (no creator field)",
        ),
        Contract(
            "experiments",
            ("E5",),
            "v1.0",
            (),
            "none: ExperimentDto has experimentId, name, description, createdUtc, archivedTime, tags",
            (
                DATA_PLANE + "2019-08-01/runHistory.json (Experiment)",
                RUN_HISTORY_V1 + " (ExperimentDto)",
                AMLCORE + "_restclient/models/experiment_dto.py (no created_by)",
            ),
            rule="kept when the subject has a kept run in it (the runs task writes it)",
            cannot_find="an experiment in which the subject has no run",
        ),
        Contract(
            "runs",
            ("E6", "E7"),
            "v1.0",
            (
                "createdBy.userObjectId",
                "createdBy.userTenantId",
                "createdBy.userName",
                "createdBy.upn",
                "createdBy.userPuId",
                "createdBy.userIdp",
                "createdBy.userIss",
                "userId",
            ),
            "createdBy {userObjectId, userTenantId, userName (a full name or an app id)}; newer: upn (often "
            "null), userPuId, userIdp, userIss; RunDto.userId",
            (
                RUN_HISTORY_V1 + " (RunDto.createdBy: User)",
                DATA_PLANE + "2019-08-01/runHistory.json (CreatedBy)",
                AMLCORE + "_restclient/models/run_dto.py (created_by: CreatedByDto, user_id)",
                AMLCORE + "_restclient/models/created_by_dto.py",
            ),
            rule="createdBy.userObjectId = object id, or createdBy.upn = UPN/e-mail when no object id names "
            "someone else; userName is never compared",
            cannot_find="a run whose createdBy carries only a display name",
        ),
        Contract(
            "metrics",
            ("E8", "E9"),
            "v1.0",
            (),
            "none: RunMetric has runId, metricId, dataContainerId, ... but no creator",
            (DATA_PLANE + "2019-08-01/runHistory.json (RunMetric)", RUN_HISTORY_V1 + " (RunMetricDto)"),
            rule="kept when its runId is a kept run",
        ),
        Contract(
            "artifacts",
            ("E10",),
            "v1.0",
            (),
            "none: Artifact has artifactId, origin, container, path, etag, createdTime, dataPath",
            (
                DATA_PLANE + "2019-08-01/artifact.json (Artifact)",
                AMLCORE + "_restclient/models/artifact_dto.py",
            ),
            rule="listed from the container dcid.<runId> of a kept run",
        ),
        Contract(
            "tasks",
            ("E11", "E12"),
            "v1.0",
            ("notifications[].recipient",),
            "no public spec: HARSHER choice, no creator field; E12's notifications name their recipient's "
            "e-mail address (personal data, not a creator)",
            ("no public spec (searched " + SPECS + "data-plane/); ENDPOINTS.md E11/E12 (seed document)",),
            rule="kept when its runId is one of the subject's runs",
            cannot_find="a task of the subject on someone else's run; recipients are never compared",
        ),
        Contract(
            "datastores",
            ("E13", "E14"),
            "v1.0",
            ("azurePostgreSqlSection.userId",),
            "none: DataStore has no creator; azurePostgreSqlSection.userId is a database login, not a person",
            (
                DATA_PLANE + "2019-09-30/datastore.json (DataStore)",
                AMLCORE + "_restclient/models/data_store.py (no created_by)",
            ),
            rule="not matched to a person (no creator field)",
            cannot_find="every datastore: the manifest lists datastores under notMatchable",
        ),
        Contract(
            "models",
            ("E15", "E16", "D2"),
            "2019-11-01",
            (
                "createdBy.userObjectId",
                "createdBy.userTenantId",
                "createdBy.userName",
                "createdBy.userPuId",
                "createdBy.userIdp",
                "createdBy.userIss",
            ),
            "createdBy: User {userObjectId, userPuId, userIdp, userAltSecId, userIss, userTenantId, userName}; "
            "no upn",
            (
                DATA_PLANE + "2019-09-30/modelManagement.json (Model.createdBy)",
                AMLCORE + "_restclient/models/model.py (created_by: ModelCreatedBy)",
                AMLCORE + "_restclient/models/user.py",
                AMLCORE + "core/model.py (Model.created_by = obj_dict['createdBy'])",
            ),
            rule="createdBy.userObjectId = the subject's object id",
            cannot_find="a model whose createdBy names only a display name",
        ),
        Contract(
            "assets",
            ("E17", "E18", "D3"),
            "2019-11-01",
            (),
            "none: Asset has id, name, description, artifacts, kvTags, properties, runid, meta, createdTime",
            (
                DATA_PLANE + "2019-09-30/modelManagement.json (Asset)",
                AMLCORE + "_restclient/models/asset.py (no created_by; runid)",
            ),
            rule="kept when its runid is one of the subject's runs",
            cannot_find="an asset uploaded outside a run (runid null)",
        ),
        Contract(
            "images",
            ("E19", "E20", "D4"),
            "2019-11-01",
            (),
            "none: ImageResponseBase has modelIds, modelDetails, ... but no creator",
            (
                DATA_PLANE + "2019-09-30/modelManagement.json (ImageResponseBase)",
                AMLCORE + "_restclient/models/image_response_base.py (no created_by; model_ids)",
            ),
            rule="kept when it packages one of the subject's models (modelIds)",
            cannot_find="an image that packages none of the subject's models",
        ),
        Contract(
            "services",
            ("E21", "E22", "D5"),
            "2019-11-01",
            (
                "createdBy.userObjectId",
                "createdBy.userTenantId",
                "createdBy.userName",
                "createdBy.userPuId",
                "createdBy.userIdp",
                "createdBy.userIss",
            ),
            "createdBy: User (as models)",
            (
                DATA_PLANE + "2019-09-30/modelManagement.json (ServiceResponseBase.createdBy)",
                AMLCORE + "_restclient/models/service_response_base.py (created_by)",
                AMLCORE + "core/webservice/webservice.py (created_by = obj_dict.get('createdBy'))",
            ),
            rule="createdBy.userObjectId = the subject's object id",
        ),
        Contract(
            "pipeline_experiments",
            ("E23",),
            "v1.0",
            (),
            "no public spec and no public client model: HARSHER choice, no creator",
            ("no public spec; " + AEVA + " has no experiment entity",),
            rule="fetched because a kept pipeline run names it (experimentId)",
        ),
        Contract(
            "pipeline_graphs",
            ("E24",),
            "v1.0",
            (),
            "no public spec; GraphEntity has no CreatedBy: no creator",
            (AEVA + "graph_entity.py (no created_by)",),
            rule="fetched because a kept pipeline run names it (properties azureml.graphId)",
        ),
        Contract(
            "pipeline_modules",
            ("E25",),
            "v1.0",
            ("CreatedBy.UserObjectId", "CreatedBy.UserTenantId", "CreatedBy.UserName"),
            "ModuleEntity.CreatedBy {UserObjectId, UserTenantId, UserName} (PascalCase keys)",
            (AEVA + "module_entity.py ('created_by': {'key': 'CreatedBy'})", AEVA + "created_by.py"),
            rule="CreatedBy.UserObjectId = the subject's object id (found through a graph of a kept run)",
        ),
        Contract(
            "pipeline_templates",
            ("E26",),
            "v1.0",
            (),
            "no public spec; TemplateEntity has no CreatedBy: no creator",
            (AEVA + "template_entity.py (no created_by)",),
            rule="fetched because a kept pipeline run names it (properties azureml.pipelineTemplateId)",
        ),
        Contract(
            "pipeline_datasources",
            ("E27",),
            "v1.0",
            (),
            "no public spec; DataSourceEntity has no CreatedBy: no creator",
            (AEVA + "data_source_entity.py (no created_by)",),
            rule="fetched because a graph of a kept run names it (datasetNodes[].dataSourceId)",
        ),
    )
}


def allowed(family: str, path: str) -> bool:
    """Whether `path` (dotted, `[]` for list elements) may carry an identity key in a `family` record: it is
    one of the row's identity paths, or a container on the way to one."""
    return allowed_in(CONTRACT[family].identity, path)


def allowed_in(paths: tuple[str, ...], path: str) -> bool:
    """Whether `path` is one of `paths` or a container on the way to one."""
    return path in paths or any(p.startswith(path + ".") or p.startswith(path + "[]") for p in paths)


def identity_keys_at(record: object, prefix: str = "", keys: frozenset[str] | None = None) -> list[str]:
    """Every path in `record` whose last key is an identity key (`keys`, IDENTITY_KEYS by default; values of
    null are still reported)."""
    wanted = IDENTITY_KEYS if keys is None else keys
    found: list[str] = []
    if isinstance(record, dict):
        for key, value in record.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key in wanted:
                found.append(path)
            found.extend(identity_keys_at(value, path, wanted))
    elif isinstance(record, list):
        for item in record:
            found.extend(identity_keys_at(item, prefix + "[]", wanted))
    return found
