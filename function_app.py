"""The Azure Functions app: triggers only. Each hands over to the domain package `shared` in a line or two."""

from __future__ import annotations

import json

import azure.functions as func

from shared.core import settings, telemetry
from shared.edge import http_api, http_lookup, http_ops, offboarding
from shared.lifecycle import callbacks, deadlines, workflow
from shared.runtime import get_runtime
from shared.tasks import dispatch

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="v1/requests", methods=["POST"])
def submit_request(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_api.submit)


@app.route(route="v1/requests/{id}", methods=["GET"])
def get_request(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_api.get_request)


@app.route(route="v1/requests/{id}:approve", methods=["POST"])
def approve_request(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_api.approve)


@app.route(route="v1/requests/{id}:reject", methods=["POST"])
def reject_request(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_api.reject)


@app.route(route="v1/requests/{id}:cancel", methods=["POST"])
def cancel_request(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_api.cancel)


@app.route(route="v1/requests/{id}:retry", methods=["POST"])
def retry_request(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_ops.retry)


@app.route(route="v1/requests/{id}:extend", methods=["POST"])
def extend_request(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_ops.extend_request)


@app.route(route="v1/requests/{id}/audit", methods=["GET"])
def get_request_audit(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_api.get_audit)


@app.route(route="v1/requests/{id}/package", methods=["GET"])
def get_request_package(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_api.get_package)


@app.route(route="v1/openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def get_openapi(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_api.get_openapi)


@app.route(route="v1/requests:search", methods=["POST"])
def search_requests(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_lookup.search_requests)


@app.route(route="v1/requests", methods=["GET"])
def list_requests(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_lookup.list_requests)


@app.route(route="v1/offboarding/events", methods=["GET"])
def list_offboarding_events(req: func.HttpRequest) -> func.HttpResponse:
    return http_api.handle(req, http_lookup.offboarding_events)


@app.queue_trigger(
    arg_name="msg", queue_name="%DSR_OFFBOARDING_QUEUE%", connection=settings.STORAGE_CONNECTION
)
def offboarding_event(msg: func.QueueMessage) -> None:
    offboarding.handle(get_runtime(), msg.get_body(), msg.id or "")


@app.queue_trigger(
    arg_name="msg", queue_name="%DSR_OFFBOARDING_QUEUE%-poison", connection=settings.STORAGE_CONNECTION
)
def offboarding_poison(msg: func.QueueMessage) -> None:
    offboarding.record_poison(get_runtime(), msg.get_body(), msg.id or "", msg.dequeue_count)


@app.timer_trigger(arg_name="timer", schedule="0 */30 * * * *")
def release_scheduled(timer: func.TimerRequest) -> None:
    workflow.release_scheduled(get_runtime())


@app.queue_trigger(
    arg_name="msg", queue_name=settings.WORK_QUEUE + "-poison", connection=settings.STORAGE_CONNECTION
)
def work_poison(msg: func.QueueMessage) -> None:
    body = json.loads(msg.get_body())
    with telemetry.correlation(body["requestId"]):
        workflow.task_poisoned(get_runtime(), body["requestId"], body["taskId"], msg.dequeue_count)


@app.queue_trigger(
    arg_name="msg", queue_name=settings.PLAN_QUEUE + "-poison", connection=settings.STORAGE_CONNECTION
)
def plan_poison(msg: func.QueueMessage) -> None:
    request_id = json.loads(msg.get_body())["requestId"]
    with telemetry.correlation(request_id):
        workflow.request_poisoned(get_runtime(), request_id, "plan", msg.dequeue_count)


@app.queue_trigger(
    arg_name="msg", queue_name=settings.FINALIZE_QUEUE + "-poison", connection=settings.STORAGE_CONNECTION
)
def finalize_poison(msg: func.QueueMessage) -> None:
    request_id = json.loads(msg.get_body())["requestId"]
    with telemetry.correlation(request_id):
        workflow.request_poisoned(get_runtime(), request_id, "finalize", msg.dequeue_count)


@app.timer_trigger(arg_name="timer", schedule="0 15 * * * *")
def mark_deadlines(timer: func.TimerRequest) -> None:
    deadlines.mark_deadlines(get_runtime())


@app.timer_trigger(arg_name="timer", schedule="0 30 2 * * *")
def purge_packages(timer: func.TimerRequest) -> None:
    workflow.purge_expired_packages(get_runtime())


@app.timer_trigger(arg_name="timer", schedule="0 45 */6 * * *")
def recheck_workspaces(timer: func.TimerRequest) -> None:
    workflow.recheck_workspace_erasures(get_runtime())


@app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
def sweep(timer: func.TimerRequest) -> None:
    workflow.sweep(get_runtime())


@app.queue_trigger(arg_name="msg", queue_name=settings.PLAN_QUEUE, connection=settings.STORAGE_CONNECTION)
def plan(msg: func.QueueMessage) -> None:
    request_id = json.loads(msg.get_body())["requestId"]
    with telemetry.correlation(request_id):
        workflow.plan(get_runtime(), request_id)


@app.queue_trigger(arg_name="msg", queue_name=settings.WORK_QUEUE, connection=settings.STORAGE_CONNECTION)
def work(msg: func.QueueMessage) -> None:
    body = json.loads(msg.get_body())
    with telemetry.correlation(body["requestId"]):
        dispatch.execute(get_runtime(), body["requestId"], body["taskId"])


@app.queue_trigger(arg_name="msg", queue_name=settings.FINALIZE_QUEUE, connection=settings.STORAGE_CONNECTION)
def finalize(msg: func.QueueMessage) -> None:
    request_id = json.loads(msg.get_body())["requestId"]
    with telemetry.correlation(request_id):
        workflow.finalize(get_runtime(), request_id)


@app.queue_trigger(arg_name="msg", queue_name=settings.CALLBACK_QUEUE, connection=settings.STORAGE_CONNECTION)
def deliver_callback(msg: func.QueueMessage) -> None:
    message = json.loads(msg.get_body())
    with telemetry.correlation(message.get("requestId")):
        callbacks.deliver(get_runtime(), message, msg.dequeue_count or 1)


@app.queue_trigger(
    arg_name="msg", queue_name=settings.CALLBACK_QUEUE + "-poison", connection=settings.STORAGE_CONNECTION
)
def callback_poison(msg: func.QueueMessage) -> None:
    callbacks.record_poison(get_runtime(), msg.get_body(), msg.dequeue_count)
