"""`make demo`: the main job end to end on the local stack.

Starts Azurite (keyless), the Azure ML simulator (demo tenant, with Microsoft Graph) and the local Functions host;
exports one person's data, named by UPN only (Graph resolves the object id and e-mail: one line shows the
identifiers used and their sources), with the `dsr` command line (submit, status --watch with its progress bars,
download with every sha-256 checked); prints what the package holds; checks it against the simulator's ground
truth (that person's records, nobody else's); then an erasure dry run, an approved erasure and an offboarding
event through the HTTP API; stops; exits 0 or 1.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from typing import Any

import requests
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import ContainerClient

from devtools.package_check import expected_export, read_package
from devtools.stack import APP_CLIENT_ID, ROOT, LocalStack
from dsr_cli import main as cli

DEMO_PERSON = "alice"
TERMINAL = {"completed", "completed_with_errors", "failed"}


def submit(
    stack: LocalStack,
    body: dict[str, Any],
    idempotency_key: str | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    headers = {"x-functions-key": stack.function_key, "Content-Type": "application/json", **(headers or {})}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return requests.post(f"{stack.api_url}/v1/requests", json=body, headers=headers, timeout=30)


def status(stack: LocalStack, location: str) -> dict[str, Any]:
    response = requests.get(location, headers={"x-functions-key": stack.function_key}, timeout=30)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def wait(stack: LocalStack, location: str, timeout: float = 300, show: bool = False) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        view = status(stack, location)
        if show:
            line = progress_line(view)
            if line != last:
                print(line, flush=True)
                last = line
        if view["status"] in TERMINAL:
            return view
        if time.monotonic() > deadline:
            raise TimeoutError(f"request still {view['status']} after {timeout}s")
        time.sleep(0.5)


def progress_line(view: dict[str, Any]) -> str:
    progress = view.get("progress", {})
    tasks = sum(p.get("tasks", 0) for p in progress.values())
    done = sum(p.get("done", 0) + p.get("failed", 0) for p in progress.values())
    kept = sum(p.get("recordsKept", 0) for p in progress.values())
    return f"  {view['status']:<22} tasks {done:>3}/{tasks:<3} records kept {kept}"


def container_client(stack: LocalStack) -> ContainerClient:
    return ContainerClient(
        stack.settings["AzureWebJobsStorage__blobServiceUri"],
        "dsr-exports",
        credential=ManagedIdentityCredential(client_id=APP_CLIENT_ID),
    )


APPROVER = {
    "X-MS-CLIENT-PRINCIPAL-ID": "22222222-bbbb-4bbb-8bbb-000000000002",
    "X-MS-CLIENT-PRINCIPAL-NAME": "privacy.officer@contoso.com",
}
SUBMITTER = {
    "X-MS-CLIENT-PRINCIPAL-ID": "11111111-aaaa-4aaa-8aaa-000000000001",
    "X-MS-CLIENT-PRINCIPAL-NAME": "helpdesk@contoso.com",
}


def erasure_record(stack: LocalStack, request_id: str) -> dict[str, Any]:
    data = (
        container_client(stack).get_blob_client(f"{request_id}/erasure-record.json").download_blob().readall()
    )
    record: dict[str, Any] = json.loads(data)
    return record


def show_record(record: dict[str, Any]) -> None:
    for family, counts in record["counts"].items():
        print(f"  {family:<10} " + ", ".join(f"{outcome}: {n}" for outcome, n in sorted(counts.items())))


def dsr(*argv: str, capture: bool = False) -> tuple[int, str]:
    """Run the `dsr` command line in this process, as an officer would type it (printed first). Its progress
    bars go to stderr; with `capture`, its stdout is returned instead of printed."""
    print("  $ dsr " + " ".join(argv), flush=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out) if capture else contextlib.nullcontext():
        code = cli.main(list(argv))
    return code, out.getvalue()


def export_step(stack: LocalStack, person: Any, subscriptions: list[str]) -> bool:
    """The export, from submit to a verified download, through the `dsr` command line; then the package is
    checked against the simulator's ground truth."""
    assert stack.simulator is not None
    print(
        f"\n[1] Export with the dsr command line, for the demo person across {len(subscriptions)} subscriptions,"
        " named by UPN only (Microsoft Graph resolves the rest)"
    )
    os.environ.update(
        {"DSR_API_URL": stack.host_processes[0].http_url, "DSR_FUNCTION_KEY": stack.function_key}
    )
    print("  (DSR_API_URL is the local Functions host; DSR_FUNCTION_KEY its key)")
    t0 = time.monotonic()
    scope = [flag for sub in subscriptions for flag in ("--subscription", sub)]
    code, out = dsr(
        "submit", "export", "--upn", person.upn,
        *scope, "--reference", "DEMO-1", "--idempotency-key", "demo-export-1",
        capture=True,
    )  # fmt: skip
    if code != 0:
        return False
    request_id = out.strip()
    print(f"  {request_id}")
    code, out = dsr("status", request_id, "--watch", "--timeout", "300", capture=True)
    elapsed = time.monotonic() - t0
    print("\n".join("  " + line for line in out.splitlines() if line.split()[:1] in (["status"], ["due"])))
    if code != 0:
        return False
    downloads = ROOT / ".local" / "demo"
    code, _ = dsr("download", request_id, "-o", str(downloads))
    downloaded = code == 0

    report = read_package(container_client(stack), request_id)
    print(f"\n  Request {request_id}: completed in {elapsed:.1f}s")
    print("  " + identity_line(status(stack, f"{stack.api_url}/v1/requests/{request_id}")))
    files = report.manifest["files"]
    shown = 8
    print(f"\n  {len(files)} files in the package; the first {shown} (path under the request id):")
    print(f"  {'file':<96} {'records':>7}  sha-256")
    for entry in files[:shown]:
        path = entry["path"].split("/", 1)[1]
        print(f"  {path:<96} {entry['records']:>7}  {entry['sha256'][:16]}...")
    print(f"  ... and {len(files) - shown} more, all listed in manifest.json")
    v1 = {f: n for f, n in report.records.items() if not f.startswith("v2:")}
    v2 = {f.removeprefix("v2:"): n for f, n in report.records.items() if f.startswith("v2:")}
    print("\n  Records per family (v1 procedure): " + ", ".join(f"{f} {n}" for f, n in sorted(v1.items())))
    print("  Records per v2 (ARM) family: " + ", ".join(f"{f} {n}" for f, n in sorted(v2.items())))
    calls = [e for e in stack.simulator.log if not e["path"].startswith("/_sim")]
    print(f"  Azure ML API calls: {len(calls)}; package: {downloads.relative_to(ROOT)}/{request_id}.zip")
    differences = report.compare(
        expected_export(stack.simulator, DEMO_PERSON)
    )  # what the contract lets it find
    print(
        f"  Checked against the simulator's ground truth: {differences or 'equal (that person, nobody else)'}"
    )
    print(
        f"  sha-256 of every file matches the manifest (in storage and in the downloaded zip): {downloaded}"
    )
    return downloaded and not differences and not report.hash_mismatches and not report.duplicates


