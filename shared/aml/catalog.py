"""The Azure ML endpoints the product drives, as data.

One row per endpoint of the published "export or delete your workspace data" procedure (E1-E27, D1-D5), plus
the subscription-level workspace list and the workspace's discovery document. Two defects of the published
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
        _e("E3", "all compute targets of a workspace", "arm", WS + "/computes", **ARM_PAGED),
        _e("E4", "one compute target", "arm", WS + "/computes/{computeName}", api_version=ARM_API_VERSION),
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
        "what": "Datastores",
        "why": "The datastore contract names no creator, and no other record ties a datastore to a person.",
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
}
