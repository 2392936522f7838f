"""The subject-scoped erasure, one `erase` task per workspace: for services, images, models, assets (dependents
first) list and match the subject's objects, then delete each one and read it back until it answers 404. A
DELETE answered 202 is a model-management operation, polled by delayed messages until it ends. A dry run
deletes nothing.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

from shared.aml.catalog import ENDPOINTS, FAMILIES, MODELS, Endpoint
from shared.aml.client import AmlError, error_fields, safe_url
from shared.core.model import iso, utcnow
from shared.core.outbound import DisallowedUrlError
from shared.core.transport import parse_retry_after
from shared.evidence import audit
from shared.evidence.package import task_folder
from shared.tasks.context import TaskContext, WaitError, page_family
from shared.tasks.rules import rule_for, subject_model_ids

ERASE_ORDER = tuple(sorted((f for f in FAMILIES.values() if f.delete), key=lambda f: f.delete_order))


def in_use(exc: AmlError) -> bool:
    """Whether a refused DELETE means "still used by something": ARM's 409 Conflict, or model management's
    412 with code DeletionRequired (a model an image packages, an image a service runs: azureml-core
    core/model.py Model.delete and core/image/image.py Image.delete read exactly that)."""
    return exc.status == 409 or (exc.status == 412 and exc.code == "DeletionRequired")


def run_erase(ctx: TaskContext) -> None:
    """One workspace: for services, images, models, assets (dependents first), list and match the subject's
    objects, then delete each one and read it back until it answers 404. A dry run deletes nothing."""
    checkpoint = ctx.task.checkpoint
    path = f"{task_folder(ctx.task)}/erasure.jsonl"
    for family in ERASE_ORDER:
        items: list[dict[str, str]] = checkpoint.setdefault("items", {}).setdefault(family.name, [])

        def collect(
            item: dict[str, Any],
            found: list[dict[str, str]] = items,
            id_field: str = family.id_field,
            family_name: str = family.name,
        ) -> str | None:
            reason = erase_reason(ctx, family_name, item)
            key = item.get(id_field)
            if reason and isinstance(key, str) and key and all(i["id"] != key for i in found):
                found.append({"id": key, "name": str(item.get("name") or ""), "matchedBy": reason})
            return None  # nothing is written while collecting

        page_family(ctx, family.name, "erasure", path, cursor_key=f"list:{family.name}", keep=collect)
        done_key = f"erased:{family.name}"
        for index in range(checkpoint.get(done_key, 0), len(items)):
            entry = erase_one(ctx, family.name, items[index])
            ctx.writer.stage(ctx.task, "erasure", path, [entry])
            ctx.count("deleted" if entry["outcome"] in ("deleted", "already gone") else entry["outcome"])
            checkpoint[done_key] = index + 1
            ctx.save()
            ctx.check_time()


def erase_reason(ctx: TaskContext, family_name: str, item: dict[str, Any]) -> str | None:
    """Why an object is deleted in the subject's erasure, or None. Models and services: their createdBy names
    the subject's object id (shared/core/matching.py). Images and assets name no creator, so they are deleted by a
    stricter rule than the export's: an image only when EVERY model it packages is the subject's (an image that
    also packages someone else's model is left, and blocks nothing of hers it does not hold); an asset when its
    runid is the subject's run."""
    if ctx.matcher.subject is None:
        return ctx.matcher.reason(item)
    if family_name == "images":
        if ctx.matcher.names_other(item):
            return None
        model_ids = [m for m in item.get("modelIds") or [] if isinstance(m, str)]
        if model_ids and set(model_ids) <= subject_model_ids(ctx):
            return f"image packaging only the subject's models {', '.join(model_ids)} (modelIds; no creator field)"
        return None
    if family_name == "assets":
        rule = rule_for(ctx, "assets")
        return rule(item) if rule is not None else ctx.matcher.reason(item)
    return ctx.matcher.reason(item)


# A service DELETE may answer 202: the deletion runs as a model-management operation.
# - azure-rest-api-specs, specification/machinelearningservices/data-plane/Microsoft.MachineLearningServices/
#   preview/2019-09-30/modelManagement.json: `Services_Delete` answers 200, 202 or 204; `Operations_Get`
#   (GET .../workspaces/{workspace}/operations/{id}, no api-version) answers an `AsyncOperationStatus`
#   {id, operationType, state, createdTime, endTime, error (ModelErrorResponse), resourceLocation} whose `state`
#   is NotStarted | Running | Cancelled | Succeeded | Failed | TimedOut. The spec documents the
#   `Operation-Location` header on the service's other 202 answers; it names none on the delete's 202.
# - azureml-core 1.61 (azureml/core/webservice/webservice.py, Webservice.delete and
#   _wait_for_operation_to_complete): a delete's 202 must carry `Operation-Location`; the client takes its last
#   path segment as the operation id, polls `<model management URL of the workspace>/operations/{id}` every 5 s
#   until Succeeded, Failed, Cancelled or TimedOut, and reads `state` and `error` from the body.
# The product does the same without a sleeping worker: each poll is one queue message (WaitError, delayed by
# Retry-After when the service sends one, else 5 s); the operation URL is checkpointed, so a re-delivered
# message resumes polling and never sends a second DELETE. The service stays readable while its operation runs,
# so nothing is verified before the operation has ended: until then the item is `pending`. After
# OPERATION_MAX_POLLS polls still running, the item's outcome is `pending` with the operation URL recorded (the
# request then completes with errors; a retry of the request sends the DELETE again, which the service answers
# with the running operation).
MMS_OPERATION = Endpoint(
    "D5-operation", "a model-management operation", "modelmanagement", MODELS + "/operations/{operationId}"
)
OPERATION_ENDED = frozenset({"Succeeded", "Failed", "Cancelled", "TimedOut"})
OPERATION_MAX_POLLS = 40
OPERATION_POLL_SECONDS = 5.0  # azureml-core's interval, when the answer carries no Retry-After


def erase_one(ctx: TaskContext, family_name: str, item: dict[str, str]) -> dict[str, Any]:
    family = FAMILIES[family_name]
    assert family.delete is not None
    assert family.detail is not None
    delete, detail = ENDPOINTS[family.delete], ENDPOINTS[family.detail]
    ws = ctx.task.workspace
    inflight = ctx.task.checkpoint.get("operation")
    detail_url = ctx.url(detail, None, **{family.detail_param: item["id"]})
    if inflight and (inflight["family"], inflight["id"]) == (family_name, item["id"]):
        return follow_operation(ctx, inflight, detail_url)
    sending = ctx.task.checkpoint.get("sending")
    if (
        sending
        and (sending["family"], sending["id"]) == (family_name, item["id"])
        and family_name in ASYNC_DELETES
    ):
        return after_lost_answer(ctx, sending, detail_url)
    entry: dict[str, Any] = {
        "family": family_name,
        "endpoint": delete.id,
        "workspace": ws.arm_id if ws else None,
        "id": item["id"],
        "name": item["name"],
        "matchedBy": item["matchedBy"],
        "delete": None,
        "operation": None,
        "verification": None,
    }
    if ctx.request.dry_run:
        entry["outcome"] = "would delete"
        return entry
    url = ctx.url(delete, None, **{family.detail_param: item["id"]})
    sent = {"endpoint": delete.id, "family": family_name, "workspace": entry["workspace"], "id": item["id"]}
    if family_name in ASYNC_DELETES:
        # Said before the DELETE goes: a restart that loses its answer must not send it again (see after_lost_answer)
        ctx.task.checkpoint["sending"] = {"family": family_name, "id": item["id"], "entry": entry, "polls": 0}
        ctx.save()
    try:
        response = ctx.rt.aml.request("DELETE", url, stats=ctx.stats, ok=frozenset({200, 202, 204}))
        entry["delete"] = {"status": response.status_code, "at": iso(utcnow())}
        audit.record(
            ctx.rt,
            ctx.task.request_id,
            "tasks.erase",
            audit.DELETE_SENT,
            None,
            {**sent, "status": response.status_code},
        )
    except AmlError as exc:
        audit.record(
            ctx.rt,
            ctx.task.request_id,
            "tasks.erase",
            audit.DELETE_SENT,
            None,
            {**sent, "status": exc.status, "error": exc.code},
        )
        ctx.task.checkpoint.pop("sending", None)
        if not in_use(exc):
            raise
        entry["delete"] = {
            "status": exc.status,
            "at": iso(utcnow()),
            "error": exc.code,
            "message": exc.message,
        }
        entry["outcome"] = (
            "blocked"  # still used by something that is not the subject's: reported, not forced
        )
        return entry
    ctx.task.checkpoint.pop("sending", None)  # the answer arrived: what follows is checkpointed on its own
    if response.status_code == 202:
        return start_operation(ctx, family_name, item["id"], entry, response)  # WaitError unless refused
    ctx.task.checkpoint.pop("sending", None)
    entry["verification"] = verify_gone(ctx, detail_url)
    gone = entry["verification"]["status"] == 404
    entry["outcome"] = (
        ("deleted" if response.status_code != 204 else "already gone") if gone else "still visible"
    )
    return entry


# Families whose DELETE may answer 202 and leave the object readable while its operation runs (D5 services).
ASYNC_DELETES = frozenset({"services"})


def after_lost_answer(ctx: TaskContext, sending: dict[str, Any], detail_url: str) -> dict[str, Any]:
    """A DELETE was sent and the task restarted before its answer was kept. Sending it again could start a
    second deletion (the contract does not say what a DELETE during a running one does), so the object is read
    instead, as its operation would be polled: gone -> deleted; still there -> read again later (WaitError), up
    to OPERATION_MAX_POLLS times, then `pending` (the DELETE's operation is unknown)."""
    entry: dict[str, Any] = sending["entry"]
    entry["delete"] = {
        "status": None,
        "at": iso(utcnow()),
        "note": "sent before a restart; its answer was lost",
    }
    try:
        ctx.rt.aml.request("GET", detail_url, stats=ctx.stats, ok=frozenset({200}))
    except AmlError as exc:
        if exc.status != 404:
            raise
        ctx.task.checkpoint.pop("sending", None)
        entry["verification"] = {"status": 404, "at": iso(utcnow()), "attempts": int(sending["polls"]) + 1}
        entry["outcome"] = "deleted"
        return entry
    sending["polls"] = int(sending["polls"]) + 1
    if sending["polls"] < OPERATION_MAX_POLLS:
        ctx.save()
        raise WaitError(OPERATION_POLL_SECONDS)
    ctx.task.checkpoint.pop("sending", None)
    entry["verification"] = {"status": 200, "at": iso(utcnow()), "attempts": sending["polls"]}
    entry["outcome"] = "pending"
    return entry


def start_operation(
    ctx: TaskContext, family_name: str, object_id: str, entry: dict[str, Any], response: Any
) -> dict[str, Any]:
    """A DELETE answered 202: checkpoint the operation to poll, then come back after Retry-After (WaitError).

    An operation that cannot be followed (no Operation-Location, one on a host off the allow-list, which is
    never contacted, or an operation id that cannot be one URL path segment) leaves the item `pending` with the
    reason; the other items go on."""
    location = str(response.headers.get("Operation-Location") or "").strip()
    operation_id = unquote(location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]) if location else ""
    refused = None
    url = ""
    if not operation_id:
        refused = {"code": "NoOperationLocation", "message": "202 without an Operation-Location header"}
    elif "://" in location and not ctx.rt.aml.allow_list.allows(location):
        refused = {
            "code": "RefusedOperationLocation",
            "message": f"refused to follow an outbound URL: {safe_url(location)} is not on the allow-list",
        }
    else:
        # Polled on the workspace's own model-management host, as azureml-core does; request() checks the
        # allow-list again before the token goes out. An operation id that cannot be one path segment is
        # refused here (Endpoint.render), before any URL exists.
        try:
            url = ctx.url(MMS_OPERATION, None, operationId=operation_id)
        except DisallowedUrlError as exc:
            refused = {
                "code": "RefusedOperationLocation",
                "message": f"refused to follow an outbound URL: {exc}",
            }
    if refused is not None:
        entry["operation"] = {"id": None, "url": None, "status": None, "polls": 0, "at": iso(utcnow())}
        entry["operation"]["error"] = refused
        entry["outcome"] = "pending"
        return entry
    ctx.rt.aml.allow_list.check(url)
    entry["operation"] = {"id": operation_id, "url": safe_url(url), "status": None, "polls": 0, "at": None}
    ctx.task.checkpoint["operation"] = {"family": family_name, "id": object_id, "url": url, "entry": entry}
    ctx.save()
    raise WaitError(parse_retry_after(response.headers.get("Retry-After"), OPERATION_POLL_SECONDS))


