"""Read an export package back from Blob storage and check it: hashes against the manifest, and the exported
records against the simulator's ground truth. Used by the demo and the end-to-end tests."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from azure.storage.blob import ContainerClient

# The simulator's truth families, by the product's output name.
TRUTH_FAMILY = {
    "workspace": "workspaces",
    "computes": "computes",
    "experiments": "experiments",
    "runs": "runs",
    "metrics": "metrics",
    "artifacts": "artifacts",
    "notifications": "tasks",
    "datastores": "datastores",
    "models": "models",
    "assets": "assets",
    "images": "images",
    "services": "services",
    # The v2 (ARM) families, by the simulator's v2 family names (devtools/amlsim/v2.py), as `v2:<family>`.
    **{
        family: f"v2:{family}"
        for family in (
            "jobs",
            "child_jobs",
            *(
                f"{kind}_{part}"
                for kind in ("model", "data", "environment", "component", "code")
                for part in ("containers", "versions")
            ),
            *(f"{kind}_{part}" for kind in ("online", "batch") for part in ("endpoints", "deployments")),
            "schedules",
            "connections",
        )
    },
    "v2_datastores": "v2:datastores",
}
PIPELINE_TRUTH = {
    "E23": "pipeline_experiments",
    "E24": "pipeline_graphs",
    "E25": "pipeline_modules",
    "E26": "pipeline_templates",
    "E27": "pipeline_datasources",
}
ID_FIELDS = ("id", "runId", "metricId", "artifactId", "experimentId", "name")


def record_id(family: str, record: dict[str, Any]) -> str:
    for key in ID_FIELDS_BY_FAMILY.get(family, ID_FIELDS):
        value = record.get(key)
        if isinstance(value, str) and value:
            return value
    raise KeyError(f"no id in a {family} record: {sorted(record)}")


ID_FIELDS_BY_FAMILY: dict[str, tuple[str, ...]] = {
    "workspaces": ("id",),
    "computes": ("id",),
    "experiments": ("experimentId", "name"),
    "runs": ("runId",),
    "metrics": ("metricId", "id"),
    "artifacts": ("artifactId", "id"),
    "tasks": ("id",),
    "datastores": ("name",),
}


def contract_expectation(v1: dict[str, list[str]], v2: dict[str, list[str]]) -> dict[str, list[str]]:
    """What a faithful export holds, by truth family, from the simulator's v1 and v2 answers for one person (its
    `reachable`, or `findable`): the v1 families, the compute family as read at the v2 api-version (where a
    compute instance names its assigned user), and every other v2 family as `v2:<family>`."""
    expected = dict(v1)
    expected["computes"] = v2["computes"]
    expected.update({f"v2:{family}": ids for family, ids in v2.items() if family != "computes"})
    return expected


def expected_export(simulator: Any, person: str) -> dict[str, list[str]]:
    """contract_expectation of what the simulator's contract rules attribute to `person` (v1 and v2)."""
    return contract_expectation(simulator.reachable(person), simulator.reachable_v2(person))


@dataclass
class PackageReport:
    manifest: dict[str, Any]
    ids: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    records: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    hash_mismatches: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    def compare(self, truth: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
        """Per family: ids missing from the package and ids that should not be there (empty when equal)."""
        differences = {}
        for family in sorted(set(truth) | set(self.ids)):
            expected = {i.lower() for i in truth.get(family, [])}
            got = {i.lower() for i in self.ids.get(family, set())}
            if expected != got:
                differences[family] = {
                    "missing": sorted(expected - got),
                    "unexpected": sorted(got - expected),
                }
        return differences


def read_package(container: ContainerClient, request_id: str) -> PackageReport:
    manifest = json.loads(container.get_blob_client(f"{request_id}/manifest.json").download_blob().readall())
    report = PackageReport(manifest)
    for entry in manifest["files"]:
        data = container.get_blob_client(entry["path"]).download_blob().readall()
        if hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["bytes"]:
            report.hash_mismatches.append(entry["path"])
        for line in data.splitlines():
            item = json.loads(line)
            family = (
                PIPELINE_TRUTH[item["endpoint"]]
                if entry["family"] == "pipelines"
                else TRUTH_FAMILY[entry["family"]]
            )
            rid = record_id(family, item["record"])
            if rid in report.ids[family]:
                report.duplicates.append(f"{family}:{rid}")
            report.ids[family].add(rid)
            report.records[family] += 1
    return report
