"""The `dsr` command line against the local stack: what a privacy officer types, end to end.

The commands run in process through `dsr_cli.main.main` (output captured), and once as the installed
`.venv/bin/dsr` executable to prove the entry point. The package download is checked against the manifest read
straight from Blob storage, and against a package tampered with in storage.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.amlsim.fixture import demo_tenant
from devtools.demo import container_client
from dsr_cli.main import main

PERSON = "alice"


@dataclass
class Run:
    code: int
    out: str
    err: str


def dsr(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module", autouse=True)
def cli_env(stack) -> Iterator[dict[str, str]]:
    """The CLI's connection, as an officer sets it: the host's base URL and the function key (the local CA is
    trusted through REQUESTS_CA_BUNDLE, which the stack's environment sets)."""
    env = {"DSR_API_URL": stack.host_processes[0].http_url, "DSR_FUNCTION_KEY": stack.function_key}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("DSR_API_SCOPE", raising=False)
        yield env


def subject_flags(stack, key: str = PERSON) -> list[str]:
    person = stack.simulator.tenant.people[key]
    return ["--object-id", person.object_id, "--upn", person.upn, "--email", person.email]


def scope_flags(stack) -> list[str]:
    subscriptions = sorted({ws.subscription_id for ws in stack.simulator.tenant.workspaces.values()})
    return [flag for sub in subscriptions for flag in ("--subscription", sub)]


@dataclass
class Exported:
    request_id: str
    watch: Run
    final: dict
    manifest: dict
    package: bytes


@pytest.fixture(scope="module")
def exported(stack, cli_env, tmp_path_factory) -> Exported:
    """One export, from submit to download, through the CLI only."""
    submitted = dsr("submit", "export", *subject_flags(stack), *scope_flags(stack), "--reference", "CLI-1")
    assert submitted.code == 0, submitted.err
    request_id = submitted.out.strip()
    watched = dsr("status", request_id, "--watch", "--timeout", "240")
    assert watched.code == 0, watched.err
    final = json.loads(dsr("status", request_id, "--json").out)
    manifest = json.loads(
        container_client(stack).get_blob_client(f"{request_id}/manifest.json").download_blob().readall()
    )
    package = container_client(stack).get_blob_client(f"{request_id}/package.zip").download_blob().readall()
    return Exported(request_id, watched, final, manifest, package)


def test_submit_prints_only_the_request_id_and_watch_ends_completed_with_a_line_per_family(exported):
    # Given an export submitted and watched with the CLI
    final = exported.final
    # Then the id is the request's, it completed, and the watch drew a bar per endpoint family as it ran
    assert final["id"] == exported.request_id
    assert final["status"] == "completed", final["errors"]
    assert final["reference"] == "CLI-1"
    lines = exported.watch.err.splitlines()
    assert len(final["progress"]) >= 8
    for family in final["progress"].values():
        total = family["tasks"]
        finished = [
            line
            for line in lines
            if line.lstrip().startswith(family["title"] + " ") and f" {total}/{total}" in line
        ]
        assert finished, (family["title"], lines[-20:])
    headers = [line.split()[0] for line in lines if not line.startswith(" ")]  # the request's own line
    assert "running" in headers
    assert headers[-1] == "completed"
    assert "status        completed" in exported.watch.out
    assert f"dsr download {exported.request_id}" in exported.watch.out


def test_download_verifies_every_sha256_of_the_manifest(exported, tmp_path):
    result = dsr("download", exported.request_id, "-o", str(tmp_path))

    assert result.code == 0, result.out + result.err
    saved = tmp_path / f"{exported.request_id}.zip"
    assert hashlib.sha256(saved.read_bytes()).digest() == hashlib.sha256(exported.package).digest()
    # every file the manifest in Blob storage lists was checked, and only index.html is outside it
    files = exported.manifest["files"]
    assert len(files) >= 10
    assert f"verified: all {len(files)} files match their sha-256 and size" in result.out
    assert f"({sum(f['bytes'] for f in files)} bytes)" in result.out
    assert "not listed in the manifest (not checked): index.html" in result.out
    assert "MISMATCH" not in result.out
    # the progress bar went to stderr, the SAS link (a credential) nowhere
    assert result.err.splitlines()[-1].endswith("100%")
    assert "sig=" not in result.out + result.err


def test_a_package_tampered_with_in_storage_fails_verification(stack, exported, tmp_path):
    # Given the package blob rewritten with one record changed (the manifest left as it was)
    victim = next(f for f in exported.manifest["files"] if f["records"] > 0)
    name = victim["path"].split("/", 1)[1]
    tampered = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(exported.package)) as original,
        zipfile.ZipFile(tampered, "w", zipfile.ZIP_DEFLATED) as copy,
    ):
        for info in original.infolist():
            data = original.read(info)
            copy.writestr(info, data.replace(b'"record"', b'"recorD"', 1) if info.filename == name else data)
    blob = container_client(stack).get_blob_client(f"{exported.request_id}/package.zip")
    blob.upload_blob(tampered.getvalue(), overwrite=True)
    try:
        # When the officer downloads it
        result = dsr("download", exported.request_id, "-o", str(tmp_path))
    finally:
        blob.upload_blob(exported.package, overwrite=True)
    # Then the CLI names the file that changed and exits non-zero
    assert result.code == 4
    assert f"  MISMATCH {name}: sha-256" in result.out
    assert f"verification FAILED: 1 of {len(exported.manifest['files'])} checks" in result.out


