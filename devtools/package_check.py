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
