"""Every answer of the simulator is one its HTTP contract table describes (devtools/amlsim/contract_http.py).

One scenario drives every operation of the table through the simulator's real HTTP API: every list paged to the
end (and with the contract's page-size parameter), every read, a missing object and a missing workspace for
every read, every DELETE and the long-running operations it starts, a 429 from every service and a 401 from
every service. Each answer is judged on the way (status code, paging envelope, error body, throttling headers:
devtools/amlsim/contract_check.py); an answer the table does not describe fails the test, and so does an
operation, a success status or a service error the scenario never saw.
"""

from __future__ import annotations

import copy
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from devtools.amlsim import FAMILIES, Simulator
from devtools.amlsim.contract_check import problems
from devtools.amlsim.contract_http import ERRORS, OPERATIONS, SERVICES, Operation, operation_for

from .conftest import ARM_VERSION, DEFAULT, R1, R2, Client, ws_path
from .test_contract import served

BIG = "train-churn-r1"  # R1's experiment with 13 runs and 13 metrics
HOST_OF = {
    "arm": "arm",
    "history": "experiments",
    "artifact": "experiments",
    "notification": "experiments",
    "datastore": "experiments",
    "modelmanagement": "modelmanagement",
    "pipelines": "pipelines",
    "discovery": "experiments",
}


@dataclass
class JudgedClient(Client):
    """The tests' client, judging every answer against the table and remembering what it saw."""

    bad: list[str] = field(default_factory=list)
    seen: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    def request(self, method: str, url: str, token: str | None = DEFAULT, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, token, **kwargs)
        parts = urlsplit(response.request.url or url)
        host, _, rest = parts.path.lstrip("/").partition("/")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in response.headers.items()}
        body = response.json() if response.content else None
        self.bad.extend(problems(method, host, "/" + rest, query, response.status_code, headers, body))
        op = operation_for(method, host, "/" + rest)
        if op is not None:
            self.seen[op.id].add(response.status_code)
        return response


def judged(client: Client) -> JudgedClient:
    return JudgedClient(client.sim, client.cert, client.token, client.session)


def url_of(client: Client, operation: Operation, **values: str) -> str:
    """The URL of `op` in R1 (experiment BIG); every other placeholder names nothing unless given."""
    defaults = {
        "sub": R1[0],
        "rg": R1[1],
        "ws": R1[2],
        "loc": "westeurope",
        "exp": BIG,
        "origin": "ExperimentRun",
    }
    defaults |= {"container": "dcid.nope", "run": "nope", "id": "nope", "name": "nope", "op": "nope"}
    path = operation.paths[0].format(**{**defaults, **values})
    return client.url(HOST_OF[operation.service], path)


def params(op: Operation) -> dict[str, str] | None:
    return ARM_VERSION if op.service == "arm" else None


def by_id(op_id: str) -> Operation:
    return next(op for op in OPERATIONS if op.id == op_id)


# -- the scenario, step by step --------------------------------------------------------------------------------
def walk_everything(client: JudgedClient) -> None:
    """Every list to its end and every read (the identity walk), plus what that walk does not call."""
    assert sum(1 for _ in served(client)) > 100
    history = "/history/v1.0" + ws_path(*R1)
    experiment = client.get(client.url("experiments", f"{history}/experiments/{BIG}")).json()
    assert client.get(client.url("experiments", f"{history}/experimentids/{experiment['experimentId']}")).ok
    # the contract's page-size parameters, where it names one
    for op_id, size in (("Runs_List", "$top"), ("DataStores_List", "count"), ("MLModels_ListQuery", "count")):
        _, pages = client.walk(url_of(client, by_id(op_id)), {size: "2", **(params(by_id(op_id)) or {})})
        assert len(pages) >= 2, op_id
        assert all(len(p["value"]) <= 2 for p in pages), op_id
    in_group, _ = client.walk(url_of(client, by_id("Workspaces_ListByResourceGroup")), ARM_VERSION)
    assert {w["name"] for w in in_group} >= {R1[2], R2[2]}
    # the workspace's discovery document and the client's paths on the host it names
    workspace = client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).json()
    discovered = client.get(workspace["properties"]["discoveryUrl"]).json()
    models = by_id("MLModels_ListQuery").paths[0].format(sub=R1[0], rg=R1[1], ws=R1[2])
    assert client.walk(discovered["modelmanagement"] + models)[0]


