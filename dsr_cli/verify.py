"""Check a downloaded package zip against its own manifest.json, and the signatures of its documents.

The zip holds `manifest.json`, `erasure-record.json` for erasures, `index.html`, and every JSON Lines file the
manifest lists: `files[].path` is `<requestId>/<rest>` and the zip entry is `<rest>`. Each listed file must be
in the zip with the manifest's sha-256 (and size), and so must the erasure record (`erasureRecord.sha256`).
Entries are hashed as streams: a package of any size is checked in constant memory.

A signed package also holds `manifest.json.jws` and `erasure-record.json.jws` (detached compact JWS, ES256,
made with the service's Key Vault key) and that key's public part, `signing-key.jwk.json`. The signatures are
checked with a public key given by the auditor (a JWK or JWK Set file: `GET /api/v1/signing-key`), or else
with the key in the package, which proves only that the package is whole, not who made it (a warning says so).
The manifest's `auditChain` (seq and MAC of the last audit entry when it was written; the erasure record carries
the same) is reported, to compare with the service's audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MANIFEST = "manifest.json"
ERASURE_RECORD = "erasure-record.json"
SIGNATURE_SUFFIX = ".jws"
PUBLIC_KEY = "signing-key.jwk.json"
CHUNK = 1024 * 1024
KEY_FROM_PACKAGE_WARNING = (
    "the public key was taken from the package itself: that proves the package is whole, not who made it; "
    "give the service's key with --key (GET /api/v1/signing-key)"
)


@dataclass
class Verification:
    request_id: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    matched: list[str] = field(default_factory=list)  # entries whose sha-256 (and size) match
    bytes_checked: int = 0
    failures: list[str] = field(default_factory=list)  # "<entry>: why"
    unlisted: list[str] = field(default_factory=list)  # entries the manifest does not list (not checked)
    signed: list[str] = field(default_factory=list)  # "<document>: <kid>" whose signature verifies
    warnings: list[str] = field(default_factory=list)
    chain_head: dict[str, Any] | None = None  # the manifest's auditChain

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
        for signed in self.signed:
            lines.append(f"  signature verified: {signed}")
        for warning in self.warnings:
            lines.append(f"  WARNING {warning}")
        if self.chain_head:
            lines.append(
                f"  audit chain head: entry {self.chain_head.get('seq')}, MAC {self.chain_head.get('mac')} "
                "(compare with GET /api/v1/requests/<id>/audit)"
            )
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


def verify_package(
    path: Path,
    expected_request_id: str | None = None,
    *,
    public_key: dict[str, Any] | None = None,
    require_signature: bool = False,
) -> Verification:
    """Every file against the manifest; the documents' signatures when the package has them (required with
    `require_signature`), with `public_key` (a JWK or JWK Set) or else the package's own key (a warning)."""
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
        checked |= _check_signatures(archive, names, result, public_key, require_signature)
        result.unlisted = sorted(n for n in names - checked if not n.endswith("/"))
    return result


def _check_signatures(
    archive: zipfile.ZipFile,
    names: set[str],
    result: Verification,
    public_key: dict[str, Any] | None,
    required: bool,
) -> set[str]:
    """Verify each document's detached JWS; record the chain head. Returns the entries it checked."""
    documents = [d for d in (MANIFEST, ERASURE_RECORD) if d in names]
    signatures = {d: d + SIGNATURE_SUFFIX for d in documents if d + SIGNATURE_SUFFIX in names}
    head = result.manifest.get("auditChain")
    result.chain_head = head if isinstance(head, dict) else None
    if ERASURE_RECORD in names:
        record_head = _json_entry(archive, ERASURE_RECORD).get("auditChain")
        if record_head != head:
            result.failures.append(f"{ERASURE_RECORD}: its auditChain differs from the manifest's")
    if not signatures and not required:
        return set()
    keys = _keys(public_key) if public_key is not None else []
    if public_key is None and PUBLIC_KEY in names:
        keys = _keys(_json_entry(archive, PUBLIC_KEY))
        result.warnings.append(KEY_FROM_PACKAGE_WARNING)
    for document in documents:
        if document not in signatures:
            result.failures.append(f"{document}: not signed ({document}{SIGNATURE_SUFFIX} is not in the zip)")
            continue
        jws = archive.read(signatures[document]).decode(errors="replace")
        try:
            kid = verify_detached(jws, archive.read(document), keys)
        except ValueError as exc:
            result.failures.append(f"{document}: signature INVALID ({exc})")
            continue
        result.signed.append(f"{document} (key {kid})")
    return {*signatures.values(), PUBLIC_KEY}


def _json_entry(archive: zipfile.ZipFile, name: str) -> dict[str, Any]:
    try:
        value = json.loads(archive.read(name))
    except (ValueError, KeyError, zipfile.BadZipFile):
        return {}
    return value if isinstance(value, dict) else {}


def _keys(jwk_or_set: dict[str, Any]) -> list[dict[str, Any]]:
    """The JWKs of a JWK or a JWK Set ({keys: [...]})."""
    keys = jwk_or_set.get("keys") if "keys" in jwk_or_set else [jwk_or_set]
    return [k for k in keys or [] if isinstance(k, dict)]


def load_public_key(path: Path) -> dict[str, Any]:
    """A JWK or JWK Set file (what GET /api/v1/signing-key answers); ValueError when it is neither."""
    value = json.loads(path.read_text())
    if not isinstance(value, dict) or not _keys(value) or not all("kty" in k for k in _keys(value)):
        raise ValueError(f"{path.name} is not a JWK or a JWK Set")
    return value


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify_detached(jws: str, payload: bytes, keys: list[dict[str, Any]]) -> str:
    """The `kid` of the key among `keys` that verifies the detached ES256 JWS over `payload` (the header's
    kid picks it; a single key is used whatever its kid); ValueError naming what does not hold."""
    parts = jws.strip().split(".")
    if len(parts) != 3 or parts[1]:
        raise ValueError("not a detached compact JWS")
    try:
        header = json.loads(_unb64(parts[0]))
        signature = _unb64(parts[2])
    except ValueError as exc:
        raise ValueError("its header or signature is not base64url") from exc
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise ValueError("its algorithm is not ES256")
    if not keys:
        raise ValueError("no public key to check it with: give one with --key")
    matching = [k for k in keys if k.get("kid") == header.get("kid")] or (keys if len(keys) == 1 else [])
    if not matching:
        raise ValueError(f"signed with key {header.get('kid')}, which is not among the keys given")
    key = matching[0]
    if key.get("kty") != "EC" or key.get("crv") != "P-256" or len(signature) != 64:
        raise ValueError("the key is not EC P-256, or the signature is not 64 bytes")
    x, y = (int.from_bytes(_unb64(str(key.get(c, ""))), "big") for c in ("x", "y"))
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    data = f"{parts[0]}.{base64.urlsafe_b64encode(payload).rstrip(b'=').decode()}".encode()
    try:
        public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError) as exc:
        raise ValueError(
            "the signature does not match the document and key (it was changed or forged)"
        ) from exc
    return str(key.get("kid") or header.get("kid") or "?")
