"""Intake: a submitted request is stored (once per Idempotency-Key), its subject indexed, and it starts: its
planning is enqueued, it waits for approval, or it is scheduled for later."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging

from azure.core.exceptions import ResourceExistsError

from shared.core import settings as names
from shared.core.errors import ConflictError, ForbiddenError, ValidationFailedError
from shared.core.matching import Subject
from shared.core.matching import canonical as canonical_id
from shared.core.model import DsrRequest, new_request_id, utcnow
from shared.core.principal import SYSTEM, Principal
from shared.evidence import audit
from shared.lifecycle import callbacks, deadlines
from shared.lifecycle.submission import SubmitIn
from shared.runtime import Runtime
from shared.storage.clients import MAX_QUEUE_DELAY_SECONDS
from shared.storage.store import ConcurrencyError

log = logging.getLogger(__name__)


def submit(
    rt: Runtime, body: SubmitIn, idempotency_key: str | None, principal: Principal = SYSTEM
) -> tuple[DsrRequest, bool]:
    """Store a validated request; enqueue its planning, or hold it for approval. Returns (request, replayed)."""
    if body.deleteWorkspace is not None and not rt.settings.allow_workspace_deletion:
        raise ForbiddenError("workspace deletion is disabled (setting DSR_ALLOW_WORKSPACE_DELETION)")
    callback_url = None
    if body.callbackUrl:
        try:
            callback_url = callbacks.check_url(rt.settings, body.callbackUrl)
        except ValueError as exc:
            raise ValidationFailedError(
                "the callback URL is not accepted",
                errors=[{"field": "callbackUrl", "message": str(exc)}],
            ) from None
    request_id = new_request_id()
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True)
    if idempotency_key:
        # A key is the caller's own: another caller using the same key gets a request of its own, never the
        # first caller's (function-key callers share one scope: the host does not say which key was used).
        scoped = f"{principal.source}|{canonical_id(principal.id)}|{idempotency_key}"
        key_hash = hashlib.sha256(f"{scoped}\n{canonical}".encode()).hexdigest()
        key_only = hashlib.sha256(scoped.encode()).hexdigest()
        owner = rt.store.claim_idempotency_key(key_only, f"{request_id}|{key_hash}")
        owner_id, _, owner_hash = owner.partition("|")
        if owner_id != request_id:
            if owner_hash != key_hash:
                raise ConflictError("this Idempotency-Key was already used with a different request body")
            existing = rt.store.get_request(owner_id)
            if existing is not None:
                return existing, True
            request_id = owner_id  # the first attempt claimed the key and stopped before storing: finish it
    subject = (
        Subject(body.subject.objectId, body.subject.userPrincipalName, body.subject.email)
        if body.subject
        else None
    )
    request = DsrRequest(
        id=request_id,
        type=body.type,
        subject=subject,
        scope=body.scope.model_dump(),
        received_at=utcnow(),
        reference=body.reference,
        idempotency_key=hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
        if idempotency_key
        else None,
        pipeline_ids=[p.model_dump() for p in body.pipelineIds],
        dry_run=body.dryRun,
        delete_workspace=body.deleteWorkspace.model_dump() if body.deleteWorkspace else None,
        submitted_by=principal.as_dict(),
        callback_url=callback_url,
    )
    if needs_approval(rt, request):
        request.status = "awaiting_approval"
    if not store_and_start(rt, request):
        existing = rt.store.get_request(request_id)
        assert existing is not None
        return existing, True
    stored = rt.store.get_request(request.id)
    return (stored or request), False


def needs_approval(rt: Runtime, request: DsrRequest) -> bool:
    """Whether a request waits for a second person's approval: a workspace deletion always; another erasure as
    the settings say, separately for offboarding events; a whole-workspace export (no subject: everyone's
    records) unless DSR_AUTO_APPROVE_WHOLE_WORKSPACE_EXPORT says otherwise. A subject's export and dry runs
    never wait."""
    if request.dry_run:
        return False
    if request.type == "export":
        return request.subject is None and not rt.settings.auto_approve_whole_workspace_export
    if request.delete_workspace:
        return True  # always, and by someone other than the submitter
    if request.source == "offboarding":
        return not rt.settings.offboarding_auto_approve
    return not rt.settings.auto_approve_erasure


def store_and_start(rt: Runtime, request: DsrRequest) -> bool:
    """Store a new request, index its subject, and enqueue its planning (now, or at `not_before`). False when
    a request with this id exists already (a retried submission)."""
    try:
        rt.store.create_request(request)
    except ResourceExistsError:
        return False
    audit.record(
        rt,
        request.id,
        request.submitted_by or "offboarding",
        audit.SUBMITTED,
        None,
        {
            "type": request.type,
            "status": request.status,
            "dryRun": request.dry_run,
            "source": request.source,
            "deleteWorkspace": bool(request.delete_workspace),
            "scope": request.scope,
        },
    )
    if request.subject is not None:
        rt.store.index_subject(request, [rt.pseudonym(i) for i in request.subject.identifiers()])
    if request.status == "accepted":
        rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id})
    elif request.status == "awaiting_approval":
        deadlines.announce(rt, request, "awaiting_approval")
    elif request.status == "scheduled" and schedule(rt, request):
        request.links["planEnqueued"] = True
        with contextlib.suppress(ConcurrencyError):
            rt.store.update_request(request)
    log.info(
        "request %s %s (%s%s, from %s)",
        request.id,
        request.status,
        request.type,
        ", dry run" if request.dry_run else "",
        request.source,
    )
    return True


def schedule(rt: Runtime, request: DsrRequest) -> bool:
    """Enqueue a scheduled request's planning, delayed until `not_before`, when that is within the queue's
    7-day visibility limit; a later start is picked up by the scheduler timer. Returns whether it enqueued."""
    assert request.not_before is not None
    delay = (request.not_before - utcnow()).total_seconds()
    if delay > MAX_QUEUE_DELAY_SECONDS:
        return False
    rt.storage.send(names.PLAN_QUEUE, {"requestId": request.id}, delay_seconds=max(0, delay) + 1)
    return True


def release_scheduled(rt: Runtime) -> int:
    """Timer: enqueue the scheduled requests whose start has come within the queue's delay limit (once)."""
    count = 0
    for request in rt.store.requests_with_status("scheduled"):
        if request.links.get("planEnqueued") or not request.not_before:
            continue
        if schedule(rt, request):
            request.links["planEnqueued"] = True
            with contextlib.suppress(ConcurrencyError):
                rt.store.update_request(request)
            count += 1
    return count
