"""Which v2 (ARM) records belong to the subject.

1. Identity. `systemData.createdBy` equal (canonical form, shared/core/matching.py) to one of the subject's
   identifiers (the UPN, mail and other mails Graph resolved) ties a record to the subject, unless
   `createdByType` says an application made it: an application's record is never a person's. A compute
   instance is matched by the identity matcher on `createdBy.userId` or its assigned user's object id.
2. Someone else's. A createdBy that is an e-mail-shaped value other than the subject's is another person's,
   once the subject's UPN or mail is known. A display name is never compared (two people share a name).
3. Rules that do not depend on the form of createdBy, for a record rule 1 and 2 leave undecided (a display
   name, or a subject known by object id only):
   - a job is the subject's when it is the subject's run in run history (a v2 job is a run: E6 lists it under
     its experiment with createdBy.userObjectId);
   - a model or data version is the subject's when the subject's job produced it (`jobName`, or an output
     path in the job's artifact container `ExperimentRun/dcid.<job>`);
   - a child job (never listed by Jobs_List) is the subject's when run history names the subject's pipeline
     job as its parent (shared/tasks/v2_families.py).
   Connections name nobody (`systemData: null`): matched by no rule.
A record left undecided is counted per family (`creatorUndecided:<family>`) and the manifest says which v2
families could not be matched by identity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.aml.catalog import CREATOR_UNDECIDED, ENDPOINTS
from shared.core.matching import canonical
from shared.tasks.context import TaskContext, list_all
from shared.tasks.rules import subject_run_ids

Keep = Callable[[dict[str, Any]], str | None]


def identity(ctx: TaskContext, item: dict[str, Any]) -> str | None:
    """ "systemData.createdBy" when it names the subject; "" when it is decidedly someone else's (an
    application's, or another e-mail-shaped identifier while the subject's UPN or mail is known); None when it
    cannot be decided (a display name, no creator, or a subject known by object id only)."""
    subject = ctx.matcher.subject
    assert subject is not None
    data = item.get("systemData")
    data = data if isinstance(data, dict) else {}
    if str(data.get("createdByType") or "").casefold() == "application":
        return ""
    who = canonical(data.get("createdBy"))
    if who is None:
        return None
    if who in subject.identifiers():
        return "systemData.createdBy"
    knows_name = any((subject.user_principal_name, subject.email, *subject.other_emails))
    return "" if knows_name and "@" in who else None


def keep_rule(ctx: TaskContext, family: str) -> Keep | None:
    """The keep-decision of a v2 output family, or None for a whole-workspace export (every record kept)."""
    if ctx.matcher.subject is None:
        return None
    if family == "connections":
        return lambda _item: None
    fallback = FALLBACKS.get(family)

    def keep(item: dict[str, Any]) -> str | None:
        reason = identity(ctx, item)
        if reason is not None:
            return reason or None
        found = fallback(ctx, item) if fallback else None
        if found is None and (item.get("systemData") or {}).get("createdBy"):
            ctx.count(CREATOR_UNDECIDED + family)
        return found

    return keep


def by_run_history(ctx: TaskContext, job: dict[str, Any]) -> str | None:
    """The job's name is one of the subject's run ids in this workspace (E5/E6, createdBy.userObjectId)."""
    name = job.get("name")
    if isinstance(name, str) and name in subject_run_ids(ctx):
        return f"the subject's run {name} in run history (E6 createdBy; a v2 job is a run)"
    return None


def by_subject_job(ctx: TaskContext, version: dict[str, Any]) -> str | None:
    """A model or data version the subject's job produced: its jobName, or an output path in the job's
    artifact container."""
    props = version.get("properties") or {}
    jobs = subject_job_names(ctx)
    job = props.get("jobName")
    if isinstance(job, str) and job in jobs:
        return f"produced by the subject's job {job} (jobName)"
    for key in ("modelUri", "dataUri"):
        uri = props.get(key)
        if isinstance(uri, str):
            made_by = next((j for j in sorted(jobs) if f"ExperimentRun/dcid.{j}/" in uri + "/"), None)
            if made_by:
                return f"output of the subject's job {made_by} ({key})"
    return None


FALLBACKS: dict[str, Callable[[TaskContext, dict[str, Any]], str | None]] = {
    "jobs": by_run_history,
    "model_versions": by_subject_job,
    "data_versions": by_subject_job,
}


def subject_job_names(ctx: TaskContext) -> frozenset[str]:
    """The names of the subject's jobs in this workspace (V1, decided as the jobs task decides), cached in the
    task's checkpoint."""
    cached = ctx.task.checkpoint.get("subjectJobs")
    if cached is None:
        v1 = ENDPOINTS["V1"]
        names: list[str] = []
        for job in list_all(ctx, v1, ctx.url(v1)):
            reason = identity(ctx, job)
            if reason is None:
                reason = by_run_history(ctx, job)
            if reason and isinstance(job.get("name"), str):
                names.append(job["name"])
        cached = ctx.task.checkpoint["subjectJobs"] = sorted(set(names))
    return frozenset(cached)
