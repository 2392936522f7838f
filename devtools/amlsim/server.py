"""The simulator's HTTPS server: one local port plays every Azure Machine Learning host.

A request is `https://127.0.0.1:PORT/<azure host>/<real path>`; see routes.py for the hosts, the paths and the
paging. Around the routes this module adds what a client meets on the way to the real service:

1. faults on demand (`inject_fault`): an error status, a delay, a connection reset, a truncated body;
2. authentication: a bearer token from the simulator's issuer for an ARM audience (the Graph audience on the
   `graph.microsoft.com` host, see graph.py), else 401;
3. throttling (throttle.py): token buckets per (principal, subscription, host), reads and deletes apart (off by
   default);
   ARM answers carry `x-ms-ratelimit-remaining-subscription-*` and a 429 there `Retry-After`, as ARM documents;
   the data plane sends neither (its contract is silent: the harsher choice, see contract_http.py);
4. a fixed latency per call, and a request log that never holds a token.

`/_sim/...` is the control API (JSON, no auth, loopback only) for a simulator in another process.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import json
import random
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devtools.amlsim import v2
from devtools.amlsim.fixture import build_tenant
from devtools.amlsim.graph import GRAPH_HOST, READ_ROLES, GraphDirectory, graph_error
from devtools.amlsim.identity import ARM_AUDIENCES, GRAPH_AUDIENCES, IdentityEndpoint, TokenError, TokenIssuer
from devtools.amlsim.routes import (
    ARM_HOST,
    SERVICE_OPERATION_OUTCOMES,
    Api,
    ApiRequest,
    ApiResponse,
    LroConfig,
    ServiceLroConfig,
    error,
    parse_host,
)
from devtools.amlsim.state import FAMILIES, JSON, Tenant
from devtools.amlsim.throttle import RateLimit, TokenBuckets
from devtools.amlsim.v2_routes import V2Api

FAULT_KINDS = ("status", "delay", "reset", "truncate")
LINK_KINDS = ("nextLink", "asyncOperation", "location", "discovery", "operationLocation")
_SUBSCRIPTION = re.compile(r"/subscriptions/([^/?]+)", re.IGNORECASE)
_WORKSPACE_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)$",
    re.IGNORECASE,
)
_STATUS_CODES = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass
class Fault:
    id: str
    route: str
    pattern: re.Pattern[str]
    kind: str
    remaining: int | None
    probability: float | None
    status: int
    retry_after: int
    delay_s: float

    def describe(self) -> JSON:
        return {
            "id": self.id,
            "route": self.route,
            "kind": self.kind,
            "remaining": self.remaining,
            "probability": self.probability,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay_s": self.delay_s,
        }


class Simulator:
    """A local, faithful stand-in for the Azure Machine Learning REST APIs (ARM and data plane)."""

    def __init__(
        self,
        tenant: Tenant,
        issuer: TokenIssuer,
        *,
        cert: str | Path,
        key: str | Path,
        port: int = 0,
        page_size: int = 5,
        latency_ms: int = 0,
        seed: int = 0,
    ) -> None:
        self.issuer = issuer
        self.page_size = page_size
        self.latency_ms = latency_ms
        self.lro = LroConfig()
        self.service_lro = ServiceLroConfig()
        self._tenant = tenant
        self._lock = threading.RLock()
        self._log: list[JSON] = []
        self._log_seq = 0
        self._faults: list[Fault] = []
        self._fault_counter = 0
        self._rng = random.Random(seed)
        self.buckets = TokenBuckets()  # throttling; its `clock` is time.monotonic unless a test sets one
        self._hostile: set[str] = set()
        self._hostile_base = "https://attacker.invalid"
        self._verified: dict[str, dict[str, Any]] = {}  # token -> claims (see _verify)
        self._request_counter = 0
        self._connections: set[socket.socket] = set()
        self.connections_accepted = 0  # TLS connections opened by clients (keep-alive keeps this low)
        self.api = Api(self)
        self.v2 = V2Api(self.api)  # the v2 (ARM) families; its routes answer first (v2_routes.py)
        self.api.routes[0:0] = self.v2.routes()
        self.graph = GraphDirectory(tenant)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        handler = type("BoundHandler", (_Handler,), {"sim": self})
        self._server = _TlsServer(("127.0.0.1", port), handler, context)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="amlsim", daemon=True
        )
        self._identity = IdentityEndpoint(issuer)
        self._started = False

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> Simulator:
        if not self._started:
            self._identity.start()
            self._thread.start()
            self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._server.shutdown()
            # the identity endpoint polls for shutdown every 0.5 s: let it finish in the background
            threading.Thread(target=self._identity.stop, name="amlsim-identity-stop", daemon=True).start()
            self._started = False
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def service_urls(self) -> dict[str, str]:
        """The product's base-URL settings, with the literal `{location}` placeholder."""
        base = self.base_url
        return {
            "arm": f"{base}/management.azure.com",
            "experiments": f"{base}/{{location}}.experiments.azureml.net",
            "modelmanagement": f"{base}/{{location}}.modelmanagement.azureml.net",
            "pipelines": f"{base}/{{location}}.aether.ms",
        }

    @property
    def graph_url(self) -> str:
        """The product's DSR_GRAPH_BASE_URL: Microsoft Graph played on this port (see graph.py)."""
        return f"{self.base_url}/{GRAPH_HOST}"

    @property
    def identity_environment(self) -> dict[str, str]:
        return self._identity.environment()

    def link_base(self, kind: str) -> str:
        """The base of an absolute URL the simulator hands out (a foreign one when hostile links are on)."""
        return self._hostile_base if kind in self._hostile else self.base_url

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def tenant(self) -> Tenant:
        return self._tenant

    @property
    def people(self) -> dict[str, JSON]:
        return {key: person.as_dict() for key, person in self._tenant.people.items()}

    def reset(self, tenant: Tenant) -> None:
        """Replace the whole state (running delete operations are forgotten; faults and log stay)."""
        with self._lock:
            self._tenant = tenant
            self.api.operations.clear()
            self.api.service_operations.clear()
            self.v2.operations.clear()
            self.graph = GraphDirectory(tenant)

    def truth(self, person_key: str) -> dict[str, list[str]]:
        """{family: sorted ids} of what `person_key` created, from the fixture's owner annotation."""
        with self._lock:
            return self._tenant.truth(person_key)

    def findable(self, person_key: str) -> dict[str, list[str]]:
        """truth() narrowed to what the published contract lets a faithful product find (state.Tenant.findable)."""
        with self._lock:
            return self._tenant.findable(person_key)

    def reachable(self, person_key: str) -> dict[str, list[str]]:
        """What a faithful product attributes to `person_key` by the contract's rules (state.Tenant.reachable)."""
        with self._lock:
            return self._tenant.reachable(person_key)

    def truth_by_workspace(self, person_key: str) -> dict[str, dict[str, list[str]]]:
        with self._lock:
            return self._tenant.truth_by_workspace(person_key)

    def truth_v2(self, person_key: str) -> dict[str, list[str]]:
        """{v2 family: sorted ARM ids} of what `person_key` made (v2.truth); the v1 `truth` leaves them out."""
        with self._lock:
            return v2.truth(self._tenant, person_key)

    def reachable_v2(self, person_key: str) -> dict[str, list[str]]:
        with self._lock:
            return v2.reachable(self._tenant, person_key)

    def findable_v2(self, person_key: str) -> dict[str, list[str]]:
        with self._lock:
            return v2.findable(self._tenant, person_key)

    def erasable_v2(self, person_key: str) -> list[tuple[str, str, str]]:
        """(workspace id, family, ARM id) of a faithful v2 erasure, in a working order (v2.erasable)."""
        with self._lock:
            return v2.erasable(self._tenant, person_key)

    def snapshot(self) -> JSON:
        """The full state, deep-copied and JSON-able: every object of every family of every workspace."""
        with self._lock:
            tenant = self._tenant
            workspaces = []
            for ws in tenant.workspaces.values():
                families: dict[str, list[JSON]] = {}
                for family in FAMILIES:
                    families[family] = [
                        {
                            "id": ws.truth_id(family, record)
                            if family in ("workspaces", "computes")
                            else record.id,
                            "owner": record.owner,
                            "parent": record.parent,
                            "body": self.api.render_workspace(ws, links=False)
                            if family == "workspaces"
                            else record.body(),
                        }
                        for record in ws.records(family)
                    ]
                workspaces.append(
                    {
                        "id": ws.arm_id,
                        "subscriptionId": ws.subscription_id,
                        "resourceGroup": ws.resource_group,
                        "name": ws.name,
                        "location": ws.location,
                        "deleting": ws.deleting,
                        "families": families,
                        "v2": {
                            family: [
                                {"id": v2.resource_id(ws, family, r), "owner": r.owner, "parent": r.parent}
                                for r in v2.records(ws, family)
                            ]
                            for family in v2.V2_FAMILIES
                        },
                    }
                )
            state = {
                "tenant": {"name": tenant.name, "tenantId": tenant.tenant_id},
                "people": {k: p.as_dict() for k, p in tenant.people.items()},
                "subscriptions": [
                    {"subscriptionId": s, "displayName": n} for s, n in tenant.subscriptions.items()
                ],
                "resourceGroups": [
                    {"subscriptionId": s, "name": n, "location": loc}
                    for s, n, loc in tenant.resource_groups.values()
                ],
                "workspaces": workspaces,
                "deletedWorkspaces": [e.describe() for e in tenant.deleted.values()],
                "operations": [
                    {
                        "id": op.id,
                        "workspace": op.workspace.arm_id,
                        "status": op.status,
                        "pollsLeft": op.polls_left,
                        "purge": op.purge,
                    }
                    for op in self.api.operations.values()
                ],
                "serviceOperations": [
                    {
                        "id": op.id,
                        "workspace": op.workspace.arm_id,
                        "service": op.service_id,
                        "state": op.state,
                        "polls": op.polls,
                    }
                    for op in self.api.service_operations.values()
                ],
            }
            return json.loads(json.dumps(state))

    # -- soft delete and purge ------------------------------------------------------------------------------
    def deleted_workspaces(self) -> dict[str, JSON]:
        """{resource id: {state, deletedAt, recoverableUntil, purgedAt, purgedBy, objectsRetained, ...}} of every
        workspace deleted so far: what a DELETE really did (soft delete or purge), beyond the 404 both give."""
        with self._lock:
            return {e.arm_id: e.describe() for e in self._tenant.deleted.values()}

    def recover_workspace(self, arm_id: str) -> JSON:
        """Recover a soft-deleted workspace, as the portal's "Recently deleted" view does (no REST call in the
        published contract lists or recovers one)."""
        match = _WORKSPACE_ID.match(arm_id)
        if match is None:
            raise ValueError(f"not a workspace resource id: {arm_id!r}")
        with self._lock:
            ws = self._tenant.recover_workspace(match["sub"], match["rg"], match["ws"])
            return {"id": ws.arm_id, "objects": ws.count()}

    def expire_soft_deleted(self, now: float | None = None) -> list[str]:
        """Let the retention period end: purge every soft-deleted workspace whose `recoverableUntil` is <= now."""
        with self._lock:
            return self._tenant.expire_soft_deleted(now)

    # -- behaviour switches --------------------------------------------------------------------------------
    def inject_fault(
        self,
        route: str = ".*",
        kind: str = "status",
        count: int | None = None,
        probability: float | None = None,
        status: int = 500,
        retry_after: int = 1,
        delay_s: float = 1.0,
    ) -> str:
        """Fault the next `count` requests whose "METHOD /host/path" matches `route` (regex search), or each
        matching request with `probability` (seeded). Kinds: status, delay, reset, truncate."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {FAULT_KINDS}")
        if kind == "status" and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (4xx or 5xx)")
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if count is None and probability is None:
            count = 1
        with self._lock:
            self._fault_counter += 1
            fault = Fault(
                f"fault-{self._fault_counter}",
                route,
                re.compile(route),
                kind,
                count,
                probability,
                int(status),
                int(retry_after),
                float(delay_s),
            )
            self._faults.append(fault)
            return fault.id

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[JSON]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def set_rate_limit(
        self,
        enabled: bool = True,
        read_burst: int = 250,
        read_rate: float = 25.0,
        delete_burst: int = 200,
        delete_rate: float = 10.0,
    ) -> None:
        """Token buckets per (token principal, subscription, host); refilled continuously."""
        if read_burst < 1 or delete_burst < 1 or read_rate <= 0 or delete_rate <= 0:
            raise ValueError("bursts must be >= 1 and rates > 0")
        self.buckets.configure(
            RateLimit(enabled, int(read_burst), float(read_rate), int(delete_burst), float(delete_rate))
        )

    def set_lro(
        self,
        polls_in_progress: int = 2,
        outcome: str = "Succeeded",
        retry_after: int = 1,
        initial_status: int = 202,
    ) -> None:
        """How a workspace DELETE answers: 200/204 at once, or 202 then `polls_in_progress` InProgress."""
        if outcome not in ("Succeeded", "Failed", "Canceled"):
            raise ValueError("outcome must be Succeeded, Failed or Canceled")
        if initial_status not in (200, 202, 204):
            raise ValueError("initial_status must be 200, 202 or 204")
        if polls_in_progress < 0 or retry_after < 0:
            raise ValueError("polls_in_progress and retry_after must be >= 0")
        with self._lock:
            self.lro = LroConfig(int(polls_in_progress), outcome, int(retry_after), int(initial_status))

    def set_v2_lro(
        self,
        polls_in_progress: int = 2,
        outcome: str = "Succeeded",
        retry_after: int = 1,
        initial_status: int = 202,
    ) -> None:
        """How a v2 DELETE that is long-running answers (jobs, endpoints, deployments, schedules, computes): 200/204
        at once, or 202 then `polls_in_progress` polls of its Location before `outcome`."""
        if outcome not in ("Succeeded", "Failed", "Canceled"):
            raise ValueError("outcome must be Succeeded, Failed or Canceled")
        if initial_status not in (200, 202, 204) or polls_in_progress < 0 or retry_after < 0:
            raise ValueError("initial_status must be 200, 202 or 204; polls and retry_after >= 0")
        with self._lock:
            self.v2.lro = LroConfig(int(polls_in_progress), outcome, int(retry_after), int(initial_status))

    def set_service_lro(
        self,
        initial_status: int = 202,
        polls_in_progress: int = 2,
        outcome: str = "Succeeded",
        retry_after: int | None = 1,
        forget_operation: bool = False,
    ) -> None:
        """How a service DELETE answers: 200 at once, or 202 with an operation that answers NotStarted/Running
        `polls_in_progress` times before `outcome`, or (forget_operation) 404 because its record has expired
        while the delete itself is done (see routes.ServiceLroConfig)."""
        if outcome not in SERVICE_OPERATION_OUTCOMES:
            raise ValueError(f"outcome must be one of {SERVICE_OPERATION_OUTCOMES}")
        if initial_status not in (200, 202):
            raise ValueError("initial_status must be 200 or 202")
        if polls_in_progress < 0 or (retry_after is not None and retry_after < 0):
            raise ValueError("polls_in_progress and retry_after must be >= 0")
        with self._lock:
            self.service_lro = ServiceLroConfig(
                int(initial_status),
                int(polls_in_progress),
                outcome,
                None if retry_after is None else int(retry_after),
                bool(forget_operation),
            )

    def set_hostile_links(
        self,
        enabled: bool = True,
        base: str = "https://attacker.invalid",
        kinds: tuple[str, ...] | list[str] = LINK_KINDS,
    ) -> None:
        """Hand out absolute URLs (nextLink, asyncOperation, location, discovery, a service delete's
        Operation-Location) on a foreign host, to test
        that a client never follows them with its token."""
        unknown = set(kinds) - set(LINK_KINDS)
        if unknown:
            raise ValueError(f"unknown link kinds {sorted(unknown)}; known: {LINK_KINDS}")
        with self._lock:
            self._hostile = set(kinds) if enabled else set()
            self._hostile_base = base.rstrip("/")

    def set_latency(self, latency_ms: int) -> None:
        self.latency_ms = int(latency_ms)

    # -- request log ---------------------------------------------------------------------------------------
    @property
    def log(self) -> list[JSON]:
        with self._lock:
            return copy.deepcopy(self._log)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    @property
    def log_seq(self) -> int:
        """The sequence number of the last logged request (0 before the first)."""
        with self._lock:
            return self._log_seq

    def log_since(self, seq: int) -> list[JSON]:
        """Entries logged after `seq`, not copied (read them, do not change them): cheap for a benchmark's
        tens of thousands of calls, where `log` would deep-copy them all."""
        with self._lock:
            return [entry for entry in self._log if entry["seq"] > seq]

    def _record(self, entry: JSON) -> None:
        with self._lock:
            self._log_seq += 1
            entry["seq"] = self._log_seq
            self._log.append(entry)

    # -- the request pipeline ------------------------------------------------------------------------------
    def _pick_fault(self, target: str) -> Fault | None:
        with self._lock:
            for fault in list(self._faults):
                if not fault.pattern.search(target):
                    continue
                if fault.probability is not None and self._rng.random() >= fault.probability:
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _verify(self, token: str, audiences: frozenset[str] = ARM_AUDIENCES) -> dict[str, Any]:
        """The issuer's check, remembered per token (a client sends the same token thousands of times); the
        validity window and the audience are checked on every call."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self.issuer.verify(token, audiences)
            if len(self._verified) > 1000:
                self._verified.clear()
            self._verified[token] = claims
        elif not claims.get("nbf", 0) <= time.time() < claims.get("exp", 0):
            raise TokenError("token expired or not yet valid")
        elif claims.get("aud") not in audiences:
            raise TokenError(f"wrong audience {claims.get('aud')!r}")
        return claims

    def _authenticate(
        self, header: str | None, audiences: frozenset[str] = ARM_AUDIENCES
    ) -> tuple[str, str | None, ApiResponse | None]:
        """("valid"|"missing"|"invalid", principal oid, 401 answer or None)."""
        challenge = (
            f'Bearer authorization_uri="https://login.microsoftonline.com/{self._tenant.tenant_id}", '
            'error="invalid_token", error_description="The authentication failed."'
        )
        if not header:
            answer = error(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
            answer.headers["WWW-Authenticate"] = challenge
            return "missing", None, answer
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            answer = error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is not a bearer token.",
            )
            answer.headers["WWW-Authenticate"] = challenge
            return "invalid", None, answer
        try:
            claims = self._verify(token.strip(), audiences)
        except TokenError as exc:
            code = "ExpiredAuthenticationToken" if "expired" in str(exc) else "InvalidAuthenticationToken"
            answer = error(401, code, f"The access token is invalid: {exc}.")
            answer.headers["WWW-Authenticate"] = challenge
            return "invalid", None, answer
        if claims.get("tid") != self._tenant.tenant_id:
            answer = error(
                401,
                "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong tenant '{claims.get('tid')}'.",
            )
            answer.headers["WWW-Authenticate"] = challenge
            return "invalid", None, answer
        return "valid", str(claims.get("oid")), None

    def _throttle(
        self, method: str, principal: str | None, host: str, path: str
    ) -> tuple[str, int, ApiResponse | None]:
        """(header kind, remaining, 429 answer or None) from the token bucket for this call. ARM's 429 is ARM's
        (`SubscriptionRequestsThrottled` with Retry-After: learn.microsoft.com/azure/azure-resource-manager/
        management/request-limits-and-throttling); the data plane's names no Retry-After (its contract is silent:
        the harsher choice, devtools/amlsim/contract_http.py DATA_PLANE_THROTTLING)."""
        kind = "deletes" if method == "DELETE" else "reads" if method in ("GET", "HEAD") else "writes"
        match = _SUBSCRIPTION.search(path)
        subscription = match.group(1).lower() if match else ""
        if kind == "writes":
            return kind, 1199, None
        remaining, wait = self.buckets.draw((principal or "", subscription, host, kind))
        if wait is None:
            return kind, remaining, None
        if host != ARM_HOST:
            return kind, 0, error(429, "TooManyRequests", f"The request is being throttled ({kind}).")
        answer = error(
            429,
            "SubscriptionRequestsThrottled",
            f"Number of '{kind[:-1]}' requests for subscription '{subscription}' actor '{principal}' exceeded. "
            f"Please try again after '{wait}' seconds after additional tokens are available. "
            "Refer to https://aka.ms/arm-throttling",
        )
        answer.headers["Retry-After"] = str(wait)
        return kind, 0, answer

    def _next_request_id(self) -> str:
        with self._lock:
            self._request_counter += 1
            return f"00000000-0000-4000-8000-{self._request_counter:012d}"

    # -- control API (/_sim) -------------------------------------------------------------------------------
    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> ApiResponse:
        try:
            payload: Any = json.loads(body) if body.strip() else {}
        except ValueError:
            return error(400, "InvalidJson", "The request body is not JSON.")
        if not isinstance(payload, dict):
            return error(400, "InvalidJson", "The request body must be a JSON object.")
        action = (method, path.rstrip("/"))
        try:
            if action == ("GET", "/_sim/health"):
                return ApiResponse(200, {"status": "ok", "tenant": self._tenant.name, **self.describe()})
            if action == ("GET", "/_sim/log"):
                return ApiResponse(200, {"value": self.log})
            if action == ("DELETE", "/_sim/log"):
                self.clear_log()
                return ApiResponse(200, {"cleared": True})
            if action == ("GET", "/_sim/state"):
                return ApiResponse(200, self.snapshot())
            if action == ("GET", "/_sim/people"):
                return ApiResponse(200, self.people)
            if action == ("GET", "/_sim/truth"):
                person = query.get("person", "")
                if person not in self._tenant.principals:
                    return error(404, "PersonNotFound", f"No person with key '{person}'.")
                if query.get("by") == "workspace":
                    return ApiResponse(200, self.truth_by_workspace(person))
                if query.get("generation") == "v2":
                    return ApiResponse(200, self.truth_v2(person))
                return ApiResponse(200, self.truth(person))
            if action == ("GET", "/_sim/deleted"):
                return ApiResponse(200, self.deleted_workspaces())
            if action == ("POST", "/_sim/recover"):
                return ApiResponse(200, self.recover_workspace(str(payload["id"])))
            if action == ("POST", "/_sim/expire"):
                now = payload.get("now")
                return ApiResponse(
                    200, {"purged": self.expire_soft_deleted(None if now is None else float(now))}
                )
            if action == ("GET", "/_sim/faults"):
                return ApiResponse(200, {"value": self.faults})
            if action == ("POST", "/_sim/faults"):
                return ApiResponse(200, {"id": self.inject_fault(**payload)})
            if action == ("DELETE", "/_sim/faults"):
                self.clear_faults()
                return ApiResponse(200, {"cleared": True})
            if action == ("POST", "/_sim/ratelimit"):
                self.set_rate_limit(**payload)
                return ApiResponse(200, vars(self.buckets.limit))
            if action == ("POST", "/_sim/lro"):
                self.set_lro(**payload)
                return ApiResponse(200, vars(self.lro))
            if action == ("POST", "/_sim/v2lro"):
                self.set_v2_lro(**payload)
                return ApiResponse(200, vars(self.v2.lro))
            if action == ("POST", "/_sim/servicelro"):
                self.set_service_lro(**payload)
                return ApiResponse(200, vars(self.service_lro))
            if action == ("POST", "/_sim/hostile"):
                self.set_hostile_links(**payload)
                return ApiResponse(200, {"kinds": sorted(self._hostile), "base": self._hostile_base})
            if action == ("POST", "/_sim/latency"):
                self.set_latency(**payload)
                return ApiResponse(200, {"latency_ms": self.latency_ms})
            if action == ("POST", "/_sim/graph"):
                # {"softDelete": key} | {"restore": key}: a person leaves Entra ID (or comes back)
                if payload.get("softDelete"):
                    self.graph.soft_delete(str(payload["softDelete"]))
                if payload.get("restore"):
                    self.graph.restore(str(payload["restore"]))
                return ApiResponse(200, {"deleted": sorted(self.graph.deleted)})
            if action == ("POST", "/_sim/pagesize"):
                self.page_size = int(payload["page_size"])
                return ApiResponse(200, {"page_size": self.page_size})
            if action == ("POST", "/_sim/reset"):
                params = dict(payload)
                name = params.pop("tenant", "demo")
                tenant = build_tenant(name, **params)
                self.reset(tenant)
                return ApiResponse(200, {"tenant": tenant.name, "workspaces": len(tenant.workspaces)})
        except (TypeError, ValueError, KeyError) as exc:
            return error(400, "InvalidArgument", str(exc))
        return error(404, "RouteNotFound", f"No control endpoint {method} {path}.")

    def describe(self) -> JSON:
        """What a client in another process needs: addresses, identity settings and ids."""
        return {
            "base_url": self.base_url,
            "service_urls": self.service_urls,
            "graph_url": self.graph_url,
            "identity": self.identity_environment,
            "tenant_id": self.issuer.tenant_id,
            "principal_id": self.issuer.principal_id,
            "client_id": self.issuer.client_id,
        }


