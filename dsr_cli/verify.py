"""Check a downloaded package zip against its own manifest.json.

The zip holds `manifest.json`, `erasure-record.json` for erasures, `index.html`, and every JSON Lines file the
manifest lists: `files[].path` is `<requestId>/<rest>` and the zip entry is `<rest>`. Each listed file must be
in the zip with the manifest's sha-256 (and size), and so must the erasure record (`erasureRecord.sha256`).
Entries are hashed as streams: a package of any size is checked in constant memory.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
CHUNK = 1024 * 1024


@dataclass
class Verification:
    request_id: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    matched: list[str] = field(default_factory=list)  # entries whose sha-256 (and size) match
    bytes_checked: int = 0
    failures: list[str] = field(default_factory=list)  # "<entry>: why"
    unlisted: list[str] = field(default_factory=list)  # entries the manifest does not list (not checked)

    @property
    def ok(self) -> bool:
        return not self.failures and bool(self.matched or self.manifest)

    def summary(self) -> list[str]:
        listed = len(self.matched) + len(self.failures)
        lines = []
        if self.manifest:
            lines.append(
                f"manifest.json: request {self.request_id}, {len(self.manifest.get('files') or [])} files listed"
                + (", with an erasure record" if self.manifest.get("erasureRecord") else "")
            )
        for failure in self.failures:
            lines.append(f"  MISMATCH {failure}")
        if self.unlisted:
            lines.append(f"  not listed in the manifest (not checked): {', '.join(sorted(self.unlisted))}")
        if self.ok:
            lines.append(
                f"verified: all {len(self.matched)} files match their sha-256 and size "
                f"({self.bytes_checked} bytes)"
            )
        else:
            lines.append(f"verification FAILED: {len(self.failures)} of {listed} checks")
        return lines


def _digest(archive: zipfile.ZipFile, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with archive.open(name) as entry:
        while chunk := entry.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def entry_name(request_id: str, path: str) -> str | None:
    """The zip entry of a manifest path (`<requestId>/<rest>` -> `<rest>`); None if it is not the request's."""
    prefix = f"{request_id}/"
    if not path.startswith(prefix) or len(path) == len(prefix):
        return None
    return path[len(prefix) :]


def verify_package(path: Path, expected_request_id: str | None = None) -> Verification:
    result = Verification()
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        result.failures.append(f"{path.name}: not a readable zip ({exc})")
        return result
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            result.failures.append(f"{MANIFEST}: not in the zip")
            return result
        try:
            manifest = json.loads(archive.read(MANIFEST))
            request_id = manifest["request"]["id"]
            files = list(manifest.get("files") or [])
        except (ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
            result.failures.append(f"{MANIFEST}: not a manifest ({exc.__class__.__name__})")
            return result
        result.manifest, result.request_id = manifest, request_id
        if expected_request_id and request_id != expected_request_id:
            result.failures.append(f"{MANIFEST}: it is the manifest of request {request_id}")
        checks = [(entry.get("path", ""), entry.get("sha256"), entry.get("bytes")) for entry in files]
        record = manifest.get("erasureRecord")
        if isinstance(record, dict):
            checks.append((record.get("path", ""), record.get("sha256"), record.get("bytes")))
        checked = {MANIFEST}
        for listed_path, sha256, size in checks:
            name = entry_name(request_id, str(listed_path))
            if name is None:
                result.failures.append(f"{listed_path}: not a path of request {request_id}")
                continue
            checked.add(name)
            if name not in names:
                result.failures.append(f"{name}: listed in the manifest, missing from the zip")
                continue
            try:
                actual, actual_size = _digest(archive, name)
            except (zipfile.BadZipFile, OSError, zlib.error) as exc:  # corrupted: its CRC or inflate fails
                result.failures.append(f"{name}: unreadable ({exc})")
                continue
            if actual != sha256:
                result.failures.append(f"{name}: sha-256 {actual[:16]}... differs from the manifest's")
            elif size is not None and actual_size != size:
                result.failures.append(f"{name}: {actual_size} bytes, the manifest says {size}")
            else:
                result.matched.append(name)
                result.bytes_checked += actual_size
        result.unlisted = sorted(n for n in names - checked if not n.endswith("/"))
    return result
