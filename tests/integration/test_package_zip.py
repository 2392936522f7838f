"""The downloadable package on real (keyless) Azurite: one zip with every file of the manifest, byte for byte,
an index.html that escapes what records contain, the same bytes when written again, nothing written when a
file does not match its manifest, and memory that does not grow with the size of the export."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import os
import tracemalloc
import uuid
import zipfile

import pytest
from azure.storage.blob import BlobClient

from shared.core.matching import Subject
from shared.core.model import DsrRequest, Task, WorkspaceRef, utcnow
from shared.evidence.manifest import build_erasure_record, build_manifest
from shared.evidence.package import BLOCK_BYTES, OutputWriter, task_folder
from shared.evidence.package_zip import (
    PackageIntegrityError,
    entry_block_id,
    entry_name,
    write_package,
    zip_time,
)
from shared.lifecycle.completion import staged_entries
from shared.runtime import Runtime

SUBJECT = Subject("0a1b2c3d-0000-4000-8000-000000000001", "alice@contoso.com", "alice@contoso.com")
WS = WorkspaceRef("11111111-2222-4333-8444-555555555555", "rg-ml", "ws-research", "westeurope")
HOSTILE_NAME = "<script>alert('model')</script>"
HOSTILE_DESCRIPTION = '"><img src=x onerror=alert(1)>'


def model(i: int, name: str | None = None, description: str = "", padding: str = "") -> dict:
    return {
        "endpoint": "E16",
        "workspace": WS.arm_id,
        "matchedBy": "createdBy.upn",
        "record": {
            "id": f"{name or f'model-{i}'}:1",
            "name": name or f"model-{i}",
            "version": 1,
            "description": description,
            "createdTime": "2024-03-01T10:00:00Z",
            "createdBy": {"upn": "alice@contoso.com"},
            **({"padding": padding} if padding else {}),
        },
    }


def run(i: int) -> dict:
    return {
        "endpoint": "E7",
        "workspace": WS.arm_id,
        "matchedBy": "createdBy.userObjectId",
        "record": {
            "runId": f"train_{i}",
            "status": "Completed",
            "createdUtc": "2024-03-02T09:00:00Z",
            "createdBy": {"userObjectId": SUBJECT.object_id},
        },
    }


def finished_request(rt: Runtime, kind: str = "export") -> tuple[DsrRequest, list[Task], OutputWriter]:
    request = DsrRequest(
        str(uuid.uuid4()),
        kind,  # type: ignore[arg-type]
        SUBJECT,
        {"workspaces": [WS.arm_id]},
        utcnow(),
        status="running",
        reference="TICKET-42",
    )
    return request, [], OutputWriter(rt.storage.container)


def add_output(
    writer: OutputWriter, request: DsrRequest, tasks: list[Task], kind: str, path_tail: str, records: list
) -> Task:
    task = Task(request.id, f"t-{kind}-{len(tasks)}", kind, workspace=WS, status="done")
    path = f"{task_folder(task)}/{path_tail}"
    for start in range(0, len(records), 500):  # in pages, as the tasks stage them
        writer.stage(task, kind if kind != "erase" else "erasure", path, records[start : start + 500])
    writer.commit_all(task)
    tasks.append(task)
    return task


def finish(rt: Runtime, request: DsrRequest, tasks: list[Task], writer: OutputWriter):
    """manifest.json (and erasure-record.json) exactly as the workflow writes them; then the package."""
    record_bytes = record_info = None
    if request.type == "erasure":
        record = build_erasure_record(rt, request, tasks)
        record_info = writer.write_json(f"{request.id}/erasure-record.json", record)
        record_bytes = download(rt, record_info["path"])
    manifest = build_manifest(request, tasks, record_info)
    info = writer.write_json(f"{request.id}/manifest.json", manifest)
    manifest_bytes = download(rt, info["path"])
    return manifest, manifest_bytes, record_bytes


def download(rt: Runtime, path: str) -> bytes:
    return rt.storage.container.get_blob_client(path).download_blob().readall()


def export_with_hostile_model(rt: Runtime):
    request, tasks, writer = finished_request(rt)
    models = [model(i) for i in range(250)] + [model(250, HOSTILE_NAME, HOSTILE_DESCRIPTION)]
    models.insert(3, models.pop())  # within the rows the page shows
    add_output(writer, request, tasks, "models", "models.jsonl", models)
    add_output(writer, request, tasks, "runs", "experiments/exp-1/runs.jsonl", [run(i) for i in range(3)])
    manifest, manifest_bytes, _ = finish(rt, request, tasks, writer)
    return request, manifest, manifest_bytes


def test_the_zip_holds_the_index_the_manifest_and_every_file_with_the_manifests_sha256(rt):
    # Given a finished export with two files
    request, manifest, manifest_bytes = export_with_hostile_model(rt)
    # When the package is written
    info = write_package(rt.storage.container, request.id, manifest, manifest_bytes, None)
    # Then it is one blob, with the content type and file name a browser saves it under
    blob = rt.storage.container.get_blob_client(f"{request.id}/package.zip")
    data = blob.download_blob().readall()
    assert info == {"path": f"{request.id}/package.zip", "bytes": len(data), "entries": 4}
    props = blob.get_blob_properties()
    assert props.content_settings.content_type == "application/zip"
    assert props.content_settings.content_disposition == f'attachment; filename="dsr-{request.id}.zip"'
    # and it holds index.html, manifest.json and each file under its path without the request id
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    ws_folder = f"{WS.subscription_id}/{WS.resource_group}/{WS.name}"
    assert archive.namelist() == [
        "index.html",
        "manifest.json",
        f"{ws_folder}/experiments/exp-1/runs.jsonl",
        f"{ws_folder}/models.jsonl",
    ]
    assert archive.read("manifest.json") == manifest_bytes
    for file in manifest["files"]:
        content = archive.read(file["path"].removeprefix(f"{request.id}/"))
        assert hashlib.sha256(content).hexdigest() == file["sha256"]
        assert len(content) == file["bytes"]
        assert content.count(b"\n") == file["records"]
    assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    made = dt.datetime.fromisoformat(manifest["request"]["receivedAt"]).astimezone(dt.UTC)
    stamp = made.replace(second=made.second - made.second % 2)  # zip times count in 2-second steps
    assert {i.date_time for i in archive.infolist()} == {stamp.timetuple()[:6]}
    page = archive.read("index.html").decode()
    assert "<title>Your data in Azure Machine Learning</title>" in page
    assert "TICKET-42" in page
    assert request.id in page
    assert ">Models <span" in page
    assert ">Runs <span" in page
    assert "Only the first 200 of 251 records are shown here." in page
    assert f"The other 51 are in <code>{ws_folder}/models.jsonl</code>" in page
    assert "train_2" in page
    assert "Completed" in page
    assert "your user name (UPN) as creator" in page
    assert "Telemetry records of user interactions" in page  # notCovered
    assert manifest["files"][0]["sha256"] in page
    assert hashlib.sha256(manifest_bytes).hexdigest() in page
    assert "http://" not in page
    assert "https://" not in page


def test_a_hostile_record_value_is_shown_as_text_in_index_html(rt):
    request, manifest, manifest_bytes = export_with_hostile_model(rt)
    write_package(rt.storage.container, request.id, manifest, manifest_bytes, None)
    data = download(rt, f"{request.id}/package.zip")
    page = zipfile.ZipFile(io.BytesIO(data)).read("index.html").decode()
    assert "&lt;script&gt;alert(&#x27;model&#x27;)&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert "onerror=alert(1)>" not in page


def test_writing_the_package_again_gives_the_same_bytes(rt):
    request, manifest, manifest_bytes = export_with_hostile_model(rt)
    first = write_package(rt.storage.container, request.id, manifest, manifest_bytes, None)
    once = download(rt, first["path"])
    second = write_package(rt.storage.container, request.id, manifest, manifest_bytes, None)
    assert second == first
    assert download(rt, first["path"]) == once
    blobs = [b.name for b in rt.storage.container.list_blobs(name_starts_with=f"{request.id}/package")]
    assert blobs == [f"{request.id}/package.zip"]


def test_an_erasure_package_holds_the_erasure_record_and_what_cannot_be_erased(rt):
    request, tasks, writer = finished_request(rt, "erasure")
    items = [
        {
            "family": "models",
            "endpoint": "D2",
            "workspace": WS.arm_id,
            "id": "churn:3",
            "name": "churn",
            "matchedBy": "createdBy.upn",
            "delete": {"status": 200, "at": "2024-03-05T10:00:00Z"},
            "verification": {"status": 404, "attempts": 1},
            "outcome": "deleted",
        },
        {
            "family": "images",
            "endpoint": "D4",
            "workspace": WS.arm_id,
            "id": "img:1",
            "name": HOSTILE_NAME,
            "matchedBy": "createdBy.email",
            "delete": {"status": 409, "at": "2024-03-05T10:00:01Z"},
            "verification": None,
            "outcome": "blocked",
        },
    ]
    add_output(writer, request, tasks, "erase", "erasure.jsonl", items)
    manifest, manifest_bytes, record_bytes = finish(rt, request, tasks, writer)
    assert record_bytes is not None
    write_package(rt.storage.container, request.id, manifest, manifest_bytes, record_bytes)
    archive = zipfile.ZipFile(io.BytesIO(download(rt, f"{request.id}/package.zip")))
    assert archive.namelist() == ["index.html", "manifest.json", "erasure-record.json"]
    assert archive.read("erasure-record.json") == record_bytes
    assert hashlib.sha256(record_bytes).hexdigest() == manifest["erasureRecord"]["sha256"]
    page = archive.read("index.html").decode()
    assert "<title>Erasure of your data in Azure Machine Learning</title>" in page
    assert "Deleted, and confirmed gone" in page
    assert "Kept: another person&#x27;s object still uses it" in page
    assert "What these APIs cannot erase" in page
    assert "Run history (experiments, runs)" in page
    assert manifest["erasureRecord"]["sha256"] in page
    assert "&lt;script&gt;" in page
    assert "<script" not in page


def test_a_file_that_differs_from_its_manifest_is_refused_and_no_package_is_written(rt):
    request, manifest, manifest_bytes = export_with_hostile_model(rt)
    tampered = manifest["files"][0]["path"]
    rt.storage.container.get_blob_client(tampered).upload_blob(b'{"changed": true}\n', overwrite=True)
    with pytest.raises(PackageIntegrityError, match="the manifest says"):
        write_package(rt.storage.container, request.id, manifest, manifest_bytes, None)
    assert not rt.storage.container.get_blob_client(f"{request.id}/package.zip").exists()


def export_of(rt: Runtime, megabytes: int):
    """An export of about `megabytes` MB of records that do not compress (so the zip is as large)."""
    request, tasks, writer = finished_request(rt)
    count = megabytes * 10**6 // 2200
    records = [model(i, padding=base64.b64encode(os.urandom(1500)).decode()) for i in range(count)]
    add_output(writer, request, tasks, "models", "models.jsonl", records)
    del records
    manifest, manifest_bytes, _ = finish(rt, request, tasks, writer)
    return request, manifest, manifest_bytes


def test_memory_stays_flat_whatever_the_size_of_the_export(rt, monkeypatch):
    staged: list[int] = []
    original = BlobClient.stage_block

    def spy(self, block_id, data, *args, **kwargs):
        if self.blob_name.endswith("/package.zip"):
            staged.append(len(data))
        return original(self, block_id, data, *args, **kwargs)

    monkeypatch.setattr(BlobClient, "stage_block", spy)
    peaks = {}
    for megabytes in (12, 48):
        request, manifest, manifest_bytes = export_of(rt, megabytes)
        staged.clear()
        tracemalloc.start()
        try:
            info = write_package(rt.storage.container, request.id, manifest, manifest_bytes, None)
            peaks[megabytes] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        # Every Put Block carried at most one buffer, and they add up to the zip
        assert max(staged) <= BLOCK_BYTES
        exported = manifest["files"][0]["bytes"]
        assert exported > megabytes * 10**6
        assert sum(staged) == info["bytes"] > exported * 0.6  # random padding barely compresses
        # in as few blocks as the size allows, give or take the entry's header and what comes before and after
        assert -(-info["bytes"] // BLOCK_BYTES) <= len(staged) <= -(-info["bytes"] // BLOCK_BYTES) + 3
    # Four times the records, the same peak: the buffers set it, not the export. (Most of it is transient in
    # the storage SDK, which pre-sizes a list of 8 bytes per byte of each 4 MiB chunk it downloads.)
    assert peaks[48] < peaks[12] * 1.15, peaks
    assert peaks[48] < 16 * BLOCK_BYTES, peaks


def export_with_staged_entries(rt: Runtime, files: int):
    """An export whose tasks staged their files' zip entries as they wrote them (as the workers do): `files`
    files of 200 runs, more rows than index.html shows once there are more than 25."""
    request = DsrRequest(
        str(uuid.uuid4()), "export", SUBJECT, {"workspaces": [WS.arm_id]}, utcnow(), status="running"
    )
    writer = OutputWriter(rt.storage.container, package_time=zip_time(request.received_at))
    tasks: list[Task] = []
    for n in range(files):
        add_output(
            writer,
            request,
            tasks,
            "runs",
            f"experiments/exp-{n:02d}/runs.jsonl",
            [run(i) for i in range(200)],
        )
    manifest, manifest_bytes, _ = finish(rt, request, tasks, writer)
    return request, tasks, manifest, manifest_bytes


def test_entries_the_tasks_staged_are_placed_without_reading_their_files_back(rt, monkeypatch):
    request, tasks, manifest, manifest_bytes = export_with_staged_entries(rt, 27)
    staged = staged_entries(tasks)
    assert len(staged) == 27
    assert all("zip" not in f for f in manifest["files"])  # the manifest speaks of the files only
    read: list[str] = []
    original = BlobClient.download_blob

    def spy(self, *args, **kwargs):
        read.append(self.blob_name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BlobClient, "download_blob", spy)
    info = write_package(rt.storage.container, request.id, manifest, manifest_bytes, None, staged=staged)
    # Only the files index.html shows rows of were read: 25 x 200 rows fill its 5,000
    paths = sorted(f["path"] for f in manifest["files"])
    assert sorted(read) == paths[:25]
    monkeypatch.setattr(BlobClient, "download_blob", original)
    with_staged = download(rt, info["path"])
    archive = zipfile.ZipFile(io.BytesIO(with_staged))
    assert archive.testzip() is None
    for file in manifest["files"]:
        assert archive.read(entry_name(request.id, file["path"])) == download(rt, file["path"])
    # and the zip is byte for byte the one written by reading every file back
    write_package(rt.storage.container, request.id, manifest, manifest_bytes, None)
    assert download(rt, info["path"]) == with_staged


def test_a_staged_entry_that_lapsed_is_read_back_instead(rt, caplog):
    request, tasks, manifest, manifest_bytes = export_with_staged_entries(rt, 3)
    staged = staged_entries(tasks)
    lapsed = sorted(staged)[1]
    staged[lapsed] = {**staged[lapsed], "block": entry_block_id(f"{request.id}/never-staged")}
    info = write_package(rt.storage.container, request.id, manifest, manifest_bytes, None, staged=staged)
    archive = zipfile.ZipFile(io.BytesIO(download(rt, info["path"])))
    assert archive.testzip() is None
    assert archive.read(entry_name(request.id, lapsed)) == download(rt, lapsed)
    assert len(archive.namelist()) == 5
    assert "a staged entry had lapsed, every file is read back" in caplog.text