def test_the_installed_dsr_executable_runs_the_same_cli(exported, cli_env):
    executable = Path(sys.executable).parent / "dsr"
    assert executable.exists(), "`make install` installs the project (pip install -e .): .venv/bin/dsr"

    done = subprocess.run(  # noqa: S603 (our own entry point, fixed arguments)
        [str(executable), "status", exported.request_id, "--json"],
        env={**os.environ, **cli_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "completed"
    assert json.loads(done.stdout)["id"] == exported.request_id


def test_list_finds_the_request_by_status_and_by_person(stack, exported):
    listed = dsr("list", "--status", "completed", "--page-size", "2", "--all", "--json")
    assert listed.code == 0, listed.err
    assert exported.request_id in [item["id"] for item in json.loads(listed.out)]

    table = dsr("list", "--subject-object-id", stack.simulator.tenant.people[PERSON].object_id)
    assert table.code == 0, table.err
    header, *rows = table.out.splitlines()
    assert header.split()[:3] == ["ID", "TYPE", "STATUS"]
    row = next(r for r in rows if r.startswith(exported.request_id))
    assert row.split()[1:3] == ["export", "completed"]


def test_list_pages_one_request_at_a_time_and_says_when_there_is_more(stack):
    ids = []
    for _ in range(2):
        submitted = dsr("submit", "erasure", *subject_flags(stack, "bob"), *scope_flags(stack))
        assert submitted.code == 0, submitted.err
        ids.append(submitted.out.strip())
    try:
        first = dsr("list", "--status", "awaiting_approval", "--page-size", "1")
        every = dsr("list", "--status", "awaiting_approval", "--page-size", "1", "--all", "--json")
    finally:
        for request_id in ids:
            dsr("reject", request_id, "--reason", "test over")

    assert first.code == every.code == 0
    assert len(first.out.splitlines()) == 2  # the header and one request
    assert "add --all" in first.err
    listed = [item["id"] for item in json.loads(every.out)]
    assert [i for i in listed if i in ids] == ids


@pytest.fixture
def fresh_tenant(stack):
    """An erasure changes the simulated tenant: it is seeded again afterwards for the other tests."""
    yield stack.simulator
    stack.simulator.reset(demo_tenant())


def test_an_erasure_waits_for_approval_then_runs_and_a_rejected_one_cannot_be_approved(stack, fresh_tenant):
    # Given an erasure submitted with the CLI: it waits for approval
    submitted = dsr("submit", "erasure", *subject_flags(stack), *scope_flags(stack), "--reference", "CLI-2")
    assert submitted.code == 0, submitted.err
    request_id = submitted.out.strip()
    assert f"dsr approve {request_id}" in submitted.err
    assert "status        awaiting_approval" in dsr("status", request_id).out

    # When it is approved, it runs to the end: the demo tenant has objects someone else's still use (409), kept
    # and reported, so it ends completed_with_errors and the watch exits 3
    approved = dsr("approve", request_id, "--reason", "identity verified")
    assert approved.code == 0, approved.err
    assert approved.out == f"{request_id}: approved by function key holder; now accepted\n"
    watched = dsr("status", request_id, "--watch", "--timeout", "240", "--json")
    assert watched.code == 3, watched.err
    assert watched.err.endswith(f"dsr: request {request_id} ended completed_with_errors\n")
    view = json.loads(watched.out)
    assert view["status"] == "completed_with_errors"
    assert view["decision"]["reason"] == "identity verified"
    assert view["progress"]["erase"]["done"] == view["progress"]["erase"]["tasks"] >= 1
    assert view["errors"]
    assert all(e["reason"].endswith(": blocked") for e in view["errors"]), view["errors"]
    shown = dsr("status", request_id).out
    assert f"errors ({len(view['errors'])})" in shown
    assert f"  - {view['errors'][0]['family']}: {view['errors'][0]['reason']}" in shown

    # And a second one, rejected, refuses approval with the API's problem, printed as title: detail
    other = dsr("submit", "erasure", *subject_flags(stack, "bob"), *scope_flags(stack)).out.strip()
    rejected = dsr("reject", other, "--reason", "not verified")
    assert rejected.out == f"{other}: rejected by function key holder; now rejected\n"
    late = dsr("approve", other)
    assert late.code == 1
    assert late.err == (
        "dsr: The request conflicts with the current state: the request is rejected, not awaiting approval\n"
    )


def test_extend_moves_the_deadline_once(stack):
    request_id = dsr("submit", "erasure", *subject_flags(stack, "bob"), *scope_flags(stack)).out.strip()
    before = json.loads(dsr("status", request_id, "--json").out)["dueAt"]
    try:
        extended = dsr("extend", request_id, "--months", "2", "--reason", "many workspaces to search")
        again = dsr("extend", request_id, "--months", "1", "--reason", "more time")
        view = json.loads(dsr("status", request_id, "--json").out)
    finally:
        dsr("cancel", request_id, "--reason", "test over")

    assert extended.code == 0, extended.err
    assert view["dueAt"] > before
    assert view["deadline"]["extension"]["months"] == 2
    assert "(extended by 2 month(s): many workspaces to search)" in dsr("status", request_id).out
    assert again.code == 1
    assert again.err.startswith(
        "dsr: The request conflicts with the current state: the deadline was already extended"
    )


def test_invalid_input_is_printed_as_the_problem_and_its_field_errors(stack):
    result = dsr("submit", "export", "--object-id", "not-a-guid", *scope_flags(stack))

    assert result.code == 1
    assert result.out == ""
    first, *fields = result.err.splitlines()
    assert first == "dsr: The request body does not validate: 1 field(s) failed validation"
    assert fields[0].startswith("  subject.objectId: String should match pattern")


def test_an_unknown_request_is_a_404_problem_and_a_bad_key_is_refused(stack, monkeypatch):
    missing = dsr("status", "01900000-0000-7000-8000-000000000000")
    assert missing.code == 1
    assert missing.err == "dsr: No such request: no request with id 01900000-0000-7000-8000-000000000000\n"

    monkeypatch.setenv("DSR_FUNCTION_KEY", "wrong")
    refused = dsr("status", "01900000-0000-7000-8000-000000000000")
    assert refused.code == 1
    assert refused.err.startswith("dsr: HTTP 401")


def test_a_callback_url_given_at_submit_is_kept_and_shown_in_the_status(stack):
    url = f"https://127.0.0.1:{stack.callback_port}/dsr-events"
    submitted = dsr(
        "submit", "erasure", *subject_flags(stack, "bob"), *scope_flags(stack), "--callback-url", url
    )
    assert submitted.code == 0, submitted.err
    request_id = submitted.out.strip()
    try:
        view = json.loads(dsr("status", request_id, "--json").out)
        shown = dsr("status", request_id).out
    finally:
        dsr("cancel", request_id, "--reason", "test over")

    assert view["callback"]["url"] == url
    assert f"callback      {url}: " in shown
