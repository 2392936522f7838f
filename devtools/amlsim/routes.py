"""The simulated Azure Machine Learning endpoints: routing, paging, status codes, long-running delete.

Virtual hosts: the first path segment of a request names the Azure host being simulated
(`management.azure.com`, `{region}.experiments.azureml.net`, `{region}.modelmanagement.azureml.net`,
`{region}.aether.ms`, `{region}.api.azureml.ms`); the rest of the path is the real one. The newer
`{region}.api.azureml.ms` host serves every data-plane path. A regional call for a workspace in another
region answers 404, as do the two defective paths of the source document (`/resourceGroup/` and
`.../workspaces/{ws}tasks/...`): only the corrected forms are routed.

Paging, status codes and error bodies follow the HTTP contract table (contract_http.py cites each source):
- ARM lists: `{value, nextLink}`; nextLink carries `$skipToken` (azureml-core's `$skiptoken`; `$skip`, the
  2019-11-01 spec's parameter, is accepted too) and is absent on the last page; no page-size parameter.
- Run history lists (`Experiments_List`, `Runs_List`, `RunMetrics_List`): `$top` and `$continuationtoken`; answer
  `{value, continuationToken, nextLink}`, both null on the last page. Notification tasks (no public spec): the same.
- Artifacts (`Artifacts_ListInContainer`): `continuationToken`, no page size; same answer shape.
- Datastores (`List`): `count` and `continuationToken`; same answer shape; `includeSecret` defaults to true.
- Model management (`*_ListQuery`): `count` and `$skipToken`; `{value, nextLink}`, nextLink absent at the end.
Only the contract's parameter names are read (query names case-insensitively): another spelling is an unknown
parameter and ignored, as a service ignores it (the first page again). Tokens are opaque, bound to their list,
and keyset-based (see state.py). Errors come in the shape of the answering service (`shape_error`): ARM and run
history `{"error": {...}}`, model management `ModelErrorResponse`, aether `{"Error": {"Code", "Message"}}`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from devtools.amlsim.state import JSON, Collection, Record, WorkspaceData

if TYPE_CHECKING:
    from devtools.amlsim.server import Simulator

ARM_HOST = "management.azure.com"
REGIONAL_DOMAINS: dict[str, frozenset[str]] = {
    "experiments.azureml.net": frozenset({"history", "artifact", "notification", "datastore", "discovery"}),
    "modelmanagement.azureml.net": frozenset({"modelmanagement", "discovery"}),
    "aether.ms": frozenset({"pipelines", "discovery"}),
    "api.azureml.ms": frozenset(
        {"history", "artifact", "notification", "datastore", "modelmanagement", "pipelines", "discovery"}
    ),
}
_REGIONAL = re.compile(
    r"^(?P<region>[a-z0-9]+)\.(?P<domain>" + "|".join(re.escape(d) for d in REGIONAL_DOMAINS) + ")$"
)
_API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
ARM_API_VERSION = "2019-11-01"
# The first stable api-version whose Workspaces_Delete takes `forceToPurge` (azure-rest-api-specs,
# specification/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/stable/2024-04-01/
# workspaceRP.json: WorkspaceForceToPurgeParameter; absent from stable/2023-10-01 and 2023-04-01
# machineLearningServices.json). Previews are not trusted with it: an older api-version, preview or not, does
# not know the parameter, and ARM does not reject unknown query parameters, so it is ignored: the harsher reading
# (a caller that asked for a purge gets a soft delete and is not told).
FORCE_TO_PURGE_SINCE = "2024-04-01"


def purge_requested(req: ApiRequest) -> bool:
    """A workspace DELETE that purges: `forceToPurge=true` at an api-version that has the parameter."""
    version = (req.q("api-version") or "")[:10]
    return (req.q("forceToPurge") or "").strip().lower() == "true" and version >= FORCE_TO_PURGE_SINCE


# Model management paths. azureml-core builds `<modelmanagement host>/modelmanagement/v1.0/subscriptions/...`
# (azureml/_model_management/_util.py `_get_mms_url`, MMS_ROUTE_API_VERSION = 'v1.0'), on the discovery
# document's host and on the regional `{region}.modelmanagement.azureml.net` alike. The 2020 export procedure
# prints `/api/subscriptions/...` on the regional model-management host only. Nothing public says that the
# newer `{region}.api.azureml.ms` host serves the `/api/` form: the harsher reading, it does not (404).
MMS_PREFIX = r"(?:/api|/modelmanagement/v1\.0)"
MMS_CLIENT_PREFIX = "/modelmanagement/v1.0"


def mms_prefix_of(path: str) -> str:
    return "/api" if path.lower().startswith("/api/") else MMS_CLIENT_PREFIX


def mms_path_served(domain: str, path: str) -> bool:
    """Whether `domain` serves this model-management path form (the seed's `/api/` only on its own host)."""
    return mms_prefix_of(path) == MMS_CLIENT_PREFIX or domain == "modelmanagement.azureml.net"


def parse_host(host: str) -> tuple[str, str | None] | None:
    """("arm", None), (regional domain, region) or None for a host the simulator does not play."""
    host = host.lower()
    if host == ARM_HOST:
        return "arm", None
    match = _REGIONAL.match(host)
    if match is None:
        return None
    return match["domain"], match["region"]


@dataclass
class ApiRequest:
    method: str
    host: str  # the simulated host (lower case)
    path: str  # the path after the host segment, as received (percent-encoded)
    query: dict[str, str]
    principal: str | None = None
    region: str | None = None

    def q(self, *names: str) -> str | None:
        """A query parameter by any of `names`, case-insensitively (Azure query names are)."""
        wanted = {n.lower() for n in names}
        for key, value in self.query.items():
            if key.lower() in wanted:
                return value
        return None


@dataclass
class ApiResponse:
    status: int
    body: Any = None  # JSON-able; None means an empty body
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, **extra: Any) -> ApiResponse:
    """An ARM-style error answer: {"error": {"code", "message", ...}}."""
    return ApiResponse(status, {"error": {"code": code, "message": message, **extra}})


