"""The downloadable package: one zip blob `<request>/package.zip`, written as a stream.

The zip holds `index.html` (a page the data subject can open offline, see shared/package_html.py),
`manifest.json`, `erasure-record.json` for erasures, and every JSON Lines file of the manifest under its path
without the leading `<request>/`. Nothing is held whole in memory, whatever the size of the export: each file is
read in chunks of a few MiB, deflated into its zip entry, and the zip itself goes out as staged blocks of about
BLOCK_BYTES (zipfile writes to a stream it cannot seek with data descriptors after each entry). The block list
is committed only when the whole zip was written, so a failure leaves the previous package (or none), never a
truncated one.

The bytes are deterministic: every entry carries the manifest's `generatedAt` as its time, so writing the
package again gives the same blob with the same sha-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings

from shared.package import BLOCK_BYTES
from shared.package_html import render_index

PACKAGE_NAME: Final = "package.zip"
INDEX_NAME: Final = "index.html"
MANIFEST_NAME: Final = "manifest.json"
ERASURE_RECORD_NAME: Final = "erasure-record.json"

_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


class PackageIntegrityError(Exception):
    """A file of the export does not match what the manifest says about it (size or sha-256)."""


def package_path(request_id: str) -> str:
    return f"{request_id}/{PACKAGE_NAME}"


class BlockStream(io.RawIOBase):
    """A write-only, non-seekable stream into a block blob: buffers about `block_bytes`, stages each full
    buffer as a block (Put Block) and commits the block list on close (Put Block List). The sha-256 and size of
    everything written are computed on the way. `abort()` drops the staged blocks (they are never committed and
    the service discards them)."""

    def __init__(
        self,
        blob: BlobClient,
        content_settings: ContentSettings | None = None,
        block_bytes: int = BLOCK_BYTES,
    ) -> None:
        super().__init__()
        self.blob = blob
        self.content_settings = content_settings
        self.block_bytes = block_bytes
        self._buffer = bytearray()
        self._blocks: list[BlobBlock] = []
        self._digest = hashlib.sha256()
        self.size = 0
        self._aborted = False
        # Block ids of this writer only: two writers of the same blob at once (a finalize delivered twice)
        # cannot commit each other's blocks; the one that commits last wins, whole.
        self._writer = uuid.uuid4().hex

    # io.RawIOBase ---------------------------------------------------------------------------------------------
    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to a closed package stream")
        view = memoryview(data).cast("B")
        self._buffer += view
        self._digest.update(view)
        self.size += len(view)
        while len(self._buffer) >= self.block_bytes:
            self._stage(bytes(self._buffer[: self.block_bytes]))
            del self._buffer[: self.block_bytes]
        return len(view)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._aborted:
                if self._buffer or not self._blocks:
                    self._stage(bytes(self._buffer))
                    self._buffer.clear()
                self.blob.commit_block_list(self._blocks, content_settings=self.content_settings)
        finally:
            super().close()

    def __del__(self) -> None:
        # io.IOBase closes a stream it collects; a stream nobody closed was not finished: never commit it.
        if not self.closed:
            self.abort()

    # ---------------------------------------------------------------------------------------------------------
    def abort(self) -> None:
        """Close without committing: the blob keeps whatever it held before."""
        self._aborted = True
        self._buffer.clear()
        self.close()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _stage(self, data: bytes) -> None:
        block_id = f"{self._writer}-{len(self._blocks):08d}"  # one length for all (41 bytes)
        self.blob.stage_block(block_id, data)
        self._blocks.append(BlobBlock(block_id))


def blob_chunks(blob: BlobClient) -> Iterator[bytes]:
    """A blob's content in chunks of the client's max_chunk_get_size (4 MiB by default). validate_content makes
    the first GET one chunk too instead of max_single_get_size (32 MiB), and each chunk's MD5 is checked."""
    yield from blob.download_blob(max_concurrency=1, validate_content=True).chunks()


SMALL_FILE_BYTES = 256 * 1024  # files up to this size are fetched whole, several at a time
PREFETCH_BUDGET_BYTES = 32 * 2**20  # at most this much of them is held at once
PREFETCH_THREADS = 8


class SmallFiles:
    """The package's small files (most of them: one per experiment and family), downloaded in parallel before
    the zip is written, up to PREFETCH_BUDGET_BYTES; one round trip after another for a thousand files was most
    of the time a package took. Larger files, and small ones past the budget, are streamed in chunks."""

    def __init__(self, container: ContainerClient, files: list[dict[str, Any]]) -> None:
        self.container = container
        chosen: list[str] = []
        total = 0
        for info in files:
            size = info.get("bytes")
            if isinstance(size, int) and size <= SMALL_FILE_BYTES and total + size <= PREFETCH_BUDGET_BYTES:
                chosen.append(info["path"])
                total += size
        self._data: dict[str, bytes] = {}
        if chosen:
            with ThreadPoolExecutor(PREFETCH_THREADS, thread_name_prefix="package-fetch") as pool:
                self._data = dict(zip(chosen, pool.map(self._download, chosen), strict=True))

    def _download(self, path: str) -> bytes:
        return b"".join(blob_chunks(self.container.get_blob_client(path)))

    def chunks(self, path: str) -> Iterable[bytes]:
        data = self._data.get(path)
        return [data] if data is not None else blob_chunks(self.container.get_blob_client(path))


