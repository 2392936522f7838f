"""The simulated v2 (ARM) endpoints under a workspace, at the contract of devtools/amlsim/contract_v2.py.

`V2Api.routes()` goes in front of the v1 routes (server.py): besides the v2 families it takes over the workspace
and compute paths, answering them as v1 does at an older api-version and, from `V2_SINCE`, with a workspace's
`kind` and a compute instance's assigned user. Everything is on the ARM host, so v2 calls share the ARM read and
delete throttling buckets with the v1 ARM calls (server.py: buckets per principal, subscription and host).

- Lists: `{value, nextLink}`, nextLink carrying `$skip` (the 2026-07-01 name; `$skipToken` is accepted too) and
  absent at the end; page size from the family's `count` or `$top` parameter, else the simulator's page size;
  `listViewType` filters archived assets and jobs (ActiveOnly by default) and disabled schedules (EnabledOnly);
  `jobType` filters jobs. A pipeline's child jobs are never listed (run history lists them).
- Deletes: assets, versions, connections and datastores at once (200; 204 when not there); jobs, endpoints,
  deployments, schedules and computes as long-running operations (202 + Location + Retry-After; a compute also
  Azure-AsyncOperation), polled until the object is gone, then 404. In use: 409 Conflict with the users as details.
- Secrets: `listsecrets` / `listSecrets` answer 403 (the product's role never grants them; nothing is served).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devtools.amlsim import v2
from devtools.amlsim.contract_v2 import V2_API_VERSION, V2_CONTRACT, V2_SINCE
from devtools.amlsim.routes import (
    _SUB,
    _WS,
    ARM_HOST,
    Api,
    ApiRequest,
    ApiResponse,
    LroConfig,
    PagingStyle,
    Route,
    error,
)
from devtools.amlsim.state import JSON, Record, WorkspaceData

ASSET_SEGMENTS = {"models": "model", "data": "data", "environments": "environment", "components": "component"}
ASSET_SEGMENTS["codes"] = "code"
ENDPOINT_SEGMENTS = {"onlineEndpoints": "online", "batchEndpoints": "batch"}
LRO_FAMILIES = frozenset(
    {"jobs", "child_jobs", "online_endpoints", "online_deployments", "batch_endpoints", "batch_deployments"}
) | {"schedules", "computes"}


@dataclass
class V2Operation:
    id: str
    ws: WorkspaceData
    family: str
    path: str  # the record's id (its path under the workspace)
    polls_left: int
    outcome: str
    retry_after: int
    status: str = "InProgress"


def new_api(req: ApiRequest) -> bool:
    return (req.q("api-version") or "")[:10] >= V2_SINCE


class V2Api:
    """Answers the v2 routes from the simulator's state (called with the simulator's lock held)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.lro = LroConfig()
        self.operations: dict[str, V2Operation] = {}
        self._counter = 0

    def routes(self) -> list[Route]:
        def route(pattern: str, **methods: Callable[..., ApiResponse]) -> Route:
            return Route("arm", re.compile("^" + pattern + "/?$", re.IGNORECASE), methods)

        assets, endpoints = "|".join(ASSET_SEGMENTS), "|".join(ENDPOINT_SEGMENTS)
        a, e = f"/(?P<segment>{assets})", f"/(?P<segment>{endpoints})"
        ops = _SUB + "/locations/(?P<loc>[^/]+)/"
        return [
            route(_SUB + "/workspaces", GET=self.workspaces(self.api.list_subscription_workspaces)),
            route(
                r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
                r"/providers/Microsoft\.MachineLearningServices/workspaces",
                GET=self.workspaces(self.api.list_workspaces),
            ),
            route(_WS, GET=self.workspaces(self.api.get_workspace), DELETE=self.api.delete_workspace),
            route(_WS + "/computes", GET=self.list_computes),
            route(_WS + "/computes/(?P<name>[^/]+)", GET=self.get_compute, DELETE=self.delete_compute),
            route(_WS + "/jobs", GET=self.gated(self.list_jobs)),
            route(
                _WS + "/jobs/(?P<name>[^/]+)",
                GET=self.gated(self.get_job),
                DELETE=self.gated(self.delete_job),
            ),
            route(_WS + a, GET=self.gated(self.list_top)),
            route(
                _WS + a + "/(?P<name>[^/]+)", GET=self.gated(self.get_one), DELETE=self.gated(self.delete_one)
            ),
            route(_WS + a + "/(?P<parent>[^/]+)/versions", GET=self.gated(self.list_nested)),
            route(_WS + a + "/(?P<parent>[^/]+)/versions/(?P<name>[^/]+)", **self.item_methods()),
            route(_WS + e, GET=self.gated(self.list_top)),
            route(
                _WS + e + "/(?P<name>[^/]+)", GET=self.gated(self.get_one), DELETE=self.gated(self.delete_one)
            ),
            route(_WS + e + "/(?P<parent>[^/]+)/deployments", GET=self.gated(self.list_nested)),
            route(_WS + e + "/(?P<parent>[^/]+)/deployments/(?P<name>[^/]+)", **self.item_methods()),
            route(_WS + "/(?P<segment>schedules|connections|datastores)", GET=self.gated(self.list_top)),
            route(
                _WS + "/(?P<segment>schedules|connections|datastores)/(?P<name>[^/]+)", **self.item_methods()
            ),
            route(
                _WS + "/(?P<segment>connections|datastores)/(?P<name>[^/]+)/list[sS]ecrets", POST=self.secrets
            ),
            route(ops + "mfeOperationResults/(?P<op>[^/]+)", GET=self.operation_result),
            route(ops + "computeOperationsStatus/(?P<op>[^/]+)", GET=self.operation_status),
        ]

    def item_methods(self) -> dict[str, Callable[..., ApiResponse]]:
        return {"GET": self.gated(self.get_one), "DELETE": self.gated(self.delete_one)}

    @property
    def tenant(self) -> Any:
        return self.api.sim.tenant

    # -- the api-version, workspaces and computes ----------------------------------------------------------------
    @staticmethod
    def gated(handler: Callable[..., ApiResponse]) -> Callable[..., ApiResponse]:
        """A v2 family exists from V2_SINCE on; ARM answers an older api-version as it does an unknown type."""

        def answer(req: ApiRequest, **args: str) -> ApiResponse:
            if not new_api(req):
                return error(
                    400,
                    "NoRegisteredProviderFound",
                    f"No registered resource provider found for API version '{req.q('api-version')}'. "
                    f"The supported api-versions include '{V2_SINCE}' to '{V2_API_VERSION}'.",
                )
            return handler(req, **args)

        return answer

    def workspaces(self, handler: Callable[..., ApiResponse]) -> Callable[..., ApiResponse]:
        """The v1 workspace answer, plus `kind` (Default | Hub | Project) and a project's hub from V2_SINCE on."""

        def answer(req: ApiRequest, **args: str) -> ApiResponse:
            response = handler(req, **args)
            if response.status != 200 or not new_api(req):
                return response
            items = response.body.get("value", [response.body])
            for item in items:
                parts = item["id"].split("/")
                ws = self.tenant.find_workspace(parts[2], parts[4], parts[8])
                extra = v2.describe_kind(ws)
                item["kind"] = extra.pop("kind")
                item["properties"].update(extra)
            return response

        return answer

    def list_computes(self, req: ApiRequest, sub: str, rg: str, ws: str) -> ApiResponse:
        found = self.api._arm_workspace(sub, rg, ws)
        if isinstance(found, ApiResponse) or not new_api(req):
            return found if isinstance(found, ApiResponse) else self.api.list_computes(req, sub, rg, ws)
        return self._list(req, found, "computes")

    def get_compute(self, req: ApiRequest, sub: str, rg: str, ws: str, name: str) -> ApiResponse:
        return (
            self.get_one(req, sub, rg, ws, "computes", name)
            if new_api(req)
            else self.api.get_compute(req, sub, rg, ws, name)
        )

    def delete_compute(self, req: ApiRequest, sub: str, rg: str, ws: str, name: str) -> ApiResponse:
        action = req.q("underlyingResourceAction")
        if action not in ("Delete", "Detach"):
            return error(
                400, "BadRequest", "The query parameter underlyingResourceAction (Delete|Detach) is required."
            )
        return self.delete_one(
            req, sub, rg, ws, "computes", name
        )  # Compute_Delete exists at every api-version

    # -- lists ------------------------------------------------------------------------------------------------------
    def list_jobs(self, req: ApiRequest, sub: str, rg: str, ws: str) -> ApiResponse:
        return self.list_top(req, sub, rg, ws, "jobs")

    def list_top(self, req: ApiRequest, sub: str, rg: str, ws: str, segment: str) -> ApiResponse:
        found = self.api._arm_workspace(sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        return self._list(req, found, self._family(segment, nested=False))

    def list_nested(
        self, req: ApiRequest, sub: str, rg: str, ws: str, segment: str, parent: str
    ) -> ApiResponse:
        found = self.api._arm_workspace(sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        parent_family = self._family(segment, nested=False)
        if self._record(found, parent_family, f"{segment}/{parent}") is None:
            return self._missing(sub, rg, found, f"{segment}/{parent}")
        return self._list(req, found, self._family(segment, nested=True), f"{segment}/{parent}")

    def _list(
        self, req: ApiRequest, ws: WorkspaceData, family: str, parent: str | None = None
    ) -> ApiResponse:
        paging = V2_CONTRACT[family].paging
        view = req.q("listViewType") or (paging.views[0] if paging.views else "")
        if paging.views and view not in paging.views:
            return error(400, "BadRequest", f"listViewType '{view}' is not one of {', '.join(paging.views)}.")
        job_type = (req.q("jobType") or "").lower() if family == "jobs" else ""
        chosen = [
            r
            for r in v2.records(ws, family)
            if (parent is None or r.parent == parent) and _visible(r.body(), view, job_type)
        ]
        key = f"v2|{family}|{ws.arm_id.lower()}|{parent}|{view}|{job_type}"
        style = PagingStyle(paging.token, paging.size, "arm")
        return self.api._page(req, style, key, Api._slice(chosen), lambda r: self._render(ws, family, r))

    # -- one object -------------------------------------------------------------------------------------------------
    def get_job(self, req: ApiRequest, sub: str, rg: str, ws: str, name: str) -> ApiResponse:
        return self.get_one(req, sub, rg, ws, "jobs", name)

    def get_one(
        self, req: ApiRequest, sub: str, rg: str, ws: str, segment: str, name: str, parent: str | None = None
    ) -> ApiResponse:
        found = self.api._arm_workspace(sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        path = self._path(segment, name, parent)
        family, record = self._find(found, segment, path, parent is not None)
        if record is None:
            return self._missing(sub, rg, found, path)
        return ApiResponse(200, self._render(found, family, record))

    def _render(self, ws: WorkspaceData, family: str, record: Record) -> JSON:
        body = v2.render(self.tenant, ws, family, record)
        if self._running(ws, record.id) and isinstance(
            (body.get("properties") or {}).get("provisioningState"), str
        ):
            body = copy.deepcopy(body)
            body["properties"]["provisioningState"] = "Deleting"
        return body

    # -- deletes ----------------------------------------------------------------------------------------------------
    def delete_job(self, req: ApiRequest, sub: str, rg: str, ws: str, name: str) -> ApiResponse:
        return self.delete_one(req, sub, rg, ws, "jobs", name)

    def delete_one(
        self, req: ApiRequest, sub: str, rg: str, ws: str, segment: str, name: str, parent: str | None = None
    ) -> ApiResponse:
        found = self.api._arm_workspace(sub, rg, ws)
        if isinstance(found, ApiResponse):
            return found
        path = self._path(segment, name, parent)
        family, record = self._find(found, segment, path, parent is not None)
        if record is None:
            return ApiResponse(204)  # "Resource does not exist" (openapi.json, every v2 Delete)
        users = self._users(found, family, record)
        if users:
            return _in_use(f"{found.arm_id}/{path}", users)
        if family not in LRO_FAMILIES:
            self._remove(found, family, record)
            return ApiResponse(200)
        return self._start(req, found, family, record)

    def _users(self, ws: WorkspaceData, family: str, record: Record) -> list[str]:
        """ARM ids of what still needs the object: an endpoint's deployments, a container's versions, the
        deployments using a model, environment or code version."""
        if family in v2.ENDPOINT_OF.values():
            nested = family.replace("endpoints", "deployments")
        elif family.endswith("_containers"):
            nested = family.replace("containers", "versions")
        elif family in ("model_versions", "environment_versions", "code_versions"):
            return [f"{ws.arm_id}/{r.id}" for r in v2.uses(ws, f"{ws.arm_id}/{record.id}")]
        else:
            return []
        return [f"{ws.arm_id}/{r.id}" for r in v2.children(ws, nested, record.id)]

    def _start(self, req: ApiRequest, ws: WorkspaceData, family: str, record: Record) -> ApiResponse:
        running = self._running(ws, record.id)
        if running is not None:  # a DELETE while the first one runs: the same operation
            return self._accepted(req, running)
        config = self.lro
        if config.initial_status in (200, 204):
            self._remove(ws, family, record)
            return ApiResponse(config.initial_status)
        self._counter += 1
        prefix = "compute" if family == "computes" else "mfe"
        op = V2Operation(
            f"{prefix}-{self._counter:05d}",
            ws,
            family,
            record.id,
            config.polls_in_progress,
            config.outcome,
            config.retry_after,
        )
        self.operations[op.id] = op
        return self._accepted(req, op)

    def _running(self, ws: WorkspaceData, path: str) -> V2Operation | None:
        for op in self.operations.values():
            if op.ws is ws and op.path == path and op.status == "InProgress":
                return op
        return None

    def _op_url(self, op: V2Operation, kind: str, version: str) -> str:
        base = self.api.sim.link_base("asyncOperation" if kind.endswith("Status") else "location")
        return (
            f"{base}/{ARM_HOST}/subscriptions/{op.ws.subscription_id}/providers/Microsoft.MachineLearningServices"
            f"/locations/{op.ws.location}/{kind}/{op.id}?api-version={version}"
        )

    def _accepted(self, req: ApiRequest, op: V2Operation) -> ApiResponse:
        version = req.q("api-version") or V2_API_VERSION
        headers = {"Retry-After": str(op.retry_after)}
        if op.family == "computes":  # Compute_Delete: Azure-AsyncOperation and Location (openapi.json)
            headers["Azure-AsyncOperation"] = self._op_url(op, "computeOperationsStatus", version)
        headers["Location"] = self._op_url(op, "mfeOperationResults", version)
        return ApiResponse(202, None, headers)

    def _advance(self, op: V2Operation) -> None:
        if op.status != "InProgress":
            return
        if op.polls_left > 0:
            op.polls_left -= 1
            return
        op.status = op.outcome
        record = self._record(op.ws, op.family, op.path)
        if op.outcome == "Succeeded" and record is not None:
            self._remove(op.ws, op.family, record)

    def _operation(self, sub: str, op_id: str) -> V2Operation | ApiResponse:
        op = self.operations.get(op_id)
        if op is None or op.ws.subscription_id.lower() != sub.lower():
            return error(404, "OperationNotFound", f"The operation '{op_id}' was not found.")
        self._advance(op)
        return op

    def operation_result(self, req: ApiRequest, sub: str, loc: str, op: str) -> ApiResponse:
        """The Location of a delete: 202 while it runs, then 200 (succeeded) or the error (failed, canceled)."""
        found = self._operation(sub, op)
        if isinstance(found, ApiResponse):
            return found
        if found.status == "InProgress":
            return self._accepted(req, found)
        if found.status == "Succeeded":
            return ApiResponse(200)
        return error(409 if found.status == "Canceled" else 500, f"Operation{found.status}", _failure(found))

    def operation_status(self, req: ApiRequest, sub: str, loc: str, op: str) -> ApiResponse:
        """A compute delete's Azure-AsyncOperation: {status, percentComplete} (REC New-AzMLWorkspaceCompute)."""
        found = self._operation(sub, op)
        if isinstance(found, ApiResponse):
            return found
        body: JSON = {
            "status": found.status,
            "percentComplete": 100.0 if found.status != "InProgress" else 50.0,
        }
        if found.status in ("Failed", "Canceled"):
            body["error"] = {"code": f"Operation{found.status}", "message": _failure(found)}
        headers = {"Retry-After": str(found.retry_after)} if found.status == "InProgress" else {}
        return ApiResponse(200, body, headers)

    def secrets(self, req: ApiRequest, sub: str, rg: str, ws: str, segment: str, name: str) -> ApiResponse:
        """listsecrets is never answered: the product's role does not grant the action (docs/azure-fidelity.md)."""
        action = "connections/listsecrets" if segment == "connections" else "datastores/listSecrets"
        return error(
            403,
            "AuthorizationFailed",
            f"The client '{req.principal}' does not have authorization to perform action "
            f"'Microsoft.MachineLearningServices/workspaces/{action}/action' over scope "
            f"'/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}'.",
        )

    # -- state ------------------------------------------------------------------------------------------------------
    @staticmethod
    def _family(segment: str, nested: bool) -> str:
        if segment in ASSET_SEGMENTS:
            return f"{ASSET_SEGMENTS[segment]}_{'versions' if nested else 'containers'}"
        if segment in ENDPOINT_SEGMENTS:
            return f"{ENDPOINT_SEGMENTS[segment]}_{'deployments' if nested else 'endpoints'}"
        return segment

    @staticmethod
    def _path(segment: str, name: str, parent: str | None) -> str:
        if parent is None:
            return f"{segment}/{name}"
        return f"{segment}/{parent}/{'versions' if segment in ASSET_SEGMENTS else 'deployments'}/{name}"

    def _find(self, ws: WorkspaceData, segment: str, path: str, nested: bool) -> tuple[str, Record | None]:
        family = self._family(segment, nested)
        record = self._record(ws, family, path)
        if record is None and family == "jobs":
            family, record = "child_jobs", self._record(ws, "child_jobs", path)
        return family, record

    @staticmethod
    def _record(ws: WorkspaceData, family: str, path: str) -> Record | None:
        name = path.rsplit("/", 1)[-1]  # a view's record is the v1 object, whose id is its bare name
        if family in v2.VIEW_FAMILIES:
            return (ws.datastores if family == "datastores" else ws.computes).get(name)
        return v2.store(ws).collections[family].get(path)

    def _remove(self, ws: WorkspaceData, family: str, record: Record) -> None:
        if family in v2.VIEW_FAMILIES:
            (ws.datastores if family == "datastores" else ws.computes).remove(record.id)
            return
        v2.store(ws).collections[family].remove(record.id)
        if family == "jobs":  # the pipeline's child jobs go with it
            for child in v2.children(ws, "child_jobs", record.id):
                self._remove(ws, "child_jobs", child)
        mirrored = family in ("jobs", "child_jobs") and v2.store(ws).jobs_in_run_history
        run = ws.run_index.pop(record.id.split("/", 1)[1], None) if mirrored else None
        if run is not None and run.parent is not None:  # the same entity in run history is gone too
            ws.runs[run.parent].remove(run.id)

    def _missing(self, sub: str, rg: str, ws: WorkspaceData, path: str) -> ApiResponse:
        what = f"Microsoft.MachineLearningServices/workspaces/{ws.name}/{path}"
        return self.api._arm_missing(sub, rg, what)


def _visible(body: JSON, view: str, job_type: str) -> bool:
    props = body.get("properties") or {}
    if job_type and str(props.get("jobType", "")).lower() != job_type:
        return False
    if view in ("EnabledOnly", "DisabledOnly"):
        return bool(props.get("isEnabled", True)) == (view == "EnabledOnly")
    archived = bool(props.get("isArchived", False))
    return view in ("", "All") or archived == (view == "ArchivedOnly")


def _in_use(arm_id: str, users: list[str]) -> ApiResponse:
    return error(
        409,
        "Conflict",
        f"The resource '{arm_id}' cannot be deleted: it is in use by {', '.join(users)}.",
        details=[{"code": "ResourceInUse", "target": u, "message": f"Used by '{u}'."} for u in users],
    )


def _failure(op: V2Operation) -> str:
    return f"The deletion of '{op.path}' ended {op.status}."
