"""The Azure ML endpoints the product drives, as data.

One row per endpoint of the published "export or delete your workspace data" procedure (E1-E27, D1-D5), plus
the subscription-level workspace list and the workspace's discovery document, and the v2 (ARM) families under a
workspace that SDK/CLI v2 and the studio write (V1-V36: jobs, registered assets, endpoints and deployments,
schedules, connections, v2 datastores; docs/azure-fidelity.md, "v2 families"). Two defects of the published
text are corrected here and pinned by tests/unit/test_catalog.py:
  1. E3/E4 print `/resourceGroup/` (singular); the ARM segment is `resourceGroups`.
  2. E12 prints `.../workspaces/{workspaceName}tasks/{taskId}`; the path is `.../workspaces/{workspaceName}/tasks/{taskId}`.

Families group endpoints into units of work: one task pages one family's list in one workspace, keeps the
records tied to the subject, fetches their detail, and (for erasure) deletes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import quote

from shared.core.outbound import path_segment

Service = Literal["arm", "experiments", "modelmanagement", "pipelines"]
Paging = Literal["arm", "continuation", "skiptoken", "none"]

ARM_API_VERSION: Final = "2019-11-01"
# Workspace delete (D1) is a soft delete by default: the workspace answers 404 but its data is kept for a retention
# period (14 days by default, the maximum; 1-14 settable) and can be recovered; `forceToPurge=true` deletes it
# permanently [learn.microsoft.com/azure/machine-learning/concept-soft-delete]. The parameter exists from
# stable api-version 2024-04-01 (azure-rest-api-specs, .../Microsoft.MachineLearningServices/stable/2024-04-01/
# workspaceRP.json, WorkspaceForceToPurgeParameter; absent from stable/2023-10-01/machineLearningServices.json).
# An older api-version (the seed's 2019-11-01) ignores it: that DELETE soft-deletes.
FORCE_TO_PURGE_SINCE: Final = "2024-04-01"
SOFT_DELETE_RETENTION_DAYS: Final = 14


def supports_force_to_purge(api_version: str) -> bool:
    """Whether Workspaces_Delete at this api-version takes forceToPurge (previews are not trusted with it)."""
    return len(api_version) >= 10 and api_version[:10] >= FORCE_TO_PURGE_SINCE


MODEL_API_VERSION: Final = "2019-11-01"

RG: Final = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
WS: Final = RG + "/providers/Microsoft.MachineLearningServices/workspaces/{workspaceName}"

# Which key of a workspace's discovery document replaces each service's configured base.
DISCOVERY_KEYS: Final[dict[Service, str]] = {
    "experiments": "history",
    "modelmanagement": "modelmanagement",
    "pipelines": "pipelines",
}


@dataclass(frozen=True)
class Endpoint:
    id: str
    what: str
    service: Service
    path: str  # template, appended to the service's base URL
    method: Literal["GET", "DELETE"] = "GET"
    api_version: str | None = None
    paging: Paging = "none"
    continuation_param: str | None = None  # query parameter that carries a continuation token
    # Called at DSR_ARM_V2_API_VERSION (settings.arm_v2_api_version) instead of `api_version`.
    v2: bool = False
    query: tuple[tuple[str, str], ...] = ()  # fixed query parameters (a list's listViewType)

    def render(self, **values: str) -> str:
        """The path with every placeholder filled, each value percent-encoded as one path segment.

        Every URL the product builds from an id passes here, the requester's and the ones the Azure ML side
        returned (names in lists, pipeline ids in run properties, operation ids): a value that cannot stay one
        segment (empty, '.', '..', '/', '?', '#', '%', control characters; outbound.path_segment) raises
        UnsafePathSegmentError naming the endpoint and the field, before any URL exists."""
        return self.path.format(
            **{key: quote(path_segment(f"{self.id} {key}", value), safe="") for key, value in values.items()}
        )

    @property
    def placeholders(self) -> tuple[str, ...]:
        import string

        return tuple(name for _, name, _, _ in string.Formatter().parse(self.path) if name)


def _e(id_: str, what: str, service: Service, path: str, **kw: object) -> Endpoint:
    return Endpoint(id_, what, service, path, **kw)  # type: ignore[arg-type]


HISTORY: Final = "/history/v1.0" + WS
ARTIFACT: Final = "/artifact/v1.0" + WS
NOTIFICATION: Final = "/notification/v1.0" + WS
DATASTORE: Final = "/datastore/v1.0" + WS
# Model management as azureml-core builds it (`_get_mms_url`: `/modelmanagement/v1.0` + the workspace scope), on
# the discovery document's host and on `{location}.modelmanagement.azureml.net` alike. The 2020 procedure prints
# `/api` + WS, which only the regional model-management host is known to serve.
MODELS: Final = "/modelmanagement/v1.0" + WS
PIPELINES: Final = "/api/v1.0" + WS
ARM_PAGED: Final = {"api_version": ARM_API_VERSION, "paging": "arm"}
MM_PAGED: Final = {"api_version": MODEL_API_VERSION, "paging": "skiptoken"}
MM_ONE: Final = {"api_version": MODEL_API_VERSION}
# Run history and notifications take `$continuationtoken`; artifacts and datastores `continuationToken`
# (azure-rest-api-specs, machinelearningservices data-plane runHistory / artifact / datastore).
CONT: Final = {"paging": "continuation", "continuation_param": "$continuationtoken"}
CONT_PLAIN: Final = {"paging": "continuation", "continuation_param": "continuationToken"}

# -- the v2 (ARM) families under a workspace, at DSR_ARM_V2_API_VERSION (openapi.json of the newest stable
# api-version: Jobs_*, {Model,Data,Environment,Component,Code}Containers_* / Versions_*, {Online,Batch}Endpoints_*
# / Deployments_*, Schedules_*, WorkspaceConnections_*, Datastores_*). Every list pages with `nextLink`; the
# listViewType=All lists take archived jobs and assets and disabled schedules too. A list item is the resource as
# its GET answers it, so the lists are the export's read; the GETs are here for a child job (never listed) and
# for an erasure's verification.
ALL_VIEWS: Final = (("listViewType", "All"),)
ASSET_SEGMENTS: Final = (
    ("model", "models", "model"),
    ("data", "data", "data asset"),
    ("environment", "environments", "environment"),
    ("component", "components", "component"),
    ("code", "codes", "code asset"),
)
ENDPOINT_SEGMENTS: Final = (("online", "onlineEndpoints"), ("batch", "batchEndpoints"))


def _v2_endpoints() -> tuple[Endpoint, ...]:
    """V1-V36: a list and a get per v2 family, numbered in the order below."""
    rows: list[tuple[str, str, tuple[tuple[str, str], ...]]] = [
        ("jobs", "/jobs", ALL_VIEWS),
        ("job", "/jobs/{name}", ()),
    ]
    for kind, segment, what in ASSET_SEGMENTS:
        views = ALL_VIEWS if kind != "code" else ()  # CodeContainers/Versions_List take no listViewType
        rows += [
            (f"{what} containers", f"/{segment}", views),
            (f"one {what} container", f"/{segment}/{{name}}", ()),
            (f"versions of a {what} container", f"/{segment}/{{container}}/versions", views),
            (f"one {what} version", f"/{segment}/{{container}}/versions/{{name}}", ()),
        ]
    for kind, segment in ENDPOINT_SEGMENTS:
        rows += [
            (f"{kind} endpoints", f"/{segment}", ()),
            (f"one {kind} endpoint", f"/{segment}/{{name}}", ()),
            (f"deployments of a {kind} endpoint", f"/{segment}/{{container}}/deployments", ()),
            (f"one {kind} deployment", f"/{segment}/{{container}}/deployments/{{name}}", ()),
        ]
    rows += [
        ("schedules", "/schedules", ALL_VIEWS),
        ("one schedule", "/schedules/{name}", ()),
        ("workspace connections (never their secrets: no listSecrets)", "/connections", ()),
        ("one workspace connection", "/connections/{name}", ()),
        ("v2 datastores (credentials without secrets)", "/datastores", ()),
        ("one v2 datastore", "/datastores/{name}", ()),
    ]
    return tuple(
        Endpoint(f"V{i}", what, "arm", WS + path, paging="arm" if i % 2 else "none", v2=True, query=query)
        for i, (what, path, query) in enumerate(rows, start=1)
    )


V2_ENDPOINTS: Final = _v2_endpoints()

ENDPOINTS: Final[dict[str, Endpoint]] = {
    e.id: e
    for e in (
        _e(
            "S1",
            "list all workspaces of a subscription",
            "arm",
            "/subscriptions/{subscriptionId}/providers/Microsoft.MachineLearningServices/workspaces",
            **ARM_PAGED,
        ),
        _e(
            "E1",
            "list all workspaces of a resource group",
            "arm",
            RG + "/providers/Microsoft.MachineLearningServices/workspaces",
            **ARM_PAGED,
        ),
        _e("E2", "one workspace", "arm", WS, api_version=ARM_API_VERSION),
        # At the v2 api-version: a compute instance then names its assigned user (Compute/get/ComputeInstance.json).
        _e("E3", "all compute targets of a workspace", "arm", WS + "/computes", paging="arm", v2=True),
        _e("E4", "one compute target", "arm", WS + "/computes/{computeName}", v2=True),
        _e("E5", "all experiments", "experiments", HISTORY + "/experiments", **CONT),
        _e(
            "E6",
            "all runs of an experiment",
            "experiments",
            HISTORY + "/experiments/{experimentName}/runs",
            **CONT,
        ),
        _e("E7", "one run", "experiments", HISTORY + "/experiments/{experimentName}/runs/{runId}"),
        _e(
            "E8",
            "run metrics of an experiment",
            "experiments",
            HISTORY + "/experiments/{experimentName}/metrics",
            **CONT,
        ),
        _e(
            "E9",
            "one run metric",
            "experiments",
            HISTORY + "/experiments/{experimentName}/metrics/{metricId}",
        ),
        _e(
            "E10",
            "artifacts of a run",
            "experiments",
            # The container is the run's `dataContainerId` (`dcid.<runId>` as the service assigns it), not the
            # run id: azureml-core lists a run's files with artifacts.get_file_paths("ExperimentRun",
            # run._container), where _container is the run's data_container_id (azureml/core/run.py).
            ARTIFACT + "/artifacts/origins/ExperimentRun/containers/{containerId}",
            **CONT_PLAIN,
        ),
        _e("E11", "notification tasks", "experiments", NOTIFICATION + "/tasks", **CONT),
        _e("E12", "notifications of one task", "experiments", NOTIFICATION + "/tasks/{taskId}"),
        _e("E13", "datastores", "experiments", DATASTORE + "/datastores", **CONT_PLAIN),
        _e("E14", "one datastore", "experiments", DATASTORE + "/datastores/{name}"),
        _e("E15", "models", "modelmanagement", MODELS + "/models", **MM_PAGED),
        _e("E16", "one model", "modelmanagement", MODELS + "/models/{id}", **MM_ONE),
        _e("E17", "assets", "modelmanagement", MODELS + "/assets", **MM_PAGED),
        _e("E18", "one asset", "modelmanagement", MODELS + "/assets/{id}", **MM_ONE),
        _e("E19", "images", "modelmanagement", MODELS + "/images", **MM_PAGED),
        _e("E20", "one image", "modelmanagement", MODELS + "/images/{id}", **MM_ONE),
        _e("E21", "services", "modelmanagement", MODELS + "/services", **MM_PAGED),
        _e("E22", "one service", "modelmanagement", MODELS + "/services/{id}", **MM_ONE),
        _e("E23", "one pipeline experiment", "pipelines", PIPELINES + "/Experiments/{experimentId}"),
        _e("E24", "one pipeline graph", "pipelines", PIPELINES + "/Graphs/{graphId}"),
        _e("E25", "one pipeline module", "pipelines", PIPELINES + "/Modules/{id}"),
        _e("E26", "one pipeline template", "pipelines", PIPELINES + "/Templates/{templateId}"),
        _e("E27", "one pipeline data source", "pipelines", PIPELINES + "/DataSources/{id}"),
        _e("D1", "delete an entire workspace", "arm", WS, method="DELETE", api_version=ARM_API_VERSION),
        _e("D2", "delete a model", "modelmanagement", MODELS + "/models/{id}", method="DELETE", **MM_ONE),
        _e("D3", "delete an asset", "modelmanagement", MODELS + "/assets/{id}", method="DELETE", **MM_ONE),
        _e("D4", "delete an image", "modelmanagement", MODELS + "/images/{id}", method="DELETE", **MM_ONE),
        _e("D5", "delete a service", "modelmanagement", MODELS + "/services/{id}", method="DELETE", **MM_ONE),
        *V2_ENDPOINTS,
    )
}


@dataclass(frozen=True)
class Family:
    """A resource family: the list endpoint paged by one task, its detail and delete endpoints."""

    name: str
    title: str  # plain-language name, for the package and the status
    list: str  # endpoint id
    detail: str | None  # endpoint id fetched for each kept record
    id_field: str  # the record field that fills the detail/delete placeholder
    detail_param: str  # the placeholder name in the detail/delete path
    delete: str | None = None
    # Order of deletion inside a workspace: dependents first (a service uses an image, an image uses models).
    delete_order: int = 0


def _v2_families() -> tuple[Family, ...]:
    """The v2 output families: each pages its list (V1, V3, ...); a list item is the whole resource, so no detail
    read (Family.detail None), except a child job, which no list names (read with V2, found in run history)."""
    families = [
        Family("jobs", "Jobs", "V1", None, "name", "name"),
        Family("child_jobs", "Child jobs of pipeline jobs", "V1", "V2", "name", "name"),
    ]
    number = 3
    for kind, _segment, what in ASSET_SEGMENTS:
        title = what[0].upper() + what[1:]
        families.append(
            Family(f"{kind}_containers", f"{title} containers", f"V{number}", None, "name", "name")
        )
        families.append(
            Family(f"{kind}_versions", f"{title} versions", f"V{number + 2}", None, "name", "name")
        )
        number += 4
    for kind, _segment in ENDPOINT_SEGMENTS:
        title = kind.capitalize()
        families.append(Family(f"{kind}_endpoints", f"{title} endpoints", f"V{number}", None, "name", "name"))
        families.append(
            Family(f"{kind}_deployments", f"{title} deployments", f"V{number + 2}", None, "name", "name")
        )
        number += 4
    families += [
        Family("schedules", "Schedules", "V31", None, "name", "name"),
        Family("connections", "Workspace connections", "V33", None, "name", "name"),
        Family("v2_datastores", "Datastores (v2)", "V35", None, "name", "name"),
    ]
    return tuple(families)


FAMILIES: Final[dict[str, Family]] = {
    f.name: f
    for f in (
        Family("computes", "Compute targets", "E3", "E4", "name", "computeName"),
        Family("experiments", "Experiments", "E5", None, "name", "experimentName"),
        Family("runs", "Runs", "E6", "E7", "runId", "runId"),
        Family("metrics", "Run metrics", "E8", "E9", "metricId", "metricId"),
        Family("artifacts", "Run artifacts", "E10", None, "path", "path"),
        Family("notifications", "Notification tasks", "E11", "E12", "id", "taskId"),
        Family("datastores", "Datastores", "E13", "E14", "name", "name"),
        Family("services", "Deployed services", "E21", "E22", "id", "id", delete="D5", delete_order=1),
        Family("images", "Images", "E19", "E20", "id", "id", delete="D4", delete_order=2),
        Family("models", "Models", "E15", "E16", "id", "id", delete="D2", delete_order=3),
        Family("assets", "Assets", "E17", "E18", "id", "id", delete="D3", delete_order=4),
        *(_v2_families()),
    )
}

# Families that one task per workspace pages directly (runs, metrics and artifacts are paged per experiment
# by the tasks the experiments task spawns).
WORKSPACE_FAMILIES: Final = (
    "computes",
    "experiments",
    "notifications",
    "datastores",
    "models",
    "assets",
    "images",
    "services",
)

# The v2 task kinds one task per workspace runs (shared/tasks/v2_families.py), each with the output families it
# writes: a container family and its versions, an endpoint family and its deployments, jobs and child jobs.
V2_TASK_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "jobs": ("jobs", "child_jobs"),
    **{f"{kind}_assets": (f"{kind}_containers", f"{kind}_versions") for kind, _s, _w in ASSET_SEGMENTS},
    **{f"{kind}_endpoints": (f"{kind}_endpoints", f"{kind}_deployments") for kind, _s in ENDPOINT_SEGMENTS},
    "schedules": ("schedules",),
    "connections": ("connections",),
    "v2_datastores": ("v2_datastores",),
}
V2_TASK_TITLES: Final = {
    "model_assets": "Registered models (v2)",
    "data_assets": "Registered data assets",
    "environment_assets": "Registered environments",
    "component_assets": "Registered components",
    "code_assets": "Registered code",
}

PIPELINE_KINDS: Final[dict[str, str]] = {
    "experiment": "E23",
    "graph": "E24",
    "module": "E25",
    "template": "E26",
    "datasource": "E27",
}

# What these APIs cannot export or erase for a person: reported in every manifest and erasure record.
NOT_COVERED: Final = (
    {
        "what": "Telemetry records of user interactions",
        "why": "Not reachable through the Azure ML REST APIs.",
        "manual_step": "Use the Privacy blade of the Azure portal to export or delete telemetry.",
    },
    {
        "what": "Designer pipeline drafts",
        "why": "No REST call lists or deletes drafts.",
        "manual_step": "In the Designer, select the draft and choose Delete (export: open and save it).",
    },
    {
        "what": "Dataset contents",
        "why": "A registered dataset is a reference; the data lives in the connected storage account.",
        "manual_step": "Export or delete the files in the connected storage (Azure portal or Storage Explorer); "
        "unregistering a dataset only removes the reference.",
    },
    {
        "what": "Datasets exported from the Designer",
        "why": "Export from the Designer is a manual step.",
        "manual_step": "In the Designer: Datasets, select the dataset, download.",
    },
)

# What the published contract does not let the product attribute to a person (devtools/amlsim/contract.py cites
# each fact; docs/azure-fidelity.md explains them): reported in every subject export's manifest as `notMatchable`.
# `family` is the product's output name (the package's file family).
NOT_MATCHABLE: Final = (
    {
        "family": "workspace",
        "what": "Workspaces",
        "why": "ARM api-version 2019-11-01 returns no systemData: a workspace names no creator.",
    },
    {
        "family": "datastores",
        "what": "Datastores (v1 data plane)",
        "why": "The v1 datastore contract names no creator; the same datastores are read at the v2 api-version, "
        "where systemData names the creator (exported as `v2_datastores`).",
    },
    {
        "family": "connections",
        "what": "Workspace connections",
        "why": "A connection answers `systemData: null` and names no creator (its sharedUserList is undocumented): "
        "matched to nobody, and its secrets are never read.",
    },
    {
        "family": "child_jobs",
        "what": "Child jobs of a pipeline job that run history does not list",
        "why": "Jobs_List leaves child jobs out and a child job's GET names nobody (`properties: null`): the "
        "children of the subject's pipeline jobs are found through run history only (E6, parentRunId).",
    },
    {
        "family": "computes",
        "what": "Compute clusters",
        "why": "Only a compute instance names its creator (createdBy.userId) or assigned user; clusters name "
        "nobody.",
    },
    {
        "family": "experiments",
        "what": "Experiments without a run of the subject",
        "why": "An experiment names no creator; it is exported when the subject's runs are in it.",
    },
    {
        "family": "notifications",
        "what": "Notification tasks on another person's run",
        "why": "No public contract names a task's creator; a task is exported when its runId is the subject's run.",
    },
    {
        "family": "assets",
        "what": "Assets not made by a run of the subject",
        "why": "An asset names no creator; it is exported when its runid is the subject's run.",
    },
    {
        "family": "images",
        "what": "Images that package none of the subject's models",
        "why": "An image names no creator; it is exported when its modelIds include the subject's model.",
    },
    {
        "family": "runs",
        "what": "Runs, models and services that name their creator by display name only",
        "why": "Display names are never compared (two people share a name): such a record is matched to nobody.",
    },
)

# A v2 task counts, per output family, the records whose creator neither rule nor identity could decide
# (`<prefix><family>` in its stats: a display name in systemData.createdBy, or a subject known by object id only);
# the manifest lists those families as not matched by identity (manifest.undecided_families).
CREATOR_UNDECIDED: Final = "creatorUndecided:"

_WHOLE_WORKSPACE_ONLY = (
    "These APIs have no per-item delete for it: only deleting the whole workspace (D1; an erasure request "
    "with deleteWorkspace) removes it. Export it first if it must be kept."
)

# What a subject-scoped erasure cannot delete through these APIs: reported in every erasure record.
NOT_ERASABLE: Final = (
    {
        "what": "Run history (experiments, runs)",
        "why": "No delete endpoint.",
        "manual_step": _WHOLE_WORKSPACE_ONLY,
    },
    {"what": "Run metrics", "why": "No delete endpoint.", "manual_step": _WHOLE_WORKSPACE_ONLY},
    {
        "what": "Images that also package another person's model; assets not made by the subject's runs",
        "why": "Images and assets name no creator: an erasure deletes an image only when every model it packages "
        "is the subject's, and an asset only when its runid is the subject's run.",
        "manual_step": "Review the images and assets the export lists for the subject and delete them by hand "
        "(D3/D4), or delete the whole workspace.",
    },
    {"what": "Run artifacts", "why": "No delete endpoint.", "manual_step": _WHOLE_WORKSPACE_ONLY},
    {
        "what": "Compute targets, datastores, notification tasks",
        "why": "No delete endpoint in this procedure.",
        "manual_step": _WHOLE_WORKSPACE_ONLY,
    },
    {
        "what": "v2 (ARM) objects: jobs, registered assets, online and batch endpoints and deployments, schedules, "
        "connections, v2 datastores, compute instances",
        "why": "This version exports them (and lists them in a dry run) but does not delete them yet.",
        "manual_step": "After the export, delete them in the studio or with `az ml <kind> delete`, dependents "
        "first: schedules, deployments, endpoints, jobs, versions, containers.",
    },
    NOT_COVERED[2],  # dataset contents live in the connected storage
    NOT_COVERED[0],  # telemetry
    NOT_COVERED[1],  # Designer drafts
)


# What a person reads for each task family (status, manifest, index.html).
FAMILY_TITLES = {
    "scope": "Workspace discovery",
    "workspace": "Workspaces",
    "pipelines": "Pipeline objects",
    **{name: f.title for name, f in FAMILIES.items()},
    **V2_TASK_TITLES,
}
