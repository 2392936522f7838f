"""Export files in Blob storage, written as staged blocks.

Kept records are buffered and staged as blocks of a few MiB whose ids name the records they hold (first index
and count), so a task that is re-run after a crash re-stages the records its checkpoint had not counted yet
instead of appending twice. The task's checkpoint holds each output's record count and records per block;
finishing the task commits the block list and records the file's sha-256.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from azure.storage.blob import BlobBlock, BlobClient, ContainerClient

from shared.core.model import Task
from shared.evidence import package_zip
from shared.evidence.zipformat import ZipTime
from shared.storage.clients import safe_segment


def task_folder(task: Task) -> str:
    ws = task.workspace
    if ws is None:
        return task.request_id
    return "/".join(
        (
            task.request_id,
            safe_segment(ws.subscription_id),
            safe_segment(ws.resource_group),
            safe_segment(ws.name),
        )
    )


_LINE = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))  # one encoder, reused


def line(record: dict[str, Any]) -> bytes:
    return _LINE.encode(record).encode() + b"\n"


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(line(r) for r in records)


def json_document(document: dict[str, Any]) -> bytes:
    """The bytes of a JSON file of the package (manifest.json, erasure-record.json): readable and stable."""
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True).encode()


BLOCK_BYTES = 4 * 2**20  # records are buffered and staged in blocks of about this size


def range_block_id(output: str, first: int, count: int) -> str:
    """The id of the block holding records [first, first + count) of an output (same length for all)."""
    # Azure (and Azurite) take block ids of at most 64 characters once base64-encoded: 20 + 12 + 1 + 8 = 41
    # bytes encode to 56.
    return base64.b64encode(f"{output[:20]:<20}{first:012d}+{count:08d}".encode()).decode()


class OutputWriter:
    """Buffers each output's kept records and stages them as blocks of about BLOCK_BYTES: a handful of storage
    calls per task instead of one per page. A block's id names the records it holds (first index and count),
    so wherever an invocation cut the output (a block is staged when the buffer is full and whenever the task
    saves its checkpoint), the block list in the checkpoint always spells the records in order, and a block
    staged by an invocation that crashed or lost its lease is never part of another's list. The checkpoint
    keeps each output's path, record count and records per block (`sizes`)."""

    def __init__(self, container: ContainerClient, package_time: ZipTime | None = None) -> None:
        self.container = container
        # With the package's entry time, a file written whole by one Put Blob is also staged as its entry of
        # the request's package.zip (shared/evidence/package_zip.py), so the package is written without reading it back.
        self.package_time = package_time
        self._pending: dict[str, list[bytes]] = {}
        self._pending_bytes: dict[str, int] = {}
        self._blobs: dict[str, BlobClient] = {}
        # Outputs this writer wrote from their first record: their sha-256 and size, kept while staging.
        self._digests: dict[str, tuple[Any, int]] = {}

    def _blob(self, path: str) -> BlobClient:
        if path not in self._blobs:
            self._blobs[path] = self.container.get_blob_client(path)
        return self._blobs[path]

    def stage(self, task: Task, output: str, path: str, records: list[dict[str, Any]]) -> None:
        """Buffer `records` as the output's next lines; stage a block when the buffer is full."""
        if not records:
            return
        task.checkpoint.setdefault("outputs", {}).setdefault(
            output, {"path": path, "blocks": 0, "records": 0, "sizes": []}
        )
        encoded = [line(r) for r in records]
        self._pending.setdefault(output, []).extend(encoded)
        size = self._pending_bytes.get(output, 0) + sum(len(x) for x in encoded)
        self._pending_bytes[output] = size
        if size >= BLOCK_BYTES:
            self._stage(task, output)

    def flush(self, task: Task) -> None:
        """Stage every buffered record (before the checkpoint that counts them is saved)."""
        for output in list(self._pending):
            self._stage(task, output)

    def _stage(self, task: Task, output: str) -> None:
        lines = self._pending.pop(output, [])
        self._pending_bytes.pop(output, None)
        if not lines:
            return
        state = task.checkpoint["outputs"][output]
        data = b"".join(lines)
        first = state["records"]
        self._blob(state["path"]).stage_block(range_block_id(output, first, len(lines)), data)
        if first == 0:
            self._digests[output] = (hashlib.sha256(), 0)
        if output in self._digests:
            digest, size = self._digests[output]
            digest.update(data)
            self._digests[output] = (digest, size + len(data))
        state["sizes"].append(len(lines))
        state["blocks"] += 1
        state["records"] += len(lines)

    def commit_all(self, task: Task) -> None:
        """Commit every output's blocks and record path, records, bytes and sha-256 in task.outputs (hashed
        while staging when this writer wrote the whole output, else read back). An output still wholly in the
        buffer is written with one Put Blob instead of a block and a commit."""
        for output, state in task.checkpoint.get("outputs", {}).items():
            blob = self._blob(state["path"])
            if not state["sizes"] and self._pending.get(output):
                lines = self._pending.pop(output)
                self._pending_bytes.pop(output, None)
                data = b"".join(lines)
                blob.upload_blob(data, overwrite=True)
                state["records"] += len(lines)
                task.outputs[output] = {
                    "path": state["path"],
                    "records": state["records"],
                    "bytes": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }
                if self.package_time is not None:
                    task.outputs[output]["zip"] = package_zip.stage_entry(
                        self.container, task.request_id, state["path"], data, self.package_time
                    )
                continue
            self._stage(task, output)
            blocks, first = [], 0
            for count in state["sizes"]:
                blocks.append(BlobBlock(range_block_id(output, first, count)))
                first += count
            blob.commit_block_list(blocks, content_settings=None)
            if output in self._digests:
                digest, size = self._digests[output]
            else:
                digest, size = hashlib.sha256(), 0
                for chunk in blob.download_blob().chunks():
                    digest.update(chunk)
                    size += len(chunk)
            task.outputs[output] = {
                "path": state["path"],
                "records": state["records"],
                "bytes": size,
                "sha256": digest.hexdigest(),
            }

    def write_json(self, path: str, document: dict[str, Any]) -> dict[str, Any]:
        data = json_document(document)
        self.container.get_blob_client(path).upload_blob(data, overwrite=True)
        return {"path": path, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
