"""The downloadable package: one zip blob `<request>/package.zip`, assembled as a block list.

The zip holds `index.html` (a page the data subject can open offline, see shared/evidence/package_html.py),
`manifest.json`, `erasure-record.json` for erasures, their signatures when packages are signed
(`manifest.json.jws`, `erasure-record.json.jws` and the public key `signing-key.jwk.json`, see
shared/evidence/signing.py), and every JSON Lines file of the manifest under its path without the leading
`<request>/`.

Most files are small and written whole by one task invocation: that task also compresses the file and stages it
as a block of package.zip (`stage_entry`, called by shared/evidence/package.py), so the package's writer does not read
those files back; it places their blocks, in manifest order, between blocks of its own. The other files (large
ones, or ones written across invocations) are read in chunks of a few MiB and deflated here. Nothing is held
whole in memory, whatever the size of the export. The block list is committed only when the whole zip was
written, so a failure leaves the previous package (or none), never a truncated one.

The bytes are deterministic: every entry carries the request's receivedAt as its time, so writing the package
again gives the same blob (the signature entries aside: ECDSA signatures are randomized).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings

from shared.evidence.package_html import files_shown, render_index
from shared.evidence.zipformat import Deflater, Entry, ZipTime, central_directory, deflate_entry

log = logging.getLogger(__name__)

PACKAGE_NAME: Final = "package.zip"
INDEX_NAME: Final = "index.html"
MANIFEST_NAME: Final = "manifest.json"
ERASURE_RECORD_NAME: Final = "erasure-record.json"
BLOCK_BYTES: Final = 4 * 2**20  # the writer stages its own bytes in blocks of about this size
MAX_BLOCKS: Final = 40_000  # Azure commits at most 50,000 blocks per blob: past this, entries are not staged

_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


class PackageIntegrityError(Exception):
    """A file of the export does not match what the manifest says about it (size or sha-256)."""


def package_path(request_id: str) -> str:
    return f"{request_id}/{PACKAGE_NAME}"


def zip_time(moment: str | dt.datetime | None) -> ZipTime:
    """A time (the request's receivedAt) as a zip entry time (UTC, to the second; zips cannot go before 1980)."""
    if not moment:
        return _ZIP_EPOCH
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
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


def entry_block_id(path: str) -> str:
    """The id of the block of package.zip that holds a file's entry: one per file, whoever stages it (a task
    run again stages the same id, replacing it). 41 characters, as the writer's own ids."""
    return hashlib.sha256(path.encode()).hexdigest()[:32] + "-zipentry"


def stage_entry(
    container: ContainerClient, request_id: str, path: str, data: bytes, when: ZipTime
) -> dict[str, Any]:
    """Compress a file of the request held in memory into its zip entry and stage it as a block of the request's
    package.zip (uncommitted until the package is written). Returns what the package's writer needs to place it;
    the caller keeps it with the file's other facts (task outputs, `zip`)."""
    entry, body = deflate_entry(entry_name(request_id, path), data, when)
    block = entry_block_id(path)
    container.get_blob_client(package_path(request_id)).stage_block(block, body)
    return {"block": block, **entry.as_dict()}


def blob_chunks(blob: BlobClient) -> Iterator[bytes]:
    """A blob's content in chunks of the client's max_chunk_get_size (4 MiB by default). validate_content makes
    the first GET one chunk too instead of max_single_get_size (32 MiB), and each chunk's MD5 is checked."""
    yield from blob.download_blob(max_concurrency=1, validate_content=True).chunks()


SMALL_FILE_BYTES = 256 * 1024  # files up to this size are fetched whole, several at a time
PREFETCH_BUDGET_BYTES = 32 * 2**20  # at most this much of them is held at once
PREFETCH_THREADS = 8


class SmallFiles:
    """The small files the writer must read (those the index shows rows of, those without a staged entry),
    downloaded in parallel up to PREFETCH_BUDGET_BYTES: one round trip after another for a thousand files was
    most of the time a package took. Larger files, and small ones past the budget, are streamed in chunks."""

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


class ZipBlob:
    """A zip written as the block list of a block blob. Entries come from three places: bytes in memory
    (`add`), a stream of chunks (`add_stream`), and blocks a task staged already (`add_staged`). Each entry's
    local header holds its final CRC-32 and sizes: a streamed entry's header is staged after its data and
    listed before it. `close()` appends the central directory and commits the list; `abort()` commits nothing,
    so the blob keeps whatever it held before."""

    def __init__(
        self,
        blob: BlobClient,
        content_settings: ContentSettings,
        when: ZipTime,
        block_bytes: int = BLOCK_BYTES,
    ) -> None:
        self.blob = blob
        self.content_settings = content_settings
        self.when = when
        self.block_bytes = block_bytes
        # Block ids of this writer only: two writers of the same blob at once (a package written twice at the
        # same moment) cannot commit each other's blocks; the one that commits last wins, whole.
        self._writer = uuid.uuid4().hex
        self._staged = 0
        self._order: list[str] = []  # block ids in zip order
        self._buffer = bytearray()  # the zip's bytes after the last block of _order, not staged yet
        self._entries: list[tuple[Entry, int]] = []
        self.size = 0  # bytes of the zip so far

    def _stage(self, data: bytes) -> str:
        block_id = f"{self._writer}-{self._staged:08d}"  # one length for all (41 characters)
        self._staged += 1
        self.blob.stage_block(block_id, data)
        return block_id

    def _flush(self) -> None:
        if self._buffer:
            self._order.append(self._stage(bytes(self._buffer)))
            self._buffer.clear()

    def _append(self, data: bytes | bytearray) -> None:
        self._buffer += data
        while len(self._buffer) >= self.block_bytes:
            self._order.append(self._stage(bytes(self._buffer[: self.block_bytes])))
            del self._buffer[: self.block_bytes]

    def _placed(self, entry: Entry) -> None:
        self._entries.append((entry, self.size))
        self.size += entry.length

    def add(self, name: str, data: bytes) -> None:
        entry, body = deflate_entry(name, data, self.when)
        self._placed(entry)
        self._append(body)

    def add_stream(self, name: str, chunks: Iterable[bytes]) -> tuple[int, str]:
        """Deflate `chunks` into one entry; return the data's size and sha-256."""
        deflater, digest = Deflater(), hashlib.sha256()
        out = bytearray()
        data_blocks: list[str] = []
        for chunk in chunks:
            digest.update(chunk)
            out += deflater.feed(chunk)
            while len(out) >= self.block_bytes:
                data_blocks.append(self._stage(bytes(out[: self.block_bytes])))
                del out[: self.block_bytes]
        out += deflater.finish()
        entry, header = deflater.entry(name, self.when)
        self._placed(entry)
        if data_blocks:
            self._flush()
            self._order.append(self._stage(header))
            self._order.extend(data_blocks)
            self._append(out)
        else:
            self._append(header + out)
        return deflater.size, digest.hexdigest()

    def add_staged(self, name: str, staged: Mapping[str, Any]) -> None:
        self._flush()
        self._order.append(str(staged["block"]))
        self._placed(Entry.from_dict(name, dict(staged)))

    @property
    def entries(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        directory = central_directory(self._entries, self.size, self.when)
        self._buffer += directory
        self.size += len(directory)
        self._flush()
        self.blob.commit_block_list(
            [BlobBlock(b) for b in self._order], content_settings=self.content_settings
        )


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
    staged: Mapping[str, Mapping[str, Any]] | None = None,
    signatures: Mapping[str, bytes] | None = None,
    block_bytes: int = BLOCK_BYTES,
) -> dict[str, Any]:
    """Write `<request>/package.zip` from the request's manifest and files; return its path and bytes.

    `signatures` are small entries placed after the manifest and the erasure record (their JWS and the public
    key, signing.signed_documents). `staged` maps a file's path to the entry a task staged for it
    (`stage_entry`); every other file is read back and deflated here. Idempotent: writing it again replaces
    the blob with the same bytes (given the same signatures: an ES256 signature differs each time). Raises
    PackageIntegrityError (and leaves the blob as it was) when a file's size or sha-256 differs from the
    manifest's."""
    staged = dict(staged or {})
    if len(staged) > MAX_BLOCKS:
        staged = {}
    documents = {MANIFEST_NAME: manifest_bytes, **dict(signatures or {})}
    try:
        return _write(container, request_id, manifest, documents, erasure_record_bytes, staged, block_bytes)
    except HttpResponseError as exc:
        if not staged or getattr(exc, "error_code", None) != "InvalidBlockList":  # set by the storage SDK
            raise
        # A staged entry is gone (uncommitted blocks lapse after a week): read every file back instead.
        log.warning("package of %s: a staged entry had lapsed, every file is read back", request_id)
        return _write(container, request_id, manifest, documents, erasure_record_bytes, {}, block_bytes)


def _write(
    container: ContainerClient,
    request_id: str,
    manifest: dict[str, Any],
    documents: Mapping[str, bytes],
    erasure_record_bytes: bytes | None,
    staged: Mapping[str, Mapping[str, Any]],
    block_bytes: int,
) -> dict[str, Any]:
    """`documents`: manifest.json's bytes under MANIFEST_NAME, then the signature entries."""
    path = package_path(request_id)
    manifest_bytes = documents[MANIFEST_NAME]
    when = zip_time((manifest.get("request") or {}).get("receivedAt"))
    erasure_record = json.loads(erasure_record_bytes) if erasure_record_bytes is not None else None
    files = [f for f in manifest.get("files", []) if f.get("path")]
    names = {f["path"]: entry_name(request_id, f["path"]) for f in files}
    download = _UNSAFE_FILENAME.sub("_", f"dsr-{request_id}.zip")
    archive = ZipBlob(
        container.get_blob_client(path),
        ContentSettings(
            content_type="application/zip", content_disposition=f'attachment; filename="{download}"'
        ),
        when,
        block_bytes=block_bytes,
    )
    shown = set(files_shown(manifest, names))
    small = SmallFiles(container, [f for f in files if f["path"] in shown or f["path"] not in staged])
    index = render_index(
        manifest,
        erasure_record,
        entries=names,
        read_chunks=small.chunks,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
    )
    archive.add_stream(INDEX_NAME, _encoded(index))
    archive.add(MANIFEST_NAME, manifest_bytes)
    if erasure_record_bytes is not None:
        archive.add(ERASURE_RECORD_NAME, erasure_record_bytes)
    for name, data in documents.items():
        if name != MANIFEST_NAME:
            archive.add(name, data)
    for info in files:
        name = names[info["path"]]
        entry = staged.get(info["path"])
        if entry is not None and entry.get("size") == info.get("bytes"):
            archive.add_staged(name, entry)
            continue
        size, sha = archive.add_stream(name, small.chunks(info["path"]))
        if (info.get("sha256") and sha != info["sha256"]) or (
            info.get("bytes") is not None and size != info["bytes"]
        ):
            raise PackageIntegrityError(
                f"{name}: {size} bytes, sha-256 {sha}; the manifest says "
                f"{info.get('bytes')} bytes, sha-256 {info.get('sha256')}"
            )
    archive.close()
    return {"path": path, "bytes": archive.size, "entries": archive.entries}