def bad_requests(client: JudgedClient) -> None:
    """400 where the contract's parameters are wrong: no api-version on ARM, a page size or token not valid."""
    assert client.get(client.url("arm", ws_path(*R1))).status_code == 400
    for op_id, query in (
        ("Runs_List", {"$top": "0"}),
        ("Artifacts_ListInContainer", {"continuationToken": "not-a-token"}),
        ("Tasks_List", {"$continuationtoken": "not-a-token"}),
        ("DataStores_List", {"count": "none"}),
        ("MLModels_ListQuery", {"count": "0"}),
    ):
        op = by_id(op_id)
        url = url_of(
            client, op, container=f"dcid.{next(iter(client.sim.tenant.find_workspace(*R1).run_index))}"
        )
        assert client.get(url, query).status_code == 400, op_id


def read_missing(client: JudgedClient) -> None:
    """Every read of a workspace that is not there, and of an object that is not there: 404."""
    for op in OPERATIONS:
        if op.method != "GET" or op.service == "discovery":
            continue
        template = op.paths[0]
        gone = {"ws": "mlw-nope", "id": "nope", "op": "nope"}
        if "{ws}" not in template and "{op}" not in template:
            gone |= (
                {"rg": "rg-nope"} if "{rg}" in template else {"sub": "00000000-0000-0000-0000-000000000000"}
            )
        assert client.get(url_of(client, op, **gone), params(op)).status_code == 404, op.id
        last = template.rsplit("/", 1)[1]
        if last.startswith("{") and last != "{ws}" and op.id != "Artifacts_ListInContainer":
            missing = client.get(url_of(client, op, **{last.strip("{}"): "nope"}), params(op))
            assert missing.status_code == 404, op.id


