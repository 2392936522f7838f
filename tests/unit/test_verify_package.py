"""`dsr verify <package.zip>`: offline, every file's checksum against manifest.json, the detached ES256 JWS of
manifest.json and erasure-record.json with the service's public key, and the audit chain head; exit 0 only when
all hold. The packages here are signed with a key made in the test (cryptography), not by the product's signer:
the CLI is checked against the JWS specification, not against itself."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from dsr_cli import main as cli

RID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
KID = "https://kv-dsr.vault.azure.net/keys/dsr-package-signing/0123456789abcdef0123456789abcdef"
HEAD = {"seq": 7, "mac": "ab" * 32}
FILES = {
    "s1/rg/w1/runs.jsonl": b'{"endpoint": "E5", "record": {"runId": "r1"}}\n',
    "s1/rg/w1/models.jsonl": b'{"endpoint": "M1", "record": {"id": "m1:1"}}\n',
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk_of(key: ec.EllipticCurvePrivateKey, kid: str = KID) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    x, y = (_b64(n.to_bytes(32, "big")) for n in (numbers.x, numbers.y))
    return {"kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": "ES256", "use": "sig"}


def detached_jws(key: ec.EllipticCurvePrivateKey, payload: bytes, kid: str = KID) -> str:
    """RFC 7515 compact serialization, payload detached (Appendix F), ES256 signature as R || S."""
    protected = _b64(json.dumps({"alg": "ES256", "kid": kid}).encode())
    r, s = decode_dss_signature(key.sign(f"{protected}.{_b64(payload)}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{protected}..{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def package(
    key: ec.EllipticCurvePrivateKey,
    *,
    flip: str | None = None,
    edit_manifest: bool = False,
    forge: str | None = None,
    signed: bool = True,
    record_head: dict[str, Any] | None = HEAD,
) -> bytes:
    """A signed erasure package as finalize writes it; each keyword spoils one thing after signing."""
    record = json.dumps({"items": [], "auditChain": record_head}, indent=2).encode()
    manifest = {
        "request": {"id": RID},
        "files": [
            {"path": f"{RID}/{name}", "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for name, data in FILES.items()
        ],
        "erasureRecord": {
            "path": f"{RID}/erasure-record.json",
            "bytes": len(record),
            "sha256": hashlib.sha256(record).hexdigest(),
        },
        "auditChain": HEAD,
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode()
    signatures = {
        "manifest.json.jws": detached_jws(key, manifest_bytes),
        "erasure-record.json.jws": detached_jws(key, record),
    }
    if forge:  # someone without the key signs with a key of their own, naming the service's key
        signatures[forge] = detached_jws(ec.generate_private_key(ec.SECP256R1()), manifest_bytes)
    if edit_manifest:  # an approver, a count, a file's sha-256: any edit after signing
        manifest_bytes = manifest_bytes.replace(b'"seq": 7', b'"seq": 6')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.html", "<html></html>")
        archive.writestr("manifest.json", manifest_bytes)
        archive.writestr("erasure-record.json", record)
        if signed:
            for name, jws in signatures.items():
                archive.writestr(name, jws)
            archive.writestr("signing-key.jwk.json", json.dumps(jwk_of(key)))
        for name, data in FILES.items():
            archive.writestr(name, data[:-2] + b"X\n" if name == flip else data)
    return buffer.getvalue()


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, data: bytes, *extra: str) -> tuple[int, str]:
    path = tmp_path / "package.zip"
    path.write_bytes(data)
    code = cli.main(["verify", str(path), *extra])
    out, err = capsys.readouterr()
    return code, out + err


def key_file(tmp_path: Path, jwk: dict[str, Any]) -> str:
    path = tmp_path / "signing-key.json"
    path.write_text(json.dumps({"keys": [jwk]}))  # a JWK Set, as GET /api/v1/signing-key answers
    return str(path)


def test_a_good_package_verifies_with_the_service_key_offline(
    key: ec.EllipticCurvePrivateKey, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: Any
) -> None:
    # Given no API address nor credential at all (offline)
    monkeypatch.delenv("DSR_API_URL", raising=False)
    code, out = run(capsys, tmp_path, package(key), "--key", key_file(tmp_path, jwk_of(key)), "--id", RID)

    assert code == 0, out
    assert "verified: all 3 files match their sha-256 and size" in out
    assert f"signature verified: manifest.json (key {KID})" in out
    assert f"signature verified: erasure-record.json (key {KID})" in out
    assert f"audit chain head: entry 7, MAC {'ab' * 32}" in out
    assert "WARNING" not in out
    # The signatures and the key are accounted for: only the page is outside the manifest
    assert "not listed in the manifest (not checked): index.html\n" in out


def test_without_a_key_file_the_package_key_is_used_with_a_warning(
    key: ec.EllipticCurvePrivateKey, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = run(capsys, tmp_path, package(key))

    assert code == 0, out
    assert "WARNING the public key was taken from the package itself" in out
    assert "proves the package is whole, not who made it" in out


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        ({"flip": "s1/rg/w1/runs.jsonl"}, "MISMATCH s1/rg/w1/runs.jsonl: sha-256"),
        ({"edit_manifest": True}, "MISMATCH manifest.json: signature INVALID (the signature does not match"),
        (
            {"forge": "manifest.json.jws"},
            "MISMATCH manifest.json: signature INVALID (the signature does not match",
        ),
        ({"forge": "erasure-record.json.jws"}, "MISMATCH erasure-record.json: signature INVALID"),
        ({"signed": False}, "MISMATCH manifest.json: not signed (manifest.json.jws is not in the zip)"),
        ({"record_head": {"seq": 5, "mac": "cd" * 32}}, "erasure-record.json: its auditChain differs"),
    ],
    ids=[
        "flipped byte",
        "edited manifest",
        "forged manifest signature",
        "forged record signature",
        "unsigned",
        "heads",
    ],
)
def test_a_spoiled_package_fails_with_a_clear_message(
    key: ec.EllipticCurvePrivateKey,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    spoil: dict[str, Any],
    expected: str,
) -> None:
    code, out = run(capsys, tmp_path, package(key, **spoil), "--key", key_file(tmp_path, jwk_of(key)))

    assert code == cli.EXIT_MISMATCH == 4
    assert expected in out, out
    assert "verification FAILED" in out


def test_a_package_re_signed_with_another_key_fails_against_the_service_key(
    key: ec.EllipticCurvePrivateKey, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given a forger who rewrote the manifest and signed everything (and the package's key) with their own key
    forger = ec.generate_private_key(ec.SECP256R1())
    data = package(forger)

    # Then with the package's own key it verifies (integrity only, and the warning says so) ...
    code, out = run(capsys, tmp_path, data)
    assert (code, "WARNING the public key was taken from the package itself" in out) == (0, True)
    # ... and with the service's key it fails
    code, out = run(capsys, tmp_path, data, "--key", key_file(tmp_path, jwk_of(key)))
    assert code == 4
    assert "manifest.json: signature INVALID" in out


def test_a_key_of_another_kid_is_named(
    key: ec.EllipticCurvePrivateKey, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = {**jwk_of(key, kid=KID[:-1] + "0"), "kid": KID[:-1] + "0"}
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [other, {**other, "kid": "second"}]}))

    code, out = run(capsys, tmp_path, package(key), "--key", str(path))

    assert code == 4
    assert f"signed with key {KID}, which is not among the keys given" in out


def test_a_key_file_that_is_no_jwk_is_a_usage_error(
    key: ec.EllipticCurvePrivateKey, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    code, out = run(capsys, tmp_path, package(key), "--key", str(bad))
    assert code == 2
    assert "--key: bad.json is not a JWK or a JWK Set" in out