_date: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header, formatted once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, email.utils.formatdate(now, usegmt=True))
    return _date[1]


class _TlsServer(ThreadingHTTPServer):
    """Accepts plain TCP and runs the TLS handshake in the connection's own thread."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    # socketserver listens with a backlog of 5: a burst of new connections (four hosts opening 32 each) then
    # loses SYNs, and each lost one stalls its caller for a second or more. Azure's front ends do not.
    request_queue_size = 256

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], context: ssl.SSLContext
    ) -> None:
        self.context = context
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away is not news


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "amlsim/1.0"
    sys_version = ""
    timeout = 60
    sim: Simulator

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._tls_ok = True
        try:
            self.connection.do_handshake()
        except (OSError, ssl.SSLError):
            self._tls_ok = False
        with self.sim._lock:
            self.sim._connections.add(self.connection)
            self.sim.connections_accepted += 1

    def handle(self) -> None:
        if self._tls_ok:
            with contextlib.suppress(OSError, ssl.SSLError):
                super().handle()

    def finish(self) -> None:
        with self.sim._lock:
            self.sim._connections.discard(self.connection)
        with contextlib.suppress(OSError, ssl.SSLError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        started = time.perf_counter()
        sim = self.sim
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path == "/_sim" or parts.path.startswith("/_sim/"):
            self._send(sim._control(method, parts.path, query, body))
            return

        host, _, rest = parts.path.lstrip("/").partition("/")
        host = host.lower()
        path = "/" + rest
        entry: JSON = {
            "seq": 0,
            "time": time.time(),
            "method": method,
            "host": host,
            "path": path,
            "query": query,
            "status": None,
            "auth": "missing",
            "principal": None,
            "fault": None,
            "duration_ms": 0.0,
        }
        if sim.latency_ms > 0:
            time.sleep(sim.latency_ms / 1000)
        audiences = GRAPH_AUDIENCES if host == GRAPH_HOST else ARM_AUDIENCES
        auth, principal, refusal = sim._authenticate(self.headers.get("Authorization"), audiences)
        entry["auth"], entry["principal"] = auth, principal
        fault = sim._pick_fault(f"{method} /{host}{path}")
        truncate = False
        if fault is not None:
            entry["fault"] = fault.kind
            if fault.kind == "reset":
                self._finish_log(entry, started)
                self._reset()
                return
            if fault.kind == "status":
                answer = error(
                    fault.status,
                    _STATUS_CODES.get(fault.status, "Fault"),
                    f"Injected fault: HTTP {fault.status}.",
                )
                answer = sim.api.shape(host, path, answer)
                if fault.status in (429, 503):
                    answer.headers["Retry-After"] = str(fault.retry_after)
                entry["status"] = answer.status
                self._finish_log(entry, started)
                self._send(answer)
                return
            if fault.kind == "delay":
                time.sleep(fault.delay_s)
            truncate = fault.kind == "truncate"

        if host == GRAPH_HOST:
            answer = self._graph_answer(method, path, query, refusal)
        else:
            answer = self._answer(method, host, path, query, principal, refusal)
        entry["status"] = answer.status
        self._finish_log(entry, started)
        self._send(answer, truncate=truncate)

    def _answer(
        self,
        method: str,
        host: str,
        path: str,
        query: dict[str, str],
        principal: str | None,
        refusal: ApiResponse | None,
    ) -> ApiResponse:
        sim = self.sim
        if parse_host(host) is None:
            return error(404, "HostNotFound", f"The host '{host}' is not simulated here.")
        if refusal is not None:
            return sim.api.shape(host, path, refusal)
        kind, remaining, answer = sim._throttle(method, principal, host, path)
        if answer is not None:
            answer = sim.api.shape(host, path, answer)
        else:
            try:
                with sim._lock:
                    answer = sim.api.handle(ApiRequest(method, host, path, query, principal))
            except Exception as exc:  # a simulator bug must show as a 500, not as a dropped connection
                answer = error(500, "InternalServerError", f"Simulator error: {type(exc).__name__}: {exc}")
        if host == ARM_HOST:  # ARM's remaining-requests headers; no data-plane contract names any
            answer.headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = str(remaining)
        return answer

    def _graph_answer(
        self, method: str, path: str, query: dict[str, str], refusal: ApiResponse | None
    ) -> ApiResponse:
        """Microsoft Graph: a Graph-audience token (else 401), holding a user-read app role (else 403)."""
        sim = self.sim
        if refusal is not None:
            body = refusal.body["error"] if isinstance(refusal.body, dict) else {}
            answer = graph_error(
                401, "InvalidAuthenticationToken", str(body.get("message", "Access denied."))
            )
            answer.headers.update(refusal.headers)
            return answer
        token = str(self.headers.get("Authorization", "")).partition(" ")[2].strip()
        claims = sim._verify(token, GRAPH_AUDIENCES)
        if not READ_ROLES & set(claims.get("roles") or []):
            return graph_error(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )
        try:
            with sim._lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                return sim.graph.handle(method, path, query, headers)
        except Exception as exc:  # a simulator bug must show as a 500
            return graph_error(500, "InternalServerError", f"Simulator error: {type(exc).__name__}: {exc}")

    def _finish_log(self, entry: JSON, started: float) -> None:
        entry["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        self.sim._record(entry)

    def _reset(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.connection.close()

    def _send(self, answer: ApiResponse, truncate: bool = False) -> None:
        data = b"" if answer.body is None else json.dumps(answer.body, separators=(",", ":")).encode()
        if truncate and len(data) > 1:
            data = data[: len(data) // 2]  # a syntactically cut body with a consistent Content-Length
        try:
            phrase = HTTPStatus(answer.status).phrase
        except ValueError:
            phrase = ""
        request_id = self.sim._next_request_id()
        head = [
            f"{self.protocol_version} {answer.status} {phrase}",
            f"Server: {self.server_version}",
            f"Date: {_http_date()}",
            f"x-ms-request-id: {request_id}",
            f"x-ms-correlation-request-id: {request_id}",
        ]
        if data or answer.status not in (204, 304):
            head.append("Content-Type: application/json; charset=utf-8")
        head.extend(f"{name}: {value}" for name, value in answer.headers.items())
        if answer.status != 204:
            head.append(f"Content-Length: {len(data)}")
        else:
            data = b""
        if self.close_connection:
            head.append("Connection: close")
        # one write: a header write and a body write meet Nagle and delayed ACKs (40 ms a call)
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)
            self.wfile.flush()
        except (OSError, ssl.SSLError):
            self.close_connection = True