def delete_workspaces(client: JudgedClient, sim: Simulator) -> None:
    """D1 as a long-running operation (both polling URLs to the end), at once, failed, and when gone."""
    sim.set_lro(polls_in_progress=2)  # each poll, of either URL, advances the operation
    accepted = client.delete(client.url("arm", ws_path(*R2)), ARM_VERSION)
    assert accepted.status_code == 202
    status = client.get(accepted.headers["Azure-AsyncOperation"]).json()["status"]
    result = client.get(accepted.headers["Location"])
    assert (status, result.status_code) == ("InProgress", 202)
    assert client.get(accepted.headers["Location"]).status_code == 200
    assert client.get(accepted.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded"
    assert client.delete(client.url("arm", ws_path(*R2)), ARM_VERSION).status_code == 204
    sim.set_lro(polls_in_progress=0, outcome="Failed")
    failed = client.delete(client.url("arm", ws_path(*R1)), ARM_VERSION)
    assert client.get(failed.headers["Location"]).status_code == 500
    sim.set_lro(initial_status=200)
    assert client.delete(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 200
    sim.set_lro()


def delete_model_management(client: JudgedClient, sim: Simulator) -> None:
    """D2-D5: what is in use is refused, a service goes through its operation, then everything goes."""

    def mms(kind: str, id_: str) -> str:
        return client.url("modelmanagement", "/api" + ws_path(*R1) + f"/{kind}/{id_}")

    assert client.delete(mms("models", "churn-r1:1")).status_code == 412  # used by churn-img-r1:1
    assert client.delete(mms("images", "churn-img-r1:1")).status_code == 412  # used by churn-svc-r1
    sim.set_service_lro(polls_in_progress=1)
    accepted = client.delete(mms("services", "churn-svc-r1"))
    assert accepted.status_code == 202
    states = [client.get(accepted.headers["Operation-Location"]).json()["state"] for _ in range(3)]
    assert states == ["NotStarted", "Succeeded", "Succeeded"]
    sim.set_service_lro(initial_status=200)
    assert client.delete(mms("services", "churn-svc-r1-b")).status_code == 200
    sim.set_service_lro()
    for kind, id_ in (("services", "churn-svc-r1"), ("images", "churn-img-r1:1"), ("models", "churn-r1:1")):
        assert [client.delete(mms(kind, id_)).status_code for _ in range(2)][-1] == 204, (kind, id_)
    asset = client.get(client.url("modelmanagement", "/api" + ws_path(*R1) + "/assets")).json()["value"][0]
    assert [client.delete(mms("assets", asset["id"])).status_code for _ in range(2)] == [200, 204]


def first_read(service: str) -> Operation:
    return next(op for op in OPERATIONS if op.service == service and op.method == "GET")


def throttle_every_service(client: JudgedClient, sim: Simulator) -> None:
    """With one token a bucket, the second read (and delete) of every service is refused with 429."""
    sim.set_rate_limit(read_burst=1, read_rate=0.01, delete_burst=1, delete_rate=0.01)
    try:
        for service in SERVICES:
            op = first_read(service)
            codes = [client.get(url_of(client, op, id="nope"), params(op)).status_code for _ in range(2)]
            assert codes[-1] == 429, service
        for op in (by_id("Workspaces_Delete"), by_id("MLModels_Delete")):
            url = url_of(client, op, ws="mlw-nope") if op.service == "arm" else url_of(client, op, id="nope")
            assert [client.delete(url, params(op)).status_code for _ in range(2)] == [204, 429], op.id
    finally:
        sim.set_rate_limit(enabled=False)


def refuse_without_token(client: JudgedClient) -> None:
    for service in SERVICES:
        op = first_read(service)
        url = url_of(client, op, id="nope", op="nope")
        assert client.get(url, params(op), token=None).status_code == 401, service


# -- the test -------------------------------------------------------------------------------------------------
def test_every_operation_answers_only_as_its_contract_row_says(client: Client, sim: Simulator) -> None:
    sim.page_size = 3
    judge = judged(client)
    walk_everything(judge)
    bad_requests(judge)
    read_missing(judge)
    throttle_every_service(judge, sim)
    refuse_without_token(judge)
    delete_model_management(judge, sim)
    delete_workspaces(judge, sim)
    assert judge.bad == []
    # every operation was answered with every success status its row names
    unseen = {op.id: sorted(set(op.ok) - judge.seen[op.id]) for op in OPERATIONS}
    assert {op_id: codes for op_id, codes in unseen.items() if codes} == {}
    # every service answered each error it may answer (bad request, missing token, missing object, throttled)
    by_service: dict[str, set[int]] = defaultdict(set)
    for op in OPERATIONS:
        by_service[op.service] |= judge.seen[op.id]
    missing = {s: sorted(set(SERVICES[s].common_errors) - seen) for s, seen in by_service.items()}
    assert {s: codes for s, codes in missing.items() if codes} == {}
    assert set(by_service) == set(SERVICES)
    assert {op.family for op in OPERATIONS} - {None} == set(FAMILIES)


def test_the_table_and_the_simulator_serve_the_same_operations(sim: Simulator) -> None:
    # The v2 (ARM) families' routes come first and answer against their own table (contract_v2, test_v2.py);
    # where one of them shadows a v1 route (the workspace and compute lists), it hands v1 api-versions back to the
    # v1 route: an operation found on a v2 route therefore also counts for the v1 route behind it.
    first_v1 = len(sim.v2.routes())
    served = {
        (index, method)
        for index, route in enumerate(sim.api.routes)
        if index >= first_v1
        for method in route.methods
    }
    routes = {id(route): index for index, route in enumerate(sim.api.routes)}
    v1_api = copy.copy(sim.api)
    v1_api.routes = sim.api.routes[first_v1:]
    hit: set[tuple[int, str]] = set()
    for op in OPERATIONS:
        found_for_op = []
        for path in op.paths:
            concrete = re.sub(r"\{[^}]+\}", "x1", path)
            for domain in SERVICES[op.service].domains:
                host = domain if domain == "management.azure.com" else f"westeurope.{domain}"
                for api in (sim.api, v1_api):
                    found = api.route_for(host, concrete)
                    if found is not None and op.method in found[0].methods:
                        found_for_op.append(routes[id(found[0])])
        assert found_for_op, f"{op.id}: the simulator does not serve it"
        hit |= {(index, op.method) for index in found_for_op}
    assert served - hit == set()  # and no route of the simulator is missing from the table


def test_every_row_cites_its_sources() -> None:
    assert len({op.id for op in OPERATIONS}) == len(OPERATIONS)
    for op in OPERATIONS:
        assert len(op.source) > 30, op.id
        assert op.ok, op.id
        assert op.paging is None or len(op.paging.source) > 30, op.id
    for service in SERVICES.values():
        assert service.error_shape in ERRORS
        assert len(service.throttling_source) > 30, service.name
    assert all(len(shape.source) > 30 for shape in ERRORS.values())
    # ARM documents its throttling headers; no data-plane contract names any: the harsher choice there
    assert [s.name for s in SERVICES.values() if s.remaining_headers or s.retry_after_on_429] == ["arm"]


ARM = "management.azure.com"
EXP = "westeurope.experiments.azureml.net"
MMS_HOST = "westeurope.modelmanagement.azureml.net"
WS_PATH = ws_path(*R1)
RUNS = "/history/v1.0" + WS_PATH + f"/experiments/{BIG}/runs"
READS = {"x-ms-ratelimit-remaining-subscription-reads": "7"}


def flagged(fragment: str, *answer: Any) -> bool:
    return any(fragment in problem for problem in problems(*answer))


def test_the_judge_passes_faithful_answers_and_flags_every_other() -> None:
    page = {"value": [], "continuationToken": "t", "nextLink": f"https://h{RUNS}?$continuationtoken=t"}
    assert problems("GET", EXP, RUNS, {}, 200, {}, page) == []
    assert problems("GET", ARM, WS_PATH + "/computes", ARM_VERSION, 200, READS, {"value": []}) == []
    # an operation the table does not know, and a status its row does not name
    assert flagged("no operation", "GET", ARM, WS_PATH + "/jobs", {}, 200, READS, {})
    assert flagged("without the api-version", "GET", ARM, WS_PATH, {}, 200, READS, {})
    assert flagged("status 202", "DELETE", MMS_HOST, "/api" + WS_PATH + "/models/m", {}, 202, {}, None)
    # throttling headers only where the contract names them
    assert flagged("no such header", "GET", EXP, RUNS, {}, 200, READS, page)
    assert flagged("no x-ms-ratelimit", "GET", ARM, WS_PATH, {}, 200, {}, {})
    assert flagged(
        "Retry-After missing", "GET", ARM, WS_PATH, {}, 429, READS, {"error": {"code": "c", "message": ""}}
    )
    assert flagged(
        "Retry-After sent",
        "GET",
        EXP,
        RUNS,
        {},
        429,
        {"retry-after": "1"},
        {"error": {"code": "c", "message": ""}},
    )
    # each service's own error body
    arm_error = {"error": {"code": "NotFound", "message": "m"}}
    assert flagged(
        "ModelErrorResponse", "GET", MMS_HOST, "/api" + WS_PATH + "/models/m", {}, 404, {}, arm_error
    )
    assert flagged(
        "'Error'", "GET", "westeurope.aether.ms", "/api/v1.0" + WS_PATH + "/Graphs/g", {}, 404, {}, arm_error
    )
    assert flagged(
        "no 'error'",
        "GET",
        EXP,
        RUNS,
        {},
        404,
        {},
        {"code": "NotFound", "statusCode": 404, "message": "", "details": []},
    )
    # paging: how the last page says so, and where the next one is
    assert flagged(
        "empty nextLink", "GET", ARM, WS_PATH + "/computes", {}, 200, READS, {"value": [], "nextLink": None}
    )
    assert flagged("disagree", "GET", EXP, RUNS, {}, 200, {}, {**page, "nextLink": None})
    assert flagged(
        "does not carry",
        "GET",
        EXP,
        RUNS,
        {},
        200,
        {},
        {**page, "nextLink": f"https://h{RUNS}?continuationToken=t"},
    )
    assert flagged("on a page of", "GET", EXP, RUNS, {"$top": "1"}, 200, {}, {**page, "value": [{}, {}]})
    # what a 202 must carry, and no body where the contract has none
    assert flagged(
        "Operation-Location", "DELETE", MMS_HOST, "/api" + WS_PATH + "/services/s", {}, 202, {}, None
    )
    assert flagged("a body", "DELETE", MMS_HOST, "/api" + WS_PATH + "/models/m", {}, 204, {}, {"x": 1})
