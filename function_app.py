"""The Azure Functions app: triggers only. Each hands over to the domain package `shared` in a line or two: the
HTTP functions, one per row of the route table, to `routes.handle`; the queue and timer functions below."""

from __future__ import annotations

import json
from collections.abc import Callable

import azure.functions as func

from shared.core import settings, telemetry
from shared.edge import offboarding, routes
from shared.lifecycle import (
    callbacks,
    completion,
    deadlines,
    intake,
    planning,
    recovery,
    retention,
    workspace_checks,
)
from shared.runtime import get_runtime
from shared.tasks import dispatch

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _http_function(route: routes.Route) -> Callable[[func.HttpRequest], func.HttpResponse]:
    """The function serving one row of the route table, named as the row names it."""

    def http_function(req: func.HttpRequest) -> func.HttpResponse:
        return routes.handle(req, route.handler)

    http_function.__name__ = http_function.__qualname__ = route.function
    return http_function


# The HTTP API: one function per row of the route table (shared/edge/routes.py: path, method, roles, handler).
for route in routes.ROUTES:
    level = func.AuthLevel.ANONYMOUS if route.roles == routes.ANONYMOUS else func.AuthLevel.FUNCTION
    app.route(route=route.path, methods=[route.method], auth_level=level)(_http_function(route))


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
    intake.release_scheduled(get_runtime())


@app.queue_trigger(
    arg_name="msg", queue_name=settings.WORK_QUEUE + "-poison", connection=settings.STORAGE_CONNECTION
)
def work_poison(msg: func.QueueMessage) -> None:
    body = json.loads(msg.get_body())
    with telemetry.correlation(body["requestId"]):
        recovery.task_poisoned(get_runtime(), body["requestId"], body["taskId"], msg.dequeue_count)


@app.queue_trigger(
    arg_name="msg", queue_name=settings.PLAN_QUEUE + "-poison", connection=settings.STORAGE_CONNECTION
)
def plan_poison(msg: func.QueueMessage) -> None:
    request_id = json.loads(msg.get_body())["requestId"]
    with telemetry.correlation(request_id):
        recovery.request_poisoned(get_runtime(), request_id, "plan", msg.dequeue_count)


@app.queue_trigger(
    arg_name="msg", queue_name=settings.FINALIZE_QUEUE + "-poison", connection=settings.STORAGE_CONNECTION
)
def finalize_poison(msg: func.QueueMessage) -> None:
    request_id = json.loads(msg.get_body())["requestId"]
    with telemetry.correlation(request_id):
        recovery.request_poisoned(get_runtime(), request_id, "finalize", msg.dequeue_count)


@app.timer_trigger(arg_name="timer", schedule="0 15 * * * *")
def mark_deadlines(timer: func.TimerRequest) -> None:
    deadlines.mark_deadlines(get_runtime())


@app.timer_trigger(arg_name="timer", schedule="0 30 2 * * *")
def purge_packages(timer: func.TimerRequest) -> None:
    retention.purge_expired_packages(get_runtime())


@app.timer_trigger(arg_name="timer", schedule="0 45 */6 * * *")
def recheck_workspaces(timer: func.TimerRequest) -> None:
    workspace_checks.recheck_workspace_erasures(get_runtime())


@app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
def sweep(timer: func.TimerRequest) -> None:
    recovery.sweep(get_runtime())


@app.queue_trigger(arg_name="msg", queue_name=settings.PLAN_QUEUE, connection=settings.STORAGE_CONNECTION)
def plan(msg: func.QueueMessage) -> None:
    request_id = json.loads(msg.get_body())["requestId"]
    with telemetry.correlation(request_id):
        planning.plan(get_runtime(), request_id)


@app.queue_trigger(arg_name="msg", queue_name=settings.WORK_QUEUE, connection=settings.STORAGE_CONNECTION)
def work(msg: func.QueueMessage) -> None:
    body = json.loads(msg.get_body())
    with telemetry.correlation(body["requestId"]):
        dispatch.execute(get_runtime(), body["requestId"], body["taskId"])


@app.queue_trigger(arg_name="msg", queue_name=settings.FINALIZE_QUEUE, connection=settings.STORAGE_CONNECTION)
def finalize(msg: func.QueueMessage) -> None:
    request_id = json.loads(msg.get_body())["requestId"]
    with telemetry.correlation(request_id):
        completion.finalize(get_runtime(), request_id)


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