def identity_line(view: dict[str, Any]) -> str:
    """One line: the identifiers the request used and where each came from (the demo's fake people)."""
    identity = view.get("identity") or {}
    used = ", ".join(f"{i['kind']} {i['value']} ({i['source']})" for i in identity.get("identifiers") or [])
    missing = ", ".join(m["kind"] for m in identity.get("missing") or []) or "none"
    outcome = (identity.get("graph") or {}).get("outcome")
    return f"Identified by: {used}; Microsoft Graph: {outcome}; missing kinds: {missing}"


def erasure_step(stack: LocalStack, body: dict[str, Any]) -> bool:
    sim = stack.simulator
    assert sim is not None
    sim.clear_log()
    print("\n[2] Erasure dry run: what would be deleted (no approval needed, nothing is deleted)")
    dry = wait(stack, submit(stack, {**body, "type": "erasure", "dryRun": True}).headers["Location"])
    planned = erasure_record(stack, dry["id"])
    show_record(planned)
    dry_deletes = [e for e in sim.log if e["method"] == "DELETE"]
    print(f"  {len(planned['items'])} objects would be deleted; DELETE calls sent: {len(dry_deletes)}")

    print("\n[3] Erasure: submitted by the help desk, approved by the privacy officer")
    before = sim.snapshot()
    submitted = submit(stack, {**body, "type": "erasure"}, headers=SUBMITTER).json()
    print(f"  -> {submitted['status']}")
    approve = requests.post(
        f"{stack.api_url}/v1/requests/{submitted['id']}:approve",
        json={"reason": "identity verified, ticket DEMO-1"},
        headers={"x-functions-key": stack.function_key, **APPROVER},
        timeout=30,
    )
    print(f"  POST :approve -> {approve.status_code}, approved by {approve.json()['decision']['by']['name']}")
    t0 = time.monotonic()
    done = wait(stack, submitted["links"]["self"], show=True)
    record = erasure_record(stack, done["id"])
    print(f"  Request {done['id']}: {done['status']} in {time.monotonic() - t0:.1f}s")
    show_record(record)
    blocked = [i for i in record["items"] if i["outcome"] == "blocked"]
    for item in blocked:
        print(
            f"  kept and reported: {item['family']} {item['id']}: 409 {item['delete'].get('message', '')[:80]}"
        )
    deleted = {(i["workspace"], i["id"]) for i in record["items"] if i["outcome"] == "deleted"}
    verified = all(i["verification"]["status"] == 404 for i in record["items"] if i["outcome"] == "deleted")
    same_set = {(i["workspace"], i["id"]) for i in record["items"]} == {
        (i["workspace"], i["id"]) for i in planned["items"]
    }
    after = sim.snapshot()
    lost = _ids(before) - _ids(after)
    untouched = all(_bodies(after)[k] == _bodies(before)[k] for k in _ids(after))
    print(f"  deleted {len(deleted)}, each read back as 404: {verified}; same set as the dry run: {same_set}")
    print(
        f"  simulator state: {len(lost)} objects gone, all of them erased items: {lost == deleted}; "
        f"every other object unchanged: {untouched}"
    )
    print(f"  erasure record: dsr-exports/{done['id']}/erasure-record.json")
    return bool(deleted) and verified and same_set and lost == deleted and untouched and not dry_deletes


