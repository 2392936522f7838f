"""`make demo`: the main job end to end on the local stack.

Starts Azurite (keyless), the Azure ML simulator (demo tenant) and the local Functions host; submits an export
for one person through the HTTP API; shows progress until done; prints what the package holds; checks it against
the simulator's ground truth (that person's records, nobody else's) and every sha-256; stops; exits 0 or 1.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import requests
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import ContainerClient

from devtools.package_check import read_package
from devtools.stack import APP_CLIENT_ID, LocalStack

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
        print(
            f"\nPOST /api/v1/requests: export for the demo person across {len(subscriptions)} subscriptions"
        )
        t0 = time.monotonic()
        response = submit(stack, body, idempotency_key="demo-1")
        print(f"  -> {response.status_code}, Location: {response.headers.get('Location')}")
        if response.status_code != 202:
            print(response.text)
            return 1
        view = wait(stack, response.headers["Location"], show=True)
        elapsed = time.monotonic() - t0
        report = read_package(container_client(stack), view["id"])
        manifest = report.manifest
        print(f"\nRequest {view['id']}: {view['status']} in {elapsed:.1f}s (due {view['dueAt']})")
        print(f"\n{'file':<92} {'records':>7}  sha-256")
        for entry in manifest["files"]:
            print(f"{entry['path']:<92} {entry['records']:>7}  {entry['sha256'][:16]}...")
        print("\nRecords per family:")
        for family, count in sorted(report.records.items()):
            print(f"  {family:<22} {count}")
        calls = [e for e in stack.simulator.log if not e["path"].startswith("/_sim")]
        print(f"\nAzure ML API calls: {len(calls)}; package: dsr-exports/{view['id']}/manifest.json")
        differences = report.compare(stack.simulator.truth(DEMO_PERSON))
        ok = view["status"] == "completed" and not differences and not report.hash_mismatches
        ok = ok and not report.duplicates
        print(f"Checked against the simulator's ground truth: {differences if differences else 'equal'}")
        print(f"sha-256 of every file matches the manifest: {not report.hash_mismatches}")
    print(f"\nDemo {'passed' if ok else 'FAILED'} in {time.monotonic() - started:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
