"""OutputWriter buffers records into blocks whose ids name the records they hold: however invocations cut an
output (a block is staged when the buffer fills and whenever the task saves), a resumed, re-run or superseded
invocation never makes the committed file hold a record twice, skip one or reorder them."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from shared.core.model import Task
from shared.evidence import package
from shared.evidence.package import OutputWriter, jsonl


class FakeBlob:
    def __init__(self, container: FakeContainer, path: str) -> None:
        self.container, self.path = container, path

    def stage_block(self, block_id: str, data: bytes) -> None:
        self.container.staged.setdefault(self.path, {})[block_id] = data

    def commit_block_list(self, blocks: list[Any], content_settings: Any = None) -> None:
        staged = self.container.staged[self.path]
        self.container.committed[self.path] = b"".join(staged[b.id] for b in blocks)

    def upload_blob(self, data: bytes, overwrite: bool = False) -> None:
        assert overwrite
        self.container.committed[self.path] = data
        self.container.uploads += 1

    def download_blob(self) -> Any:
        data = self.container.committed[self.path]
        self.container.downloads += 1

        class Stream:
            def chunks(self) -> list[bytes]:
                return [data[i : i + 1000] for i in range(0, len(data), 1000)]

        return Stream()


class FakeContainer:
    def __init__(self) -> None:
        self.staged: dict[str, dict[str, bytes]] = {}
        self.committed: dict[str, bytes] = {}
        self.downloads = 0
        self.uploads = 0

    def get_blob_client(self, path: str) -> FakeBlob:
        return FakeBlob(self, path)


def records(first: int, count: int) -> list[dict[str, Any]]:
    return [{"n": i, "pad": "x" * 50} for i in range(first, first + count)]


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package, "BLOCK_BYTES", 300)  # a block every few records


def test_one_invocation_commits_the_records_in_order_and_hashes_them_without_reading_back(small_blocks):
    container, task = FakeContainer(), Task("r", "t", "runs")
    writer = OutputWriter(container)  # type: ignore[arg-type]
    for page in range(5):
        writer.stage(task, "runs", "r/runs.jsonl", records(page * 7, 7))
    writer.commit_all(task)
    data = container.committed["r/runs.jsonl"]
    assert data == jsonl(records(0, 35))
    assert task.outputs["runs"] == {
        "path": "r/runs.jsonl",
        "records": 35,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert container.downloads == 0
    assert len(task.checkpoint["outputs"]["runs"]["sizes"]) > 1


def test_a_resume_from_an_older_checkpoint_cuts_differently_and_still_commits_each_record_once(small_blocks):
    container = FakeContainer()
    first = Task("r", "t", "runs")
    writer = OutputWriter(container)  # type: ignore[arg-type]
    writer.stage(first, "runs", "r/runs.jsonl", records(0, 4))
    writer.flush(first)  # a save: this is the checkpoint the next invocation will start from
    saved = copy.deepcopy(first.checkpoint)
    # The first invocation goes on, stages more (buffer full, another save), then dies before saving again.
    writer.stage(first, "runs", "r/runs.jsonl", records(4, 9))
    writer.flush(first)
    # The next invocation resumes from the saved checkpoint and re-reads from record 4, cut another way.
    second = Task("r", "t", "runs", checkpoint=saved)
    again = OutputWriter(container)  # type: ignore[arg-type]
    for start in range(4, 20, 2):
        again.stage(second, "runs", "r/runs.jsonl", records(start, 2))
    # The first invocation, which lost its lease meanwhile, stages one more block late.
    writer.stage(first, "runs", "r/runs.jsonl", records(13, 3))
    writer.flush(first)
    again.commit_all(second)
    data = container.committed["r/runs.jsonl"]
    assert data == jsonl(records(0, 20))
    assert second.outputs["runs"]["records"] == 20
    assert second.outputs["runs"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert container.downloads == 1  # the resumed writer did not write the whole file: it reads it back


def test_nothing_buffered_is_lost_when_a_task_saves_and_block_ids_have_one_length():
    container, task = FakeContainer(), Task("r", "t", "models")
    writer = OutputWriter(container)  # type: ignore[arg-type]
    writer.stage(task, "models", "r/models.jsonl", records(0, 1))
    assert container.staged == {}  # buffered
    writer.flush(task)
    assert task.checkpoint["outputs"]["models"] == {
        "path": "r/models.jsonl",
        "blocks": 1,
        "records": 1,
        "sizes": [1],
    }
    ids = {package.range_block_id("models", 0, 1), package.range_block_id("models", 123456, 99999)}
    assert len({len(i) for i in ids}) == 1


def test_an_output_still_wholly_buffered_is_written_with_one_put_blob():
    container, task = FakeContainer(), Task("r", "t", "models")
    writer = OutputWriter(container)  # type: ignore[arg-type]
    writer.stage(task, "models", "r/models.jsonl", records(0, 2))
    writer.stage(task, "models", "r/models.jsonl", records(2, 1))
    writer.commit_all(task)
    data = container.committed["r/models.jsonl"]
    assert data == jsonl(records(0, 3))
    assert (container.staged, container.uploads, container.downloads) == ({}, 1, 0)
    assert task.outputs["models"]["records"] == 3
    assert task.outputs["models"]["sha256"] == hashlib.sha256(data).hexdigest()