def _bodies(snapshot: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        (ws["id"], obj["id"]): obj["body"]
        for ws in snapshot["workspaces"]
        for items in ws["families"].values()
        for obj in items
    }


def _ids(snapshot: dict[str, Any]) -> set[tuple[str, str]]:
    return set(_bodies(snapshot))


def offboarding_step(stack: LocalStack, person_key: str = "bob") -> bool:
    """An HR system offboards an employee: a CloudEvents event on the queue, no ticket, no API call."""
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    sim = stack.simulator
    assert sim is not None
    person = sim.tenant.people[person_key]
    print(
        f"\n[4] Offboarding: HR puts a CloudEvents event for an employee ({person_key}) on the offboarding queue"
    )
    event = {
        "specversion": "1.0",
        "id": f"hr-{int(time.time())}",
        "source": "/hr/workday",
        "type": "com.contoso.hr.employee.offboarded",
        "data": {
            "objectId": person.object_id,
            "tenantId": sim.tenant.tenant_id,
            "userPrincipalName": person.upn,
            "mail": person.email,
        },
    }
    queue = QueueClient(
        stack.settings["AzureWebJobsStorage__queueServiceUri"],
        stack.settings["DSR_OFFBOARDING_QUEUE"],
        credential=ManagedIdentityCredential(client_id=APP_CLIENT_ID),
        message_encode_policy=TextBase64EncodePolicy(),
    )
    t0 = time.monotonic()
    queue.send_message(json.dumps(event))
    queue.send_message(json.dumps(event))  # delivered twice, as queues may: starts nothing more
    search = f"{stack.api_url}/v1/requests:search"
    headers = {"x-functions-key": stack.function_key}
    found: list[dict[str, Any]] = []
    while time.monotonic() - t0 < 60 and not found:
        answer = requests.post(
            search, json={"subjectObjectId": person.object_id}, headers=headers, timeout=30
        )
        found = [r for r in answer.json()["value"] if r["source"] == "offboarding"]
        time.sleep(0.5)
    if len(found) != 1:
        print(f"  expected one offboarding request, found {len(found)}")
        return False
    print(f"  -> request {found[0]['id']} ({found[0]['type']}, started by the event; approval by policy)")
    done = wait(stack, f"{stack.api_url}/v1/requests/{found[0]['id']}", show=True)
    record = erasure_record(stack, done["id"])
    show_record(record)
    duplicates = requests.get(
        f"{stack.api_url}/v1/offboarding/events", params={"status": "duplicate"}, headers=headers, timeout=30
    ).json()["value"]
    print(
        f"  {done['status']} in {time.monotonic() - t0:.1f}s; the second delivery was recorded as a duplicate "
        f"of it: {any(d['duplicateOf'] == done['id'] for d in duplicates)}"
    )
    deleted = [i for i in record["items"] if i["outcome"] == "deleted"]
    return bool(deleted) and any(d["duplicateOf"] == done["id"] for d in duplicates)


def main() -> int:
    started = time.monotonic()
    print(
        "Starting the local stack: Azurite (https, OAuth), Azure ML simulator, Functions host ...", flush=True
    )
    with LocalStack() as stack:
        stack.apply_environment()
        assert stack.simulator is not None
        person = stack.simulator.tenant.people[DEMO_PERSON]
        subscriptions = sorted({ws.subscription_id for ws in stack.simulator.tenant.workspaces.values()})
        print(f"  stack up in {time.monotonic() - started:.1f}s; Functions host at {stack.api_url}")
        body = {
            "type": "export",
            "subject": {"objectId": person.object_id, "userPrincipalName": person.upn, "email": person.email},
            "scope": {"subscriptions": subscriptions},
            "reference": "DEMO-1",
        }
        exported = export_step(stack, person, subscriptions)
        erased = erasure_step(stack, body)
        offboarded = offboarding_step(stack)
    ok = exported and erased and offboarded
    print(f"\nDemo {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