def model_error_body(status: int, code: str, message: str, details: list[JSON] | None = None) -> JSON:
    """Model management's own error shape, `ModelErrorResponse` (azure-rest-api-specs, specification/
    machinelearningservices/data-plane/Microsoft.MachineLearningServices/preview/2019-09-30/modelManagement.json:
    the `default` response of every operation there): a top-level {code, statusCode, message, details}, where
    each detail is `ErrorDetails` {code, message, target}. Not ARM's {"error": {...}}."""
    return {"code": code, "statusCode": status, "message": message, "details": list(details or [])}


def shape_error(service: str | None, response: ApiResponse) -> ApiResponse:
    """An ARM-style error answer re-shaped as `service` answers its errors (other answers unchanged): model
    management's `ModelErrorResponse` (see model_error_body), aether's PascalCase `ErrorResponse`
    {"Error": {"Code", "Message", "Details"}} (azureml-pipeline-core, _restclients/aeva/models/error_response.py,
    root_error.py; no public spec); every other service keeps `{"error": {...}}`."""
    body = response.body
    if response.status < 400 or not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return response
    inner = body["error"]
    details = [
        {k: d[k] for k in ("code", "message", "target") if k in d}
        for d in inner.get("details") or []
        if isinstance(d, dict)
    ]
    code, message = str(inner.get("code")), str(inner.get("message"))
    if service == "modelmanagement":
        shaped: JSON = model_error_body(response.status, code, message, details)
    elif service == "pipelines":
        shaped = {"Error": {"Code": code, "Message": message, "Details": details}}
    else:
        return response
    return ApiResponse(response.status, shaped, response.headers)


@dataclass
class LroConfig:
    polls_in_progress: int = 2
    outcome: str = "Succeeded"  # Succeeded | Failed | Canceled
    retry_after: int = 1
    initial_status: int = 202  # 200 and 204 delete at once


@dataclass
class Operation:
    id: str
    workspace: WorkspaceData
    polls_left: int
    outcome: str
    retry_after: int
    started: float
    status: str = "InProgress"
    ended: float | None = None
    purge: bool = False  # forceToPurge=true at an api-version that has it


@dataclass
class ServiceLroConfig:
    """How a service DELETE answers (modelManagement.json 2019-09-30 `Services_Delete`: 200, 202 or 204).

    202 comes with an `Operation-Location` header naming the operation (the spec documents that header on the
    service's other 202 answers; azureml-core's Webservice.delete requires it on a delete's 202 and polls
    `.../operations/{id}`, azureml/core/webservice/webservice.py). The operation (`Operations_Get`, body
    `AsyncOperationStatus`) answers NotStarted, then Running, for `polls_in_progress` polls in all, then
    `outcome`; the service stays readable (GET 200) until the operation has succeeded."""

    initial_status: int = 202  # 200 deletes at once
    polls_in_progress: int = 2
    outcome: str = "Succeeded"  # Succeeded | Failed | Cancelled | TimedOut (AsyncOperationState)
    retry_after: int | None = 1  # None: no Retry-After header (the spec names none)
    # True: the delete is done at once and its operation record is gone before anyone polls it (the service
    # keeps operation records for a limited time; the contract does not say how long): Operations_Get is 404
    forget_operation: bool = False


SERVICE_OPERATION_OUTCOMES = ("Succeeded", "Failed", "Cancelled", "TimedOut")


@dataclass
class ServiceOperation:
    id: str
    workspace: WorkspaceData
    service_id: str
    polls_left: int
    outcome: str
    retry_after: int | None
    created: float
    state: str = "NotStarted"
    polls: int = 0
    ended: float | None = None


@dataclass(frozen=True)
class PagingStyle:
    token_params: tuple[str, ...]  # accepted names; the first one goes into nextLink
    size_params: tuple[str, ...]
    envelope: str  # "arm": {value, nextLink?}; "continuation": {value, continuationToken, nextLink}


ARM_PAGING = PagingStyle(("$skipToken", "$skip"), (), "arm")
HISTORY_PAGING = PagingStyle(("$continuationtoken",), ("$top",), "continuation")
ARTIFACT_PAGING = PagingStyle(("continuationToken",), (), "continuation")
DATASTORE_PAGING = PagingStyle(("continuationToken",), ("count",), "continuation")
MMS_PAGING = PagingStyle(("$skipToken",), ("count",), "arm")
# A model used by an image or an image used by a service: azureml-core (azureml/core/model.py Model.delete,
# azureml/core/image/image.py Image.delete) reads 412 with "DeletionRequired": the simulator answers just that.
IN_USE_STATUS = 412

