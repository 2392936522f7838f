"""The two documents finalize writes from a request's tasks: manifest.json (what was exported, per family and
file, what was withheld and why, what the APIs cannot cover) and, for an erasure, erasure-record.json (every
item with its DELETE and its verification, counts per family, what cannot be erased)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from shared.aml.catalog import CREATOR_UNDECIDED, FAMILY_TITLES, NOT_COVERED, NOT_ERASABLE, NOT_MATCHABLE
from shared.core.model import DsrRequest, Task, iso, utcnow
from shared.runtime import Runtime

# The order an erasure works through a workspace's families (dependents first), and the record lists them in.
ERASE_RANK = {"services": 1, "images": 2, "models": 3, "assets": 4, "workspace": 5}


def build_manifest(
    request: DsrRequest, tasks: list[Task], erasure_record: dict[str, Any] | None = None
) -> dict[str, Any]:
    """manifest.json: the request, every file the tasks wrote, counts per family, the pipeline objects named
    (and those of others only counted), failed tasks, and what the APIs do not cover or let be matched."""
    files = []
    families: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for task in sorted(tasks, key=lambda t: t.task_id):
        family = families[task.kind]
        family["tasks"] += 1
        family["failed"] += task.status == "failed"
        for key in ("calls", "pages", "seen", "kept", "retries", "throttled", "redacted"):
            family[key] += int(task.stats.get(key, 0))
        for output, info in sorted(task.outputs.items()):
            if output == "erasure":
                continue  # folded into erasure-record.json
            files.append(
                {
                    "family": output,
                    "workspace": task.workspace.arm_id if task.workspace else None,
                    **{key: value for key, value in info.items() if key != "zip"},
                }
            )
    pipelines, withheld = _pipeline_objects(tasks)
    return {
        "request": {
            "id": request.id,
            "type": request.type,
            "reference": request.reference,
            "subject": request.subject.as_dict() if request.subject else None,
            "identity": request.identity,
            "wholeWorkspace": request.subject is None,
            "scope": request.scope,
            "receivedAt": iso(request.received_at),
            "dueAt": iso(request.due_at),
        },
        "generatedAt": iso(utcnow()),
        "format": "JSON Lines: one object per line, {endpoint, workspace, matchedBy, record}",
        "files": sorted(files, key=lambda f: f["path"]),
        "families": {name: dict(counts) for name, counts in sorted(families.items())},
        "pipelineObjects": pipelines,
        "pipelineObjectsOfOthers": {
            "count": sum(withheld.values()),
            "byKind": dict(sorted(withheld.items())),
            "why": "Fetched because a pipeline run points to them (the subject's object can sit in someone "
            "else's pipeline); created by someone else or found only through someone else's runs, so neither "
            "exported nor named here.",
        },
        "failedTasks": [
            {
                "task": t.task_id,
                "family": t.kind,
                "workspace": t.workspace.arm_id if t.workspace else None,
                "reason": t.error,
            }
            for t in tasks
            if t.status == "failed"
        ],
        "erasureRecord": erasure_record,
        "dryRun": request.dry_run,
        "notCovered": list(NOT_COVERED),
        # What the published contract does not let the product attribute to the subject (by family).
        "notMatchable": [*NOT_MATCHABLE, *undecided_families(tasks)] if request.subject is not None else [],
    }


def undecided_families(tasks: list[Task]) -> list[dict[str, Any]]:
    """The v2 families where records named their creator in a form that is never compared (a display name) or
    could not be compared (the subject's UPN and mail unknown), and no rule tied them to the subject."""
    counts: dict[str, int] = defaultdict(int)
    for task in tasks:
        for key, value in task.stats.items():
            if key.startswith(CREATOR_UNDECIDED):
                counts[key.removeprefix(CREATOR_UNDECIDED)] += int(value)
    return [
        {
            "family": family,
            "what": f"{FAMILY_TITLES.get(family, family)} not matched by identity",
            "why": f"{count} record(s) name their creator in systemData.createdBy by a display name (never "
            "compared: two people share a name), or the subject's UPN and mail were unknown; no rule (run "
            "history, the subject's job) tied them to the subject.",
        }
        for family, count in sorted(counts.items())
    ]


def _pipeline_objects(tasks: list[Task]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The pipeline objects the `pipelines` tasks fetched that the manifest names, and the count by kind of
    those it withholds."""
    pipelines = []
    withheld: dict[str, int] = defaultdict(int)
    for task in sorted(tasks, key=lambda t: t.task_id):
        if task.kind != "pipelines":
            continue
        for kind, oid, why, *rest in task.checkpoint.get("fetched", []):
            # Another person's pipeline objects (and the runs that led to them) are counted, never named:
            # an id is listed only for what was exported or what the subject's own run names.
            named = rest[1] if len(rest) > 1 else "not exported" not in why and rest[:1] != ["other"]
            if not named:
                withheld[kind] += 1
                continue
            pipelines.append(
                {
                    "workspace": task.workspace.arm_id if task.workspace else None,
                    "kind": kind,
                    "id": oid,
                    "why": why,
                }
            )
    return pipelines, withheld


def build_erasure_record(rt: Runtime, request: DsrRequest, tasks: list[Task]) -> dict[str, Any]:
    """erasure-record.json: every item the erase tasks wrote (read back from their outputs), ordered by
    workspace and erase order, with counts per family and outcome, failed tasks, and what is not erasable."""
    items: list[dict[str, Any]] = []
    for task in tasks:
        output = task.outputs.get("erasure")
        if output:
            data = rt.storage.container.get_blob_client(output["path"]).download_blob().readall()
            items.extend(json.loads(line) for line in data.splitlines() if line.strip())
    items.sort(key=lambda i: (str(i["workspace"]), ERASE_RANK.get(i["family"], 9), str(i["id"])))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item in items:
        counts[item["family"]][item["outcome"]] += 1
    return {
        "request": {
            "id": request.id,
            "reference": request.reference,
            "subject": request.subject.as_dict() if request.subject else None,
            "identity": request.identity,
            "deleteWorkspace": request.delete_workspace,
            "dryRun": request.dry_run,
            "submittedBy": request.submitted_by,
            "decision": request.decision,
            "receivedAt": iso(request.received_at),
        },
        "generatedAt": iso(utcnow()),
        "items": items,
        "counts": {family: dict(c) for family, c in sorted(counts.items())},
        "failedTasks": [
            {"task": t.task_id, "workspace": t.workspace.arm_id if t.workspace else None, "reason": t.error}
            for t in tasks
            if t.status == "failed"
        ],
        "notErasable": list(NOT_ERASABLE),
    }
