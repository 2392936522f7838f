"""Export files in Blob storage, written page by page as staged blocks.

Each page's kept records become one block with a deterministic id (output name + index), so a task that is
re-run after a crash re-stages the same blocks instead of appending twice. The task's checkpoint holds how
many blocks and records each output has; finishing the task commits the block list and hashes the blob.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from azure.storage.blob import BlobBlock, ContainerClient

from shared.model import Task
from shared.storage import block_id

_UNSAFE = re.compile(r"[^A-Za-z0-9._()-]")


def safe_segment(name: str) -> str:
    """A blob path segment for an Azure resource name (names are kept readable; odd characters escaped)."""
    cleaned = _UNSAFE.sub("_", name)[:80] or "_"
    if cleaned != name:
        cleaned += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return cleaned


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


def jsonl(records: list[dict[str, Any]]) -> bytes:
    return b"".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        for r in records
    )


class OutputWriter:
    def __init__(self, container: ContainerClient) -> None:
        self.container = container

    def stage(self, task: Task, output: str, path: str, records: list[dict[str, Any]]) -> None:
        """Stage `records` as the output's next block and count them in the task's checkpoint."""
        if not records:
            return
        state = task.checkpoint.setdefault("outputs", {}).setdefault(
            output, {"path": path, "blocks": 0, "records": 0}
        )
        data = jsonl(records)
        self.container.get_blob_client(state["path"]).stage_block(block_id(output, state["blocks"]), data)
        state["blocks"] += 1
        state["records"] += len(records)

    def commit_all(self, task: Task) -> None:
        """Commit every output's blocks and record path, records, bytes and sha-256 in task.outputs."""
        for output, state in task.checkpoint.get("outputs", {}).items():
            blob = self.container.get_blob_client(state["path"])
            blocks = [BlobBlock(block_id(output, i)) for i in range(state["blocks"])]
            blob.commit_block_list(blocks, content_settings=None)
            digest = hashlib.sha256()
            size = 0
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
        data = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True).encode()
        self.container.get_blob_client(path).upload_blob(data, overwrite=True)
        return {"path": path, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