_WS = (
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"
)
_SUB = r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.MachineLearningServices"

MMS_KINDS = {"models": "Model", "assets": "Asset", "images": "Image", "services": "Service"}
PIPELINE_KINDS = {
    "experiments": ("pipeline_experiments", "Experiment"),
    "graphs": ("pipeline_graphs", "Graph"),
    "modules": ("pipeline_modules", "Module"),
    "templates": ("pipeline_templates", "Template"),
    "datasources": ("pipeline_datasources", "DataSource"),
}
SECRET_FIELDS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("azureStorageSection",), ("credential", "accountKey", "sasToken")),
    (("azureStorageSection", "clientCredentials"), ("clientSecret", "certificate")),
    (("azureDataLakeSection",), ("clientSecret", "certificate")),
    (("azureSqlDatabaseSection",), ("clientSecret", "certificate")),
    (("azurePostgreSqlSection",), ("userPassword",)),
)


@dataclass
class Route:
    service: str
    pattern: re.Pattern[str]
    methods: dict[str, Callable[..., ApiResponse]]


class Api:
    """Answers the simulated endpoints from the simulator's state (called with the simulator's lock held)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.operations: dict[str, Operation] = {}
        self._op_counter = 0
        self.service_operations: dict[str, ServiceOperation] = {}

        def route(service: str, pattern: str, **methods: Callable[..., ApiResponse]) -> Route:
            return Route(service, re.compile("^" + pattern + "/?$", re.IGNORECASE), methods)

        history, artifact = "/history/v1\\.0" + _WS, "/artifact/v1\\.0" + _WS
        notification, datastore = "/notification/v1\\.0" + _WS, "/datastore/v1\\.0" + _WS
        mms, pipelines = MMS_PREFIX + _WS, "/api/v1\\.0" + _WS
        self.routes = [
            route("arm", _SUB + "/workspaces", GET=self.list_subscription_workspaces),
            route(
                "arm",
                r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
                r"/providers/Microsoft\.MachineLearningServices/workspaces",
                GET=self.list_workspaces,
            ),
            route("arm", _WS, GET=self.get_workspace, DELETE=self.delete_workspace),
            route("arm", _WS + "/computes", GET=self.list_computes),
            route("arm", _WS + "/computes/(?P<name>[^/]+)", GET=self.get_compute),
            route(
                "arm",
                _SUB + "/locations/(?P<loc>[^/]+)/workspaceOperationsStatus/(?P<op>[^/]+)",
                GET=self.operation_status,
            ),
            route(
                "arm",
                _SUB + "/locations/(?P<loc>[^/]+)/workspaceOperationsResults/(?P<op>[^/]+)",
                GET=self.operation_result,
            ),
            route("history", history + "/experiments", GET=self.list_experiments),
            route("history", history + "/experiments/(?P<exp>[^/]+)", GET=self.get_experiment),
            route("history", history + "/experimentids/(?P<id>[^/]+)", GET=self.get_experiment_by_id),
            route("history", history + "/experiments/(?P<exp>[^/]+)/runs", GET=self.list_runs),
            route("history", history + "/experiments/(?P<exp>[^/]+)/runs/(?P<run>[^/]+)", GET=self.get_run),
            route("history", history + "/experiments/(?P<exp>[^/]+)/metrics", GET=self.list_metrics),
            route(
                "history",
                history + "/experiments/(?P<exp>[^/]+)/metrics/(?P<metric>[^/]+)",
                GET=self.get_metric,
            ),
            route(
                "artifact",
                artifact + "/artifacts/origins/(?P<origin>[^/]+)/containers/(?P<container>[^/]+)",
                GET=self.list_artifacts,
            ),
            route("notification", notification + "/tasks", GET=self.list_tasks),
            route("notification", notification + "/tasks/(?P<id>[^/]+)", GET=self.get_task),
            route("datastore", datastore + "/datastores", GET=self.list_datastores),
            route("datastore", datastore + "/datastores/(?P<name>[^/]+)", GET=self.get_datastore),
            route("modelmanagement", mms + "/(?P<kind>models|assets|images|services)", GET=self.list_mms),
            route("modelmanagement", mms + "/operations/(?P<op>[^/]+)", GET=self.get_mms_operation),
            route(
                "modelmanagement",
                mms + "/(?P<kind>models|assets|images|services)/(?P<id>[^/]+)",
                GET=self.get_mms,
                DELETE=self.delete_mms,
            ),
            route(
                "pipelines",
                pipelines + "/(?P<kind>Experiments|Graphs|Modules|Templates|DataSources)/(?P<id>[^/]+)",
                GET=self.get_pipeline_object,
            ),
            route("discovery", "/discovery", GET=self.discovery),
        ]

    # -- dispatch -----------------------------------------------------------------------------------------
    def route_for(self, host: str, path: str) -> tuple[Route, re.Match[str]] | None:
        """The route that serves `path` (no query) on `host`, and its match."""
        parsed = parse_host(host)
        if parsed is None:
            return None
        domain = parsed[0]
        allowed = {"arm"} if domain == "arm" else REGIONAL_DOMAINS[domain]
        for route in self.routes:
            if route.service not in allowed:
                continue
            if route.service == "modelmanagement" and not mms_path_served(domain, path):
                continue
            match = route.pattern.match(path)
            if match is not None:
                return route, match
        return None

    def shape(self, host: str, path: str, answer: ApiResponse) -> ApiResponse:
        """An error answered before routing (401, 429, an injected fault) in the shape of the service at path."""
        found = self.route_for(host, path.split("?", 1)[0])
        return shape_error(found[0].service if found else None, answer)

    def handle(self, req: ApiRequest) -> ApiResponse:
        parsed = parse_host(req.host)
        if parsed is None:
            return error(404, "HostNotFound", f"The host '{req.host}' is not simulated here.")
        req.region = parsed[1]
        found = self.route_for(req.host, req.path.split("?", 1)[0])
        if found is not None:
            route, match = found
            handler = route.methods.get(req.method)
            if handler is None:
                answer = error(
                    405, "MethodNotAllowed", f"The method {req.method} is not allowed on this resource."
                )
            else:
                answer = self._dispatch(req, route, handler, match)
            return shape_error(route.service, answer)
        return error(404, "RouteNotFound", f"No resource at {req.method} /{req.host}{req.path}.")

    def _dispatch(
        self, req: ApiRequest, route: Route, handler: Callable[..., ApiResponse], match: re.Match[str]
    ) -> ApiResponse:
        # Only ARM requires an api-version: modelManagement.json 2019-09-30 defines none, and azureml-core sends
        # none to models, assets, services and operations (azureml/_restclient/operations/ml_models_operations.py
        # and the like; images send 2018-11-19): model management ignores it.
        if route.service == "arm":
            problem = self._check_api_version(req)
            if problem is not None:
                return problem
        args = {k: unquote(v) for k, v in match.groupdict().items()}
        return handler(req, **args)

    @staticmethod
    def _check_api_version(req: ApiRequest) -> ApiResponse | None:
        version = req.q("api-version")
        if not version:
            return error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not _API_VERSION.match(version):
            return error(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid.")
        return None

    # -- paging -------------------------------------------------------------------------------------------
    @staticmethod
    def _token(list_key: str, seq: int) -> str:
        tag = hashlib.sha256(list_key.encode()).hexdigest()[:10]
        return base64.urlsafe_b64encode(f"{tag}:{seq}".encode()).decode().rstrip("=")

    @staticmethod
    def _untoken(list_key: str, token: str) -> int | None:
        try:
            tag, _, seq = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().partition(":")
            if tag != hashlib.sha256(list_key.encode()).hexdigest()[:10]:
                return None
            return int(seq)
        except ValueError:
            return None

    def _page(
        self,
        req: ApiRequest,
        style: PagingStyle,
        list_key: str,
        fetch: Callable[[int, int], tuple[list[Record], bool]] | Collection,
        render: Callable[[Record], JSON] = Record.body,
    ) -> ApiResponse:
        token = req.q(*style.token_params)
        after = 0
        if token:
            decoded = self._untoken(list_key, token)
            if decoded is None:
                return error(
                    400, "InvalidContinuationToken", "The continuation token is not valid for this list."
                )
            after = decoded
        size = self.sim.page_size
        raw_size = req.q(*style.size_params)
        if raw_size:
            try:
                size = int(raw_size)
            except ValueError:
                size = 0
            if size < 1:
                return error(400, "InvalidQueryParameterValue", f"The page size '{raw_size}' is not valid.")
            size = min(size, 5000)
        items, more = fetch.page(after, size) if isinstance(fetch, Collection) else fetch(after, size)
        next_token = self._token(list_key, items[-1].seq) if more and items else None
        next_link = self._next_link(req, style, next_token) if next_token else None
        value = [render(record) for record in items]
        if style.envelope == "arm":
            body: JSON = {"value": value}
            if next_link:
                body["nextLink"] = next_link
            return ApiResponse(200, body)
        return ApiResponse(200, {"value": value, "continuationToken": next_token, "nextLink": next_link})

    def _next_link(self, req: ApiRequest, style: PagingStyle, token: str) -> str:
        drop = {p.lower() for p in style.token_params}
        params = [(k, v) for k, v in req.query.items() if k.lower() not in drop]
        params.append((style.token_params[0], token))
        query = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in params)
        return f"{self.sim.link_base('nextLink')}/{req.host}{req.path.split('?', 1)[0]}?{query}"

    @staticmethod
    def _slice(records: list[Record]) -> Callable[[int, int], tuple[list[Record], bool]]:
        ordered = sorted(records, key=lambda r: r.seq)

        def fetch(after: int, size: int) -> tuple[list[Record], bool]:
            rest = [r for r in ordered if r.seq > after]
            return rest[:size], len(rest) > size

        return fetch

    # -- ARM ----------------------------------------------------------------------------------------------
    def render_workspace(self, ws: WorkspaceData, links: bool = True) -> JSON:
        body = copy.deepcopy(ws.arm.body())
        base = self.sim.link_base("discovery") if links else self.sim.base_url
        body["properties"]["discoveryUrl"] = f"{base}/{ws.location}.api.azureml.ms/discovery"
        if ws.deleting:
            body["properties"]["provisioningState"] = "Deleting"
        return body

    def _arm_missing(self, sub: str, rg: str | None, what: str) -> ApiResponse:
        tenant = self.sim.tenant
        if not tenant.has_subscription(sub):
            return error(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        if rg is not None and not tenant.has_resource_group(sub, rg):
            return error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        return error(
            404,
            "ResourceNotFound",
            f"The Resource '{what}' under resource group '{rg}' was not found. "
            "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        )

    def _arm_workspace(self, sub: str, rg: str, ws: str) -> WorkspaceData | ApiResponse:
        found = self.sim.tenant.find_workspace(sub, rg, ws)
        if found is None:
            return self._arm_missing(sub, rg, f"Microsoft.MachineLearningServices/workspaces/{ws}")
        return found

    def list_subscription_workspaces(self, req: ApiRequest, sub: str) -> ApiResponse:
        tenant = self.sim.tenant
        if not tenant.has_subscription(sub):
            return self._arm_missing(sub, None, "")
        records = [w.arm for w in tenant.workspaces.values() if w.subscription_id.lower() == sub.lower()]
        by_arm = {id(w.arm): w for w in tenant.workspaces.values()}
        return self._page(
            req,
            ARM_PAGING,
            f"arm-ws|{sub.lower()}",
            self._slice(records),
            lambda r: self.render_workspace(by_arm[id(r)]),
        )

    def list_workspaces(self, req: ApiRequest, sub: str, rg: str) -> ApiResponse:
        tenant = self.sim.tenant
        if not tenant.has_subscription(sub) or not tenant.has_resource_group(sub, rg):
            return self._arm_missing(sub, rg, "")
        chosen = [w for w in tenant.workspaces.values() if w.key[:2] == (sub.lower(), rg.lower())]
        by_arm = {id(w.arm): w for w in chosen}
        return self._page(
            req,
            ARM_PAGING,
            f"arm-ws|{sub.lower()}|{rg.lower()}",
            self._slice([w.arm for w in chosen]),
            lambda r: self.render_workspace(by_arm[id(r)]),
        )

    def get_workspace(self, req: ApiRequest, sub: str, rg: str, ws: str) -> ApiResponse:
        found = self._arm_workspace(sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        return ApiResponse(200, self.render_workspace(found))

    def list_computes(self, req: ApiRequest, sub: str, rg: str, ws: str) -> ApiResponse:
        found = self._arm_workspace(sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        return self._page(req, ARM_PAGING, f"arm-computes|{found.arm_id.lower()}", found.computes)

    def get_compute(self, req: ApiRequest, sub: str, rg: str, ws: str, name: str) -> ApiResponse:
        found = self._arm_workspace(sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        record = found.computes.get(name)
        if record is None:
            return self._arm_missing(
                sub, rg, f"Microsoft.MachineLearningServices/workspaces/{ws}/computes/{name}"
            )
        return ApiResponse(200, record.body())

    def delete_workspace(self, req: ApiRequest, sub: str, rg: str, ws: str) -> ApiResponse:
        """D1. Soft delete by default: the workspace answers 404 but its data is kept (Tenant.deleted), recoverable
        for 14 days. `forceToPurge=true` purges, but only at an api-version that has the parameter: older ones
        (the seed's 2019-11-01) do not know it and soft-delete anyway, silently (see FORCE_TO_PURGE_SINCE)."""
        tenant = self.sim.tenant
        purge = purge_requested(req)
        found = tenant.find_workspace(sub, rg, ws)
        if found is None:
            if not tenant.has_subscription(sub) or not tenant.has_resource_group(sub, rg):
                return self._arm_missing(sub, rg, "")
            retained = tenant.soft_deleted(sub, rg, ws)
            if retained is None or retained.workspace is None or not purge:
                return ApiResponse(204)  # ARM: deleting what is not there succeeds with No Content
            found = retained.workspace  # permanently delete a soft-deleted workspace
        if found.deleting and found.deleting in self.operations:
            running = self.operations[found.deleting]
            running.purge = running.purge or purge
            return self._accepted(running)
        config: LroConfig = self.sim.lro
        if config.initial_status in (200, 204):
            self._finish_delete(found, purge)
            return ApiResponse(config.initial_status)
        self._op_counter += 1
        op_id = f"{found.name}-delete-{self._op_counter:04d}"
        op = Operation(
            op_id,
            found,
            config.polls_in_progress,
            config.outcome,
            config.retry_after,
            time.time(),
            purge=purge,
        )
        self.operations[op_id] = op
        found.deleting = op_id
        return self._accepted(op)

    def _finish_delete(self, ws: WorkspaceData, purge: bool) -> None:
        tenant = self.sim.tenant
        live = tenant.workspaces.get(ws.key) is ws
        retained = tenant.deleted.get(ws.key)
        soft = retained is not None and retained.workspace is ws
        if purge and (live or soft):
            tenant.purge_workspace(ws)
        elif live:
            tenant.soft_delete_workspace(ws)

    def _op_url(self, op: Operation, kind: str, links: bool = True) -> str:
        base = (
            self.sim.link_base("asyncOperation" if kind == "Status" else "location")
            if links
            else self.sim.base_url
        )
        ws = op.workspace
        return (
            f"{base}/{ARM_HOST}/subscriptions/{ws.subscription_id}/providers/Microsoft.MachineLearningServices"
            f"/locations/{ws.location}/workspaceOperations{kind}/{op.id}?api-version={ARM_API_VERSION}"
        )

    def _accepted(self, op: Operation) -> ApiResponse:
        return ApiResponse(
            202,
            None,
            {
                "Azure-AsyncOperation": self._op_url(op, "Status"),
                "Location": self._op_url(op, "Results"),
                "Retry-After": str(op.retry_after),
            },
        )

    def _advance(self, op: Operation) -> None:
        if op.status != "InProgress":
            return
        if op.polls_left > 0:
            op.polls_left -= 1
            return
        op.status, op.ended = op.outcome, time.time()
        ws = op.workspace
        ws.deleting = None
        if op.outcome == "Succeeded":
            self._finish_delete(ws, op.purge)

    @staticmethod
    def _op_error(op: Operation) -> JSON:
        if op.status == "Canceled":
            return {
                "code": "OperationCanceled",
                "message": f"The deletion of workspace '{op.workspace.name}' was canceled.",
            }
        return {
            "code": "WorkspaceDeletionFailed",
            "message": f"The deletion of workspace '{op.workspace.name}' failed: "
            "a dependent resource could not be deleted.",
        }

    def _find_op(self, sub: str, op_id: str) -> Operation | ApiResponse:
        op = self.operations.get(op_id)
        if op is None or op.workspace.subscription_id.lower() != sub.lower():
            return error(404, "OperationNotFound", f"The operation '{op_id}' was not found.")
        return op

    def operation_status(self, req: ApiRequest, sub: str, loc: str, op: str) -> ApiResponse:
        found = self._find_op(sub, op)
        if isinstance(found, ApiResponse):
            return found
        self._advance(found)
        body: JSON = {
            "id": self._op_url(found, "Status", links=False).split(ARM_HOST, 1)[1].split("?", 1)[0],
            "name": found.id,
            "status": found.status,
            "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(found.started)),
        }
        if found.ended is not None:
            body["endTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(found.ended))
        if found.status in ("Failed", "Canceled"):
            body["error"] = self._op_error(found)
        headers = {"Retry-After": str(found.retry_after)} if found.status == "InProgress" else {}
        return ApiResponse(200, body, headers)

    def operation_result(self, req: ApiRequest, sub: str, loc: str, op: str) -> ApiResponse:
        found = self._find_op(sub, op)
        if isinstance(found, ApiResponse):
            return found
        self._advance(found)
        if found.status == "InProgress":
            return ApiResponse(
                202, None, {"Location": self._op_url(found, "Results"), "Retry-After": str(found.retry_after)}
            )
        if found.status == "Succeeded":
            return ApiResponse(200)
        return ApiResponse(409 if found.status == "Canceled" else 500, {"error": self._op_error(found)})

    # -- data plane: common --------------------------------------------------------------------------------
    def _workspace(self, req: ApiRequest, sub: str, rg: str, ws: str) -> WorkspaceData | ApiResponse:
        found = self.sim.tenant.find_workspace(sub, rg, ws)
        if found is None:
            return error(
                404, "WorkspaceNotFound", f"Workspace '{ws}' in resource group '{rg}' was not found."
            )
        if req.region and found.location.lower() != req.region:
            return error(
                404,
                "WorkspaceNotFound",
                f"Workspace '{ws}' is not in region '{req.region}' (it is in '{found.location}').",
            )
        return found

    # -- run history ---------------------------------------------------------------------------------------
    def list_experiments(self, req: ApiRequest, sub: str, rg: str, ws: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        return self._page(req, HISTORY_PAGING, f"experiments|{found.arm_id.lower()}", found.experiments)

    def get_experiment(self, req: ApiRequest, sub: str, rg: str, ws: str, exp: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        record = found.experiment_names.get(exp)
        if record is None:
            return error(404, "ExperimentNotFound", f"Experiment '{exp}' was not found.")
        return ApiResponse(200, record.body())

    def get_experiment_by_id(self, req: ApiRequest, sub: str, rg: str, ws: str, id: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        record = found.experiments.get(id)
        if record is None:
            return error(404, "ExperimentNotFound", f"Experiment with id '{id}' was not found.")
        return ApiResponse(200, record.body())

    def list_runs(self, req: ApiRequest, sub: str, rg: str, ws: str, exp: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        runs = found.runs.get(exp)
        if runs is None:
            return error(404, "ExperimentNotFound", f"Experiment '{exp}' was not found.")
        return self._page(req, HISTORY_PAGING, f"runs|{found.arm_id.lower()}|{exp}", runs)

    def get_run(self, req: ApiRequest, sub: str, rg: str, ws: str, exp: str, run: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        if exp not in found.runs:
            return error(404, "ExperimentNotFound", f"Experiment '{exp}' was not found.")
        record = found.run_index.get(run)
        if record is None or record.parent != exp:
            return error(404, "RunNotFound", f"Run '{run}' was not found in experiment '{exp}'.")
        return ApiResponse(200, record.body())

    def list_metrics(self, req: ApiRequest, sub: str, rg: str, ws: str, exp: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        metrics = found.metrics.get(exp)
        if metrics is None:
            return error(404, "ExperimentNotFound", f"Experiment '{exp}' was not found.")
        return self._page(req, HISTORY_PAGING, f"metrics|{found.arm_id.lower()}|{exp}", metrics)

    def get_metric(self, req: ApiRequest, sub: str, rg: str, ws: str, exp: str, metric: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        record = found.metric_index.get(metric)
        if record is None or record.parent != exp:
            return error(404, "MetricNotFound", f"Metric '{metric}' was not found in experiment '{exp}'.")
        return ApiResponse(200, record.body())

    # -- artifacts, notifications, datastores --------------------------------------------------------------
    def list_artifacts(
        self, req: ApiRequest, sub: str, rg: str, ws: str, origin: str, container: str
    ) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        # A run's artifacts live in the container named by its `dataContainerId`, `dcid.<runId>`; the bare run
        # id names no container. artifact.json (2019-09-30 `Artifacts_ListInContainer`) documents only a 200
        # `PaginatedArtifactList` and a default error, nothing about a container that holds nothing; the
        # simulator answers the harsher way: an empty list, which a client cannot tell from a run without
        # artifacts (a 404 would at least be noticed).
        run_id = container[5:] if container.startswith("dcid.") else None
        record = found.run_index.get(run_id) if run_id else None
        artifacts = found.artifacts.get(run_id) if run_id else None
        if (
            origin.lower() != "experimentrun"
            or artifacts is None
            or (record is not None and record.body().get("dataContainerId", container) != container)
        ):
            return ApiResponse(200, {"value": [], "continuationToken": None, "nextLink": None})
        return self._page(req, ARTIFACT_PAGING, f"artifacts|{found.arm_id.lower()}|{run_id}", artifacts)

    @staticmethod
    def _task_summary(record: Record) -> JSON:
        body = {k: v for k, v in record.body().items() if k != "notifications"}
        body["notificationCount"] = len(record.body()["notifications"])
        return body

    def list_tasks(self, req: ApiRequest, sub: str, rg: str, ws: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        return self._page(
            req, HISTORY_PAGING, f"tasks|{found.arm_id.lower()}", found.tasks, self._task_summary
        )

    def get_task(self, req: ApiRequest, sub: str, rg: str, ws: str, id: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        record = found.tasks.get(id)
        if record is None:
            return error(404, "TaskNotFound", f"Notification task '{id}' was not found.")
        return ApiResponse(200, record.body())

    @staticmethod
    def render_datastore(record: Record, include_secret: bool) -> JSON:
        body = record.body()
        if include_secret:
            return body
        body = copy.deepcopy(body)
        for path, names in SECRET_FIELDS:
            section: Any = body
            for part in path:
                section = section.get(part) if isinstance(section, dict) else None
            if isinstance(section, dict):
                for name in names:
                    if name in section:
                        section[name] = None
        return body

    @staticmethod
    def _include_secret(req: ApiRequest) -> bool:
        value = req.q("includeSecret")
        return value is None or value.strip().lower() not in ("false", "0", "no")

    def list_datastores(self, req: ApiRequest, sub: str, rg: str, ws: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        include = self._include_secret(req)
        return self._page(
            req,
            DATASTORE_PAGING,
            f"datastores|{found.arm_id.lower()}",
            found.datastores,
            lambda r: self.render_datastore(r, include),
        )

    def get_datastore(self, req: ApiRequest, sub: str, rg: str, ws: str, name: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        record = found.datastores.get(name)
        if record is None:
            return error(404, "DatastoreNotFound", f"Datastore '{name}' was not found.")
        return ApiResponse(200, self.render_datastore(record, self._include_secret(req)))

    # -- model management -----------------------------------------------------------------------------------
    def list_mms(self, req: ApiRequest, sub: str, rg: str, ws: str, kind: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        kind = kind.lower()
        return self._page(req, MMS_PAGING, f"{kind}|{found.arm_id.lower()}", found.collection(kind))

    def get_mms(self, req: ApiRequest, sub: str, rg: str, ws: str, kind: str, id: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        kind = kind.lower()
        record = found.collection(kind).get(id)
        if record is None:
            return error(404, f"{MMS_KINDS[kind]}NotFound", f"{MMS_KINDS[kind]} '{id}' was not found.")
        return ApiResponse(200, record.body())

    @staticmethod
    def dependents(ws: WorkspaceData, kind: str, id: str) -> list[str]:
        """Ids of the images using a model, or of the services running an image."""
        if kind == "models":
            return [r.id for r in ws.images if id in r.body().get("modelIds", [])]
        if kind == "images":
            return [r.id for r in ws.services if r.body().get("imageId") == id]
        return []

    def delete_mms(self, req: ApiRequest, sub: str, rg: str, ws: str, kind: str, id: str) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        kind = kind.lower()
        collection = found.collection(kind)
        if collection.get(id) is None:
            return ApiResponse(204)
        if kind == "services":
            running = self._running_service_delete(found, id)
            if running is not None:  # a DELETE while the first one's operation runs: the same operation
                return self._service_accepted(req, running)
            config: ServiceLroConfig = self.sim.service_lro
            if config.initial_status == 202:
                self._op_counter += 1
                op = ServiceOperation(
                    f"{uuid.UUID(int=self._op_counter + (1 << 64))}",
                    found,
                    id,
                    config.polls_in_progress,
                    config.outcome,
                    config.retry_after,
                    time.time(),
                )
                if config.forget_operation:
                    collection.remove(id)  # done at once; the operation answers 404 (never stored)
                else:
                    self.service_operations[op.id] = op
                return self._service_accepted(req, op)
        users = self.dependents(found, kind, id)
        if users:
            what = "image(s)" if kind == "models" else "service(s)"
            return error(
                IN_USE_STATUS,
                "DeletionRequired",
                f"{MMS_KINDS[kind]} '{id}' cannot be deleted: it is used by {what} {', '.join(users)}.",
                details=[
                    {
                        "code": "DependentResourceExists",
                        "target": u,
                        "message": f"{MMS_KINDS[kind]} '{id}' is used by '{u}'.",
                    }
                    for u in users
                ],
            )
        collection.remove(id)
        return ApiResponse(200)

    def _running_service_delete(self, ws: WorkspaceData, service_id: str) -> ServiceOperation | None:
        for op in self.service_operations.values():
            if op.workspace is ws and op.service_id == service_id and op.state in ("NotStarted", "Running"):
                return op
        return None

    def _service_accepted(self, req: ApiRequest, op: ServiceOperation) -> ApiResponse:
        ws = op.workspace
        location = (
            f"{self.sim.link_base('operationLocation')}/{req.host}{mms_prefix_of(req.path)}"
            f"/subscriptions/{ws.subscription_id}/resourceGroups/"
            f"{ws.resource_group}/providers/Microsoft.MachineLearningServices/workspaces/{ws.name}"
            f"/operations/{op.id}"
        )
        headers = {"Operation-Location": location}
        if op.retry_after is not None:
            headers["Retry-After"] = str(op.retry_after)
        return ApiResponse(202, None, headers)

    def _advance_service_delete(self, op: ServiceOperation) -> None:
        if op.state not in ("NotStarted", "Running"):
            return
        op.polls += 1
        if op.polls_left > 0:
            op.polls_left -= 1
            op.state = "NotStarted" if op.polls == 1 else "Running"
            return
        op.state, op.ended = op.outcome, time.time()
        if op.outcome == "Succeeded":
            services = op.workspace.collection("services")
            if services.get(op.service_id) is not None:
                services.remove(op.service_id)

    def get_mms_operation(self, req: ApiRequest, sub: str, rg: str, ws: str, op: str) -> ApiResponse:
        """`Operations_Get` (modelManagement.json 2019-09-30): 200 with an `AsyncOperationStatus`
        {id, operationType, state, createdTime, endTime, error (ModelErrorResponse), resourceLocation}."""
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        operation = self.service_operations.get(op)
        if operation is None or operation.workspace is not found:
            return error(404, "OperationNotFound", f"Operation '{op}' was not found.")
        self._advance_service_delete(operation)
        stamp = "%Y-%m-%dT%H:%M:%S.000Z"
        body: JSON = {
            "id": operation.id,
            "operationType": "Delete",
            "state": operation.state,
            "createdTime": time.strftime(stamp, time.gmtime(operation.created)),
            "resourceLocation": f"/api{found.arm_id}/services/{operation.service_id}",
        }
        if operation.ended is not None:
            body["endTime"] = time.strftime(stamp, time.gmtime(operation.ended))
        if operation.state in ("Failed", "Cancelled", "TimedOut"):
            body["error"] = model_error_body(
                500 if operation.state == "Failed" else 409,
                f"ServiceDeletion{operation.state}",
                f"The deletion of service '{operation.service_id}' ended {operation.state}.",
            )
        headers = {}
        if operation.state in ("NotStarted", "Running") and operation.retry_after is not None:
            headers["Retry-After"] = str(operation.retry_after)
        return ApiResponse(200, body, headers)

    # -- pipelines -------------------------------------------------------------------------------------------
    def get_pipeline_object(
        self, req: ApiRequest, sub: str, rg: str, ws: str, kind: str, id: str
    ) -> ApiResponse:
        found = self._workspace(req, sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        family, label = PIPELINE_KINDS[kind.lower()]
        record = found.pipeline[family].get(id)
        if record is None:
            return error(404, f"{label}NotFound", f"Pipeline {label.lower()} '{id}' was not found.")
        return ApiResponse(200, record.body())

    # -- discovery -----------------------------------------------------------------------------------------
    def discovery(self, req: ApiRequest) -> ApiResponse:
        region = req.region or ""
        base = f"{self.sim.link_base('discovery')}/{region}"
        api = f"{base}.api.azureml.ms"
        return ApiResponse(
            200,
            {
                "api": api,
                "catalog": f"{base}.api.azureml.ms",
                "experimentation": f"{base}.experiments.azureml.net",
                "gallery": f"{base}.api.azureml.ms",
                "history": api,
                "hyperdrive": f"{base}.api.azureml.ms",
                "labeling": f"{base}.api.azureml.ms",
                "modelmanagement": api,
                "pipelines": api,
                "studiocoreservices": api,
            },
        )
