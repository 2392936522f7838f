"""A small Functions app for the local host's tests, written with the real `azure.functions` decorators.

Queue and timer functions record what they got in RECORDS (the tests run the host in-process, so they can
read it). Message bodies steer the `work` function: `fail...` raises, `sleep:<seconds>:...` sleeps first.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

RECORDS: list[dict[str, Any]] = []
_LOCK = threading.Lock()


def record(kind: str, **data: Any) -> None:
    with _LOCK:
        RECORDS.append({"kind": kind, **data})


def records(kind: str, **match: Any) -> list[dict[str, Any]]:
    with _LOCK:
        return [r for r in RECORDS if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())]


@app.route(route="items/{id:int}/{name?}", methods=["GET"])
def get_item(req: func.HttpRequest) -> func.HttpResponse:
    doc = {
        "id": req.route_params["id"],
        "name": req.route_params.get("name"),
        "q": req.params.get("q"),
        "header": req.headers.get("x-demo"),
        "method": req.method,
        "url": req.url,
    }
    headers = {"X-Item": req.route_params["id"]}
    return func.HttpResponse(json.dumps(doc), status_code=200, mimetype="application/json", headers=headers)


@app.route(route="requests/pending", methods=["GET"])
def pending(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pending list", status_code=200)


@app.route(route="requests/{rid}", methods=["GET"])
def get_request(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"request {req.route_params['rid']}", status_code=200)


@app.route(route="requests/{rid:guid}:approve", methods=["POST"])
def approve(req: func.HttpRequest) -> func.HttpResponse:
    rid = req.route_params["rid"]
    doc = {"rid": rid, "approved_by": req.get_json().get("by")}
    return func.HttpResponse(
        json.dumps(doc),
        status_code=202,
        mimetype="application/json",
        headers={"Location": f"/api/requests/{rid}"},
    )


@app.route(route="echo/{*rest}", methods=["POST", "PUT"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.01)
    return func.HttpResponse(
        req.get_body(),
        status_code=200,
        mimetype="application/octet-stream",
        headers={"X-Rest": req.route_params.get("rest", ""), "X-Thread": threading.current_thread().name},
    )


@app.route(route="secure/ping", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def secure_ping(req: func.HttpRequest) -> str:
    return "pong"


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom on purpose")


@app.route(route="nothing", methods=["GET"])
def nothing(req: func.HttpRequest) -> None:
    """Returns nothing: the HTTP output binding cannot encode None, so the invocation fails."""


@app.queue_trigger(arg_name="msg", queue_name="%FUNCHOST_SAMPLE_QUEUE%", connection="AzureWebJobsStorage")
def work(msg: func.QueueMessage, context: func.Context) -> None:
    body = msg.get_body().decode("utf-8")
    logging.info("work got %s", body)
    record(
        "work",
        body=body,
        id=msg.id,
        dequeue_count=msg.dequeue_count,
        invocation_id=context.invocation_id,
        function_name=context.function_name,
        at=time.time(),
    )
    if body.startswith("sleep:"):
        time.sleep(float(body.split(":")[1]))
    if body.startswith("fail"):
        raise RuntimeError(f"failing on purpose: {body}")


@app.timer_trigger(arg_name="timer", schedule="%FUNCHOST_SAMPLE_SCHEDULE%", use_monitor=False)
def tick(timer: func.TimerRequest) -> None:
    record("tick", past_due=timer.past_due, at=time.time(), status=timer.schedule_status)