def zip_time(generated_at: str | None) -> tuple[int, int, int, int, int, int]:
    """The manifest's generatedAt as a zip entry time (UTC, to the second; zips cannot go before 1980)."""
    if not generated_at:
        return _ZIP_EPOCH
    moment = dt.datetime.fromisoformat(generated_at)
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    stamp = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    return max(stamp, _ZIP_EPOCH)


def entry_name(request_id: str, path: str) -> str:
    """The name inside the zip of a blob of the request: its path without `<request>/`."""
    prefix = f"{request_id}/"
    if not path.startswith(prefix):
        raise ValueError(f"{path!r} is not a file of request {request_id}")
    name = path[len(prefix) :]
    parts = name.split("/")
    if not name or any(part in ("", ".", "..") for part in parts) or "\\" in name:
        raise ValueError(f"{path!r} cannot be a zip entry name")
    return name


def _entry(name: str, when: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=when)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # Unix, so the permissions below mean the same everywhere
    info.external_attr = 0o644 << 16
    return info


def _write_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    chunks: Iterable[bytes],
    expected_bytes: int | None = None,
) -> tuple[int, str]:
    """Stream `chunks` into one deflated entry; return its size and sha-256."""
    digest, size = hashlib.sha256(), 0
    # An entry that may pass 2 GiB needs its zip64 sizes from the start: zipfile cannot go back to add them.
    large = expected_bytes is not None and expected_bytes * 1.05 > zipfile.ZIP64_LIMIT
    with archive.open(info, mode="w", force_zip64=large) as entry:
        for chunk in chunks:
            entry.write(chunk)
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _encoded(parts: Iterable[str], at_least: int = 64 * 1024) -> Iterator[bytes]:
    """UTF-8 chunks of about `at_least` bytes from many small str pieces (fewer, larger deflate calls)."""
    pending: list[bytes] = []
    size = 0
    for part in parts:
        data = part.encode(errors="replace")  # a lone surrogate from a record's JSON becomes '?'
        pending.append(data)
        size += len(data)
        if size >= at_least:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def write_package(
    container: ContainerClient,
    request_id: str,
    manifest: dict[str, Any],
    manifest_bytes: bytes,
    erasure_record_bytes: bytes | None,
    *,
    block_bytes: int = BLOCK_BYTES,
) -> dict[str, Any]:
    """Write `<request>/package.zip` from the request's manifest and files; return its path, bytes, sha-256.

    Idempotent: writing it again replaces the blob with the same bytes. Raises PackageIntegrityError (and
    leaves the blob as it was) when a file's size or sha-256 differs from the manifest's."""
    path = package_path(request_id)
    when = zip_time(manifest.get("generatedAt"))
    erasure_record = json.loads(erasure_record_bytes) if erasure_record_bytes is not None else None
    files = [f for f in manifest.get("files", []) if f.get("path")]
    names = {f["path"]: entry_name(request_id, f["path"]) for f in files}
    download = _UNSAFE_FILENAME.sub("_", f"dsr-{request_id}.zip")
    stream = BlockStream(
        container.get_blob_client(path),
        ContentSettings(
            content_type="application/zip", content_disposition=f'attachment; filename="{download}"'
        ),
        block_bytes=block_bytes,
    )
    try:
        small = SmallFiles(container, files)
        # The stream is not seekable: zipfile writes each entry's sizes and CRC in a data descriptor after it.
        with zipfile.ZipFile(stream, mode="w", allowZip64=True) as archive:
            index = render_index(
                manifest,
                erasure_record,
                entries={f["path"]: names[f["path"]] for f in files},
                read_chunks=small.chunks,
                manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
            )
            _write_entry(archive, _entry(INDEX_NAME, when), _encoded(index))
            _write_entry(archive, _entry(MANIFEST_NAME, when), [manifest_bytes])
            if erasure_record_bytes is not None:
                _write_entry(archive, _entry(ERASURE_RECORD_NAME, when), [erasure_record_bytes])
            for info in files:
                size, sha = _write_entry(
                    archive,
                    _entry(names[info["path"]], when),
                    small.chunks(info["path"]),
                    expected_bytes=info.get("bytes"),
                )
                if (info.get("sha256") and sha != info["sha256"]) or (
                    info.get("bytes") is not None and size != info["bytes"]
                ):
                    raise PackageIntegrityError(
                        f"{names[info['path']]}: {size} bytes, sha-256 {sha}; the manifest says "
                        f"{info.get('bytes')} bytes, sha-256 {info.get('sha256')}"
                    )
    except BaseException:
        stream.abort()
        raise
    stream.close()
    return {"path": path, "bytes": stream.size, "sha256": stream.sha256}
