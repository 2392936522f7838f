"""The HTTP side of the published contract: for every operation the simulator serves, the status codes it may
answer, its paging, the error body of its service and the throttling headers, each with the source it was read
in (contract.py holds the identity side: which fields name a person).

contract_check.py judges one answer against this table; tests/devtools/amlsim/test_contract_http.py drives the
simulator through every operation (lists to the end, reads, missing objects, throttling, deletes and their
long-running operations) and fails on any answer the table does not describe. Where the contract is silent the
table says so and names the HARSHER behaviour the simulator chose.

Sources: the constants of contract.py (SPECS, ARM_2019, DATA_PLANE, AMLCORE, AEVA) and
ARM_DOCS = learn.microsoft.com/azure/azure-resource-manager/management/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from devtools.amlsim.contract import AEVA, AMLCORE, ARM_2019, DATA_PLANE, SPECS

ARM_DOCS: Final = "learn.microsoft.com/azure/azure-resource-manager/management/"
WS: Final = (
    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
)
SUB: Final = "/subscriptions/{sub}/providers/Microsoft.MachineLearningServices"
HISTORY: Final = "/history/v1.0" + WS
MMS: Final = "/modelmanagement/v1.0" + WS
MMS_SEED: Final = "/api" + WS  # the 2020 procedure's form, on {region}.modelmanagement.azureml.net only
RUN_HISTORY_2019: Final = DATA_PLANE + "2019-05-01/runHistory.json"
MODEL_MANAGEMENT: Final = DATA_PLANE + "2019-09-30/modelManagement.json"
MMS_CLIENT: Final = AMLCORE + "_restclient/operations/"
# A model used by an image, or an image used by a service: azureml-core (core/model.py Model.delete,
# core/image/image.py Image.delete) reads 412 with "DeletionRequired" in the answer; so does the simulator.
IN_USE_STATUS: Final = 412
IN_USE_NOTE: Final = (
    "in use by an image/service: 412 DeletionRequired per "
    + AMLCORE
    + "core/model.py Model.delete, core/image/image.py Image.delete; the simulator answers 409 DeletionRequired "
    "until the product treats 412 as blocked"
)


# -- error bodies ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ErrorShape:
    name: str
    form: str
    source: str


ERRORS: Final[dict[str, ErrorShape]] = {
    "arm": ErrorShape(
        "MachineLearningServiceError",
        '{"error": {"code", "message", "details"?}}',
        ARM_2019
        + "machineLearningServices.json (the default response of every operation); "
        + AMLCORE
        + "_restclient/models/machine_learning_service_error.py, error_response_temp.py",
    ),
    "history": ErrorShape(
        "ErrorResponse",
        '{"error": {"code", "message", "target"?, "details"?, "innerError"?}, "correlation"?, ...}',
        RUN_HISTORY_2019
        + " (ErrorResponse, RootError: the default response); "
        + AMLCORE
        + "_restclient/models/error_response.py, root_error.py",
    ),
    "mms": ErrorShape(
        "ModelErrorResponse",
        '{"code", "statusCode", "message", "details": [{"code", "message", "target"}]} at the top level',
        MODEL_MANAGEMENT
        + " (ModelErrorResponse: the default response of every operation); "
        + AMLCORE
        + "_restclient/models/model_error_response.py",
    ),
    "aether": ErrorShape(
        "ErrorResponse (PascalCase)",
        '{"Error": {"Code", "Message", "Target"?, "Details"?}, "Correlation"?}',
        AEVA
        + "error_response.py ('error': {'key': 'Error'}), root_error.py ('Code', 'Message'); no public spec",
    ),
}


# -- services: hosts, error shape, throttling ------------------------------------------------------------------
@dataclass(frozen=True)
class Service:
    name: str
    domains: tuple[str, ...]  # "management.azure.com", or the regional domains "{region}.<domain>"
    error_shape: str  # key of ERRORS
    # x-ms-ratelimit-remaining-subscription-{reads|writes|deletes} on every answer past authentication (a 401
    # is refused before the request is counted)
    remaining_headers: bool
    retry_after_on_429: bool
    throttling_source: str
    api_version_required: bool = False
    common_errors: tuple[int, ...] = (400, 401, 404, 429)  # any operation of the service may answer these


DATA_PLANE_THROTTLING: Final = (
    "contract silent (no data-plane spec names a throttling header): HARSHER choice, no "
    "x-ms-ratelimit-remaining-* and no Retry-After on a 429; azureml-core retries a 429 with its own exponential "
    "back-off and never reads Retry-After (" + AMLCORE + "_restclient/clientbase.py _get_retry_delay)"
)


def _data_plane(
    name: str, domains: tuple[str, ...], error_shape: str, common: tuple[int, ...] = (400, 401, 404, 429)
) -> Service:
    return Service(name, domains, error_shape, False, False, DATA_PLANE_THROTTLING, common_errors=common)


EXPERIMENTS_HOSTS: Final = ("experiments.azureml.net", "api.azureml.ms")
SERVICES: Final[dict[str, Service]] = {
    s.name: s
    for s in (
        Service(
            "arm",
            ("management.azure.com",),
            "arm",
            remaining_headers=True,
            retry_after_on_429=True,
            throttling_source=ARM_DOCS + "request-limits-and-throttling (remaining requests headers on every "
            "answer: reads, writes, deletes; 429 with Retry-After; token buckets per principal and subscription: "
            "reads 250 / 25 per s, deletes 200 / 10 per s)",
            api_version_required=True,
        ),
        # artifact.json and datastore.json answer run history's ErrorResponse; notification tasks have no spec
        _data_plane("history", EXPERIMENTS_HOSTS, "history"),
        _data_plane("artifact", EXPERIMENTS_HOSTS, "history"),
        _data_plane("notification", EXPERIMENTS_HOSTS, "history"),
        _data_plane("datastore", EXPERIMENTS_HOSTS, "history"),
        _data_plane("modelmanagement", ("modelmanagement.azureml.net", "api.azureml.ms"), "mms"),
        _data_plane("pipelines", ("aether.ms", "api.azureml.ms"), "aether", (401, 404, 429)),
        _data_plane(
            "discovery",
            ("experiments.azureml.net", "modelmanagement.azureml.net", "aether.ms", "api.azureml.ms"),
            "history",
            (401, 429),
        ),
    )
}


# -- paging ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Paging:
    envelope: Literal["arm", "continuation"]  # arm: {value, nextLink}, nextLink absent on the last page;
    # continuation: {value, continuationToken, nextLink}, both null on the last page
    token: str  # the query parameter of the continuation; the nextLink carries it
    size: str | None  # the page-size query parameter the contract names (None: none)
    source: str


ARM_LIST: Final = Paging(
    "arm",
    "$skipToken",
    None,
    ARM_2019 + "machineLearningServices.json (WorkspaceListResult, PaginatedComputeResourcesList {value, "
    "nextLink}, x-ms-pageable; PaginationParameter `$skip`); " + AMLCORE + "_restclient/operations/"
    "workspaces_operations.py, machine_learning_compute_operations.py send `$skiptoken` (the simulator's "
    "nextLink carries `$skipToken` and accepts `$skip`)",
)
HISTORY_LIST: Final = Paging(
    "continuation",
    "$continuationtoken",
    "$top",
    RUN_HISTORY_2019 + " (Experiments_List, Runs_List, RunMetrics_List: `$continuationtoken`, `$top`; "
    "PaginatedRunList {value, continuationToken, nextLink}: 'If null, there are no additional pages')",
)
ARTIFACT_LIST: Final = Paging(
    "continuation",
    "continuationToken",
    None,
    DATA_PLANE + "2019-05-01/artifact.json (Artifacts_ListInContainer: `continuationToken`, no page size; "
    "PaginatedArtifactList {value, continuationToken, nextLink})",
)
TASK_LIST: Final = Paging(
    "continuation",
    "$continuationtoken",
    "$top",
    "no public spec: assumed as run history (" + RUN_HISTORY_2019 + ")",
)
DATASTORE_LIST: Final = Paging(
    "continuation",
    "continuationToken",
    "count",
    DATA_PLANE + "2019-09-30/datastore.json (List: `continuationToken`, `count`, `includeSecret` default "
    "true); "
    + AMLCORE
    + "_restclient/operations/data_stores_operations.py, models/paginated_data_store_list.py",
)
MMS_LIST: Final = Paging(
    "arm",
    "$skipToken",
    "count",
    MODEL_MANAGEMENT
    + " (*_ListQuery: `count`, `$skipToken`; Paginated*List {value, nextLink}); "
    + AMLCORE
    + "_model_management/_util.py get_paginated_results (follows nextLink while the key is present)",
)


# -- operations --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Operation:
    id: str  # the spec's operationId, or a name for what has no spec
    family: str | None  # state.FAMILIES name (None: the discovery document)
    service: str  # key of SERVICES
    method: Literal["GET", "DELETE"]
    paths: tuple[str, ...]  # templates; `{name}` is one path segment
    ok: tuple[int, ...]  # the success statuses of the contract
    source: str
    paging: Paging | None = None
    errors: tuple[int, ...] = ()  # error statuses beyond the service's common ones
    accepted_headers: tuple[str, ...] = ()  # what a 202 must carry
    note: str = ""  # where the simulator chose, and why

    def statuses(self) -> tuple[int, ...]:
        return tuple(sorted({*self.ok, *self.errors, *SERVICES[self.service].common_errors}))


def _get(id_: str, family: str | None, service: str, path: str, source: str, **kw: Any) -> Operation:
    paths = (path, path.replace(MMS, MMS_SEED, 1)) if path.startswith(MMS) else (path,)
    return Operation(id_, family, service, "GET", paths, (200,), source, **kw)


def _mms(kind: str, family: str, client: str, delete_ok: tuple[int, ...], **kw: Any) -> tuple[Operation, ...]:
    label = {"models": "MLModels", "assets": "Assets", "images": "Images", "services": "Services"}[kind]
    where = (
        MODEL_MANAGEMENT if kind != "images" else MMS_CLIENT + "image_operations.py (no images in the spec)"
    )
    one = MMS + f"/{kind}/{{id}}"
    return (
        _get(f"{label}_ListQuery", family, "modelmanagement", MMS + f"/{kind}", where, paging=MMS_LIST),
        _get(f"{label}_QueryById", family, "modelmanagement", one, where),
        Operation(
            f"{label}_Delete",
            family,
            "modelmanagement",
            "DELETE",
            (one, one.replace(MMS, MMS_SEED, 1)),
            delete_ok,
            f"{where}; {MMS_CLIENT}{client} (delete accepts {list(delete_ok)})",
            **kw,
        ),
    )


def _pipeline(segment: str, family: str, source: str) -> Operation:
    return _get(
        f"Aether_Get{segment}",
        family,
        "pipelines",
        "/api/v1.0" + WS + f"/{segment}/{{id}}",
        f"no public spec; {source}; path from the seed document (ENDPOINTS.md E23-E27; azureml-pipeline-core "
        "builds /pipelines/v1.0/...)",
    )


ARM_GET: Final = ARM_2019 + "machineLearningServices.json"
ASYNC: Final = ARM_DOCS + "async-operations"
OPERATIONS: Final[tuple[Operation, ...]] = (
    _get("Workspaces_ListBySubscription", "workspaces", "arm", SUB + "/workspaces", ARM_GET, paging=ARM_LIST),
    _get(
        "Workspaces_ListByResourceGroup",
        "workspaces",
        "arm",
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces",
        ARM_GET,
        paging=ARM_LIST,
    ),
    _get("Workspaces_Get", "workspaces", "arm", WS, ARM_GET),
    Operation(
        "Workspaces_Delete",
        "workspaces",
        "arm",
        "DELETE",
        (WS,),
        (200, 202, 204),
        ARM_2019 + "examples/deleteWorkspace.json (200, 202, 204); " + SPECS + "resource-manager/"
        "Microsoft.MachineLearningServices/stable/2025-12-01/workspaceRP.json (202: Location, Retry-After)",
        accepted_headers=("Location", "Retry-After"),
        note="202 also carries Azure-AsyncOperation (" + ASYNC + ": 'use it if returned')",
    ),
    _get(
        "WorkspaceOperation_Status",
        "workspaces",
        "arm",
        SUB + "/locations/{loc}/workspaceOperationsStatus/{op}",
        ASYNC
        + " (Azure-AsyncOperation: 200 {id, name, status, startTime, endTime?, error?}); the URL is the "
        "one the 202 hands out",
    ),
    Operation(
        "WorkspaceOperation_Result",
        "workspaces",
        "arm",
        "GET",
        (SUB + "/locations/{loc}/workspaceOperationsResults/{op}",),
        (200, 202),
        ASYNC + " (Location: 202 while running, then the operation's own outcome)",
        errors=(409, 500),
        accepted_headers=("Location", "Retry-After"),
        note="a failed operation answers 500, a canceled one 409, with an ARM error body",
    ),
    _get(
        "MachineLearningCompute_ListByWorkspace",
        "computes",
        "arm",
        WS + "/computes",
        ARM_GET,
        paging=ARM_LIST,
    ),
    _get("MachineLearningCompute_Get", "computes", "arm", WS + "/computes/{name}", ARM_GET),
    _get(
        "Experiments_List",
        "experiments",
        "history",
        HISTORY + "/experiments",
        RUN_HISTORY_2019,
        paging=HISTORY_LIST,
    ),
    _get("Experiments_Get", "experiments", "history", HISTORY + "/experiments/{exp}", RUN_HISTORY_2019),
    _get("Experiments_GetById", "experiments", "history", HISTORY + "/experimentids/{id}", RUN_HISTORY_2019),
    _get(
        "Runs_List",
        "runs",
        "history",
        HISTORY + "/experiments/{exp}/runs",
        RUN_HISTORY_2019,
        paging=HISTORY_LIST,
    ),
    _get("Runs_Get", "runs", "history", HISTORY + "/experiments/{exp}/runs/{run}", RUN_HISTORY_2019),
    _get(
        "RunMetrics_List",
        "metrics",
        "history",
        HISTORY + "/experiments/{exp}/metrics",
        RUN_HISTORY_2019,
        paging=HISTORY_LIST,
    ),
    _get(
        "RunMetrics_Get", "metrics", "history", HISTORY + "/experiments/{exp}/metrics/{id}", RUN_HISTORY_2019
    ),
    _get(
        "Artifacts_ListInContainer",
        "artifacts",
        "artifact",
        "/artifact/v1.0" + WS + "/artifacts/origins/{origin}/containers/{container}",
        ARTIFACT_LIST.source + "; the v1.0 path from the seed document (ENDPOINTS.md E10)",
        paging=ARTIFACT_LIST,
        note="a container that holds nothing answers an empty list (the spec is silent)",
    ),
    _get(
        "Tasks_List",
        "tasks",
        "notification",
        "/notification/v1.0" + WS + "/tasks",
        TASK_LIST.source,
        paging=TASK_LIST,
    ),
    _get("Tasks_Get", "tasks", "notification", "/notification/v1.0" + WS + "/tasks/{id}", TASK_LIST.source),
    _get(
        "DataStores_List",
        "datastores",
        "datastore",
        "/datastore/v1.0" + WS + "/datastores",
        DATASTORE_LIST.source,
        paging=DATASTORE_LIST,
    ),
    _get(
        "DataStores_Get",
        "datastores",
        "datastore",
        "/datastore/v1.0" + WS + "/datastores/{name}",
        DATASTORE_LIST.source,
    ),
    *_mms(
        "models", "models", "ml_models_operations.py", (200, 204), errors=(IN_USE_STATUS,), note=IN_USE_NOTE
    ),
    *_mms("assets", "assets", "assets_operations.py", (200, 204)),
    *_mms("images", "images", "image_operations.py", (200, 204), errors=(IN_USE_STATUS,), note=IN_USE_NOTE),
    *_mms(
        "services",
        "services",
        "services_operations.py",
        (200, 202, 204),
        accepted_headers=("Operation-Location",),
        note="Operation-Location on a delete's 202: " + AMLCORE + "core/webservice/webservice.py requires it",
    ),
    _get(
        "Operations_Get",
        "services",
        "modelmanagement",
        MMS + "/operations/{op}",
        MODEL_MANAGEMENT + " (Operations_Get: 200 AsyncOperationStatus; no api-version)",
    ),
    _pipeline("Experiments", "pipeline_experiments", "no public client model"),
    _pipeline("Graphs", "pipeline_graphs", AEVA + "graph_entity.py"),
    _pipeline("Modules", "pipeline_modules", AEVA + "module_entity.py"),
    _pipeline("Templates", "pipeline_templates", AEVA + "template_entity.py"),
    _pipeline("DataSources", "pipeline_datasources", AEVA + "data_source_entity.py"),
    _get(
        "Discovery_Get",
        None,
        "discovery",
        "/discovery",
        AMLCORE
        + "_base_sdk_common/service_discovery.py (GET properties.discoveryUrl: a JSON object of hosts)",
    ),
)


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile(f"^{body}/?$", re.IGNORECASE)


_PATTERNS: Final = [(op, _pattern(p)) for op in OPERATIONS for p in op.paths]


def domain_of(host: str) -> str:
    """ "management.azure.com", or the regional domain of "{region}.<domain>"."""
    host = host.lower()
    return host if host == "management.azure.com" else host.partition(".")[2]


def operation_for(method: str, host: str, path: str) -> Operation | None:
    """The operation of the table that answers `method` on `host` + `path` (query excluded), if any."""
    domain = domain_of(host)
    for op, pattern in _PATTERNS:
        if op.method == method and domain in SERVICES[op.service].domains and pattern.match(path):
            return op
    return None
