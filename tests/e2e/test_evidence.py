"""The evidence a request leaves, through the local host: manifest.json and erasure-record.json carry the head of
the request's audit chain and are signed through the Key Vault stand-in; `dsr verify` checks the downloaded
package offline with the key the API publishes; the audit trail verifies with every entry anchored."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import requests
from azure.identity import ManagedIdentityCredential

from devtools.demo import container_client, submit, wait
from devtools.stack import APP_CLIENT_ID
from dsr_cli import main as cli
from shared.core.settings import Settings
from shared.evidence import audit
from shared.runtime import Runtime


def _runtime(stack) -> Runtime:
    return Runtime.create(
        Settings.from_env(stack.settings), ManagedIdentityCredential(client_id=APP_CLIENT_ID)
    )


def _request(sim, request_type: str, **over) -> dict:
    person = sim.tenant.people["alice"]
    body = {
        "type": request_type,
        "subject": {"objectId": person.object_id, "userPrincipalName": person.upn, "email": person.email},
        "scope": {"subscriptions": sorted({ws.subscription_id for ws in sim.tenant.workspaces.values()})},
        **over,
    }
    return body


def _package(stack, request_id: str) -> bytes:
    return container_client(stack).get_blob_client(f"{request_id}/package.zip").download_blob().readall()


def test_a_dry_run_erasure_package_is_signed_verifiable_offline_and_anchored(
    stack, sim, tmp_path: Path, capsys
):
    response = submit(stack, _request(sim, "erasure", dryRun=True))
    assert response.status_code == 202, response.text
    view = wait(stack, response.headers["Location"], timeout=240)
    assert view["status"] == "completed", view["errors"]
    data = _package(stack, view["id"])

    # The package holds both documents' signatures and the public key, and both documents name the same head
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        record = json.loads(archive.read("erasure-record.json"))
    assert {"manifest.json.jws", "erasure-record.json.jws", "signing-key.jwk.json"} <= names
    assert manifest["auditChain"] == record["auditChain"]

    # The head is the audit entry before finalize's own, which records the manifest; the trail verifies and is
    # anchored to its last entry
    rt = _runtime(stack)
    entries = audit.trail(rt).entries(view["id"])
    head = manifest["auditChain"]
    assert entries[head["seq"] - 1].mac == head["mac"]
    assert entries[head["seq"]].details["to"] == "completed"
    assert len(entries) == head["seq"] + 1
    verification = audit.verify(rt, view["id"])
    assert (verification["valid"], verification["anchored"]) == (True, len(entries)), verification

    # The API publishes the key anonymously (no function key); with it, `dsr verify` passes offline
    published = requests.get(f"{stack.api_url}/v1/signing-key", timeout=30)
    assert published.status_code == 200, published.text
    assert published.json()["keys"][0]["kid"].startswith(stack.settings["DSR_SIGNING_KEY_ID"] + "/")
    key = tmp_path / "signing-key.json"
    key.write_text(published.text)
    package = tmp_path / "package.zip"
    package.write_bytes(data)
    assert cli.main(["verify", str(package), "--key", str(key), "--id", view["id"]]) == 0
    out = capsys.readouterr().out
    assert "signature verified: manifest.json" in out
    assert "signature verified: erasure-record.json" in out
    assert f"audit chain head: entry {head['seq']}, MAC {head['mac']}" in out

    # And one changed byte in the signed manifest fails it
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "manifest.json":
                content = content.replace(b'"dryRun": true', b'"dryRun": false')
            target.writestr(item, content)
    assert cli.main(["verify", str(tampered), "--key", str(key)]) == 4
    assert "manifest.json: signature INVALID" in capsys.readouterr().out
