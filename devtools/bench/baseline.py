"""The obvious way: a plain script that follows the published procedure literally, one call after another.

For each subscription it lists the workspaces, and for each workspace walks the document's calls in order:
E2 (the workspace), E3/E4 (computes), E5 (experiments) and, for every experiment, E6/E7 (runs), E8/E9 (metrics)
and E10 (artifacts of the subject's runs), E11/E12 (notification tasks), E13/E14 (datastores, without secrets),
E15-E22 (models, assets, images, services), then E23-E27 (pipeline objects named by pipeline runs; a graph adds
its modules and data sources). Every list is followed to its last page (`nextLink`); every record of the
subject found in a list is read again by its own GET. One `requests.Session` (keep-alive), one token, no
threads, no retries (the benchmark's simulator injects no faults).

It keeps what the product keeps (the same matching rule, shared.core.matching), so both runs make about the same
calls and end with the same records: the comparison measures how the work is done, not how much of it.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from devtools.package_check import PIPELINE_TRUTH, record_id
from shared.core.matching import Matcher, Subject
from shared.core.settings import DEFAULT_MATCH_FIELDS

ARM_VERSION = "2019-11-01"
PROVIDER = "providers/Microsoft.MachineLearningServices/workspaces"
PIPELINE_ENDPOINTS = {
    "experiment": ("E23", "Experiments"),
    "graph": ("E24", "Graphs"),
    "module": ("E25", "Modules"),
    "template": ("E26", "Templates"),
    "datasource": ("E27", "DataSources"),
}


@dataclass
class BaselineResult:
    wall_s: float = 0.0
    calls: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    records: int = 0


class SequentialExporter:
    """`urls`: the service base URLs with `{location}` (the simulator's, or Azure's); `token`: a bearer token."""

    def __init__(self, urls: dict[str, str], token: str, subject: Subject, verify: str | bool = True) -> None:
        self.urls = urls
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json"})
        self.verify = verify
        self.matcher = Matcher(subject, [f.strip() for f in DEFAULT_MATCH_FIELDS.split(",")])
        self.result = BaselineResult()

    # -- HTTP -------------------------------------------------------------------------------------------------
    def get(self, url: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        response = self.session.get(url, params=params, verify=self.verify, timeout=60)
        self.result.calls += 1
        self.result.statuses[response.status_code] += 1
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def walk(self, url: str, params: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list, following nextLink to the last page."""
        body = self.get(url, params)
        while body is not None:
            yield from body.get("value", [])
            link = body.get("nextLink")
            body = self.get(link) if link else None

    def keep(self, family: str, record: dict[str, Any]) -> None:
        self.result.ids[family].add(record_id(family, record))
        self.result.records += 1

    # -- the procedure ----------------------------------------------------------------------------------------
    def run(self, subscriptions: list[str]) -> BaselineResult:
        started = time.monotonic()
        arm = self.urls["arm"]
        for sub in subscriptions:
            for ws in list(self.walk(f"{arm}/subscriptions/{sub}/{PROVIDER}", {"api-version": ARM_VERSION})):
                self.workspace(ws["id"])
        self.result.wall_s = round(time.monotonic() - started, 2)
        return self.result

    def workspace(self, arm_id: str) -> None:
        arm = self.urls["arm"]
        body = self.get(f"{arm}{arm_id}", {"api-version": ARM_VERSION})  # E2
        if body is None:
            return
        if self.matcher.reason(body):
            self.keep("workspaces", body)
        location = str(body.get("location", "")).replace(" ", "").lower()
        history = self.urls["experiments"].replace("{location}", location)
        models = self.urls["modelmanagement"].replace("{location}", location)
        pipelines = self.urls["pipelines"].replace("{location}", location)
        mine = self.matcher.reason
        # E3, E4: compute targets
        for item in list(self.walk(f"{arm}{arm_id}/computes", {"api-version": ARM_VERSION})):
            if mine(item):
                detail = self.get(
                    f"{arm}{arm_id}/computes/{quote(item['name'], safe='')}", {"api-version": ARM_VERSION}
                )
                self.keep("computes", detail or item)
        # E5: experiments; E6-E10 for every experiment (the subject's runs can be in anyone's experiment)
        base = f"{history}/history/v1.0{arm_id}/experiments"
        own_refs: dict[tuple[str, str], None] = {}
        other_refs: dict[tuple[str, str], None] = {}
        subject_runs: set[str] = set()
        for experiment in list(self.walk(base)):
            name = quote(str(experiment["name"]), safe="")
            run_ids: list[str] = []
            containers: list[str] = []  # E10 lists a run's dataContainerId (dcid.<runId>), not its run id
            for run in list(self.walk(f"{base}/{name}/runs")):
                refs = pipeline_refs(run)
                if mine(run):
                    detail = self.get(f"{base}/{name}/runs/{quote(run['runId'], safe='')}")  # E7
                    self.keep("runs", detail or run)
                    run_ids.append(run["runId"])
                    containers.append((detail or run).get("dataContainerId") or f"dcid.{run['runId']}")
                    own_refs.update(dict.fromkeys(refs))
                else:
                    other_refs.update(dict.fromkeys(refs))
            if not run_ids:
                continue
            # the contract names no creator on an experiment: it is the subject's because her runs are in it
            self.keep("experiments", experiment)
            subject_runs.update(run_ids)
            kept = set(run_ids)
            for metric in list(self.walk(f"{base}/{name}/metrics")):
                if metric.get("runId") in kept:
                    detail = self.get(f"{base}/{name}/metrics/{quote(metric['metricId'], safe='')}")  # E9
                    self.keep("metrics", detail or metric)
            for container in containers:  # E10
                url = f"{history}/artifact/v1.0{arm_id}/artifacts/origins/ExperimentRun/containers/{quote(container, safe='')}"
                for artifact in self.walk(url):
                    self.keep("artifacts", artifact)
        # E11, E12: notification tasks
        for item in list(self.walk(f"{history}/notification/v1.0{arm_id}/tasks")):
            if item.get("runId") in subject_runs:  # no public contract names a task's creator
                self.keep(
                    "tasks", self.get(f"{history}/notification/v1.0{arm_id}/tasks/{item['id']}") or item
                )
        # E13, E14: datastores, never with their secrets
        no_secret = {"includeSecret": "false"}
        for item in list(self.walk(f"{history}/datastore/v1.0{arm_id}/datastores", no_secret)):
            if mine(item):
                url = f"{history}/datastore/v1.0{arm_id}/datastores/{quote(item['name'], safe='')}"
                self.keep("datastores", self.get(url, no_secret) or item)
        # E15-E22: model management
        # (assets and images name no creator: an asset is tied by its runid, an image by its modelIds)
        subject_models: set[str] = set()

        def by_rule(kind: str, item: dict[str, Any]) -> bool:
            if kind == "assets":
                return item.get("runid") in subject_runs
            if kind == "images":
                return bool(subject_models & set(item.get("modelIds") or []))
            if kind == "models" and mine(item):
                subject_models.add(str(item["id"]))
            return bool(mine(item))

        for kind in ("models", "assets", "images", "services"):
            url = f"{models}/api{arm_id}/{kind}"
            for item in list(self.walk(url, {"api-version": ARM_VERSION})):
                if by_rule(kind, item):
                    detail = self.get(f"{url}/{quote(item['id'], safe='')}", {"api-version": ARM_VERSION})
                    self.keep(kind, detail or item)
        # E23-E27: pipeline objects named by the pipeline runs (the subject's, and everyone else's: the
        # subject's module or data source can sit in someone else's pipeline)
        self.pipelines(f"{pipelines}/api/v1.0{arm_id}", own_refs, other_refs)

    def pipelines(
        self, base: str, own: dict[tuple[str, str], None], other: dict[tuple[str, str], None]
    ) -> None:
        pending = [(kind, oid, True) for kind, oid in sorted(own)]
        pending += [(kind, oid, False) for kind, oid in sorted(other) if (kind, oid) not in own]
        seen = {(kind, oid) for kind, oid, _ in pending}
        while pending:
            kind, oid, from_own = pending.pop(0)
            endpoint, segment = PIPELINE_ENDPOINTS[kind]
            record = self.get(f"{base}/{segment}/{quote(oid, safe='')}")
            if record is None:
                continue
            if self.matcher.reason(record) or (from_own and not self.matcher.names_anyone(record)):
                self.keep(PIPELINE_TRUTH[endpoint], record)
            if kind == "graph":
                for key, child_kind, field_name in (
                    ("moduleNodes", "module", "moduleId"),
                    ("datasetNodes", "datasource", "dataSourceId"),
                ):
                    for node in record.get(key) or []:
                        child = str(node.get(field_name) or "")
                        if child and (child_kind, child) not in seen:
                            seen.add((child_kind, child))
                            pending.append((child_kind, child, from_own))


def pipeline_refs(run: dict[str, Any]) -> list[tuple[str, str]]:
    """The pipeline objects a pipeline run points to: its experiment (E23), graph (E24) and template (E26)."""
    properties = run.get("properties") or {}
    if properties.get("azureml.runsource") != "azureml.PipelineRun":
        return []
    refs = []
    if run.get("experimentId"):
        refs.append(("experiment", str(run["experimentId"])))
    if properties.get("azureml.graphId"):
        refs.append(("graph", str(properties["azureml.graphId"])))
    if properties.get("azureml.pipelineTemplateId"):
        refs.append(("template", str(properties["azureml.pipelineTemplateId"])))
    return refs