def follow_operation(ctx: TaskContext, inflight: dict[str, Any], detail_url: str) -> dict[str, Any]:
    """One poll of a checkpointed operation: wait again while it runs (up to OPERATION_MAX_POLLS), then verify."""
    entry: dict[str, Any] = inflight["entry"]
    operation: dict[str, Any] = entry["operation"]
    try:
        response = ctx.rt.aml.request("GET", inflight["url"], stats=ctx.stats, ok=frozenset({200}))
    except AmlError as exc:
        if exc.status != 404:
            raise
        # The operation's record is gone (the service keeps them for a while only): what happened is read from
        # the object itself, as after an operation that ended: gone is deleted, still there is still visible.
        operation.update(status="unknown (operation not found)", polls=int(operation.get("polls") or 0) + 1)
        operation.update(at=iso(utcnow()), error={"code": exc.code, "message": exc.message})
        entry["verification"] = verify_gone(ctx, detail_url)
        entry["outcome"] = "deleted" if entry["verification"]["status"] == 404 else "still visible"
        ctx.task.checkpoint.pop("operation", None)
        return entry
    body = getattr(response, "parsed", None) or response.json()
    state = str(body.get("state") or "") if isinstance(body, dict) else ""
    operation.update(status=state or None, polls=int(operation.get("polls") or 0) + 1, at=iso(utcnow()))
    ctx.count("polls")
    if state not in OPERATION_ENDED:  # NotStarted, Running, or a state the spec does not name
        if operation["polls"] < OPERATION_MAX_POLLS:
            ctx.save()
            raise WaitError(parse_retry_after(response.headers.get("Retry-After"), OPERATION_POLL_SECONDS))
        # The bound: the object is not verified (it stays readable while its operation runs).
        entry["outcome"] = "pending"
    elif state == "Succeeded":
        entry["verification"] = verify_gone(ctx, detail_url)
        entry["outcome"] = "deleted" if entry["verification"]["status"] == 404 else "still visible"
    else:
        error = body.get("error")
        if error:
            code, message = error_fields(error, 0)
            operation["error"] = {"code": code, "message": message}
        entry["verification"] = verify_gone(ctx, detail_url)
        entry["outcome"] = f"operation {state.lower()}"
    ctx.task.checkpoint.pop("operation", None)
    return entry


def verify_gone(ctx: TaskContext, url: str) -> dict[str, Any]:
    """Read the object back until it answers 404, a few times with a short backoff; never silently passes."""
    attempts = ctx.rt.settings.delete_verify_attempts
    status = 0
    for attempt in range(1, attempts + 1):
        try:
            ctx.rt.aml.request("GET", url, stats=ctx.stats, ok=frozenset({200}))
            status = 200
        except AmlError as exc:
            if exc.status != 404:
                raise
            return {"status": 404, "at": iso(utcnow()), "attempts": attempt}
        if attempt < attempts:
            time.sleep(min(4.0, 0.25 * 2 ** (attempt - 1)))
    return {"status": status, "at": iso(utcnow()), "attempts": attempts}
