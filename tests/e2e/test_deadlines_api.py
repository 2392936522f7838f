"""Deadlines, the list and the package link through the local Functions host: what an operator's tools see."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
import requests
from azure.identity import ManagedIdentityCredential

from devtools.demo import APPROVER, SUBMITTER, status, submit, wait
from devtools.stack import APP_CLIENT_ID
from shared.core.settings import Settings
from shared.runtime import Runtime
from tests.e2e.test_export import export_body


@pytest.fixture
def store(stack):
    return Runtime.create(
        Settings.from_env(stack.settings), ManagedIdentityCredential(client_id=APP_CLIENT_ID)
    )


def post(stack, path, body, who=APPROVER):
    return requests.post(
        f"{stack.api_url}{path}",
        json=body,
        headers={"x-functions-key": stack.function_key, **who},
        timeout=30,
    )


def get(stack, path, **kwargs):
    return requests.get(
        f"{stack.api_url}{path}", headers={"x-functions-key": stack.function_key}, timeout=30, **kwargs
    )


def test_an_extension_moves_the_deadline_once_and_says_so_in_the_status(stack, sim):
    body = {**export_body(sim), "type": "erasure"}  # an erasure waits for approval: nothing runs meanwhile
    created = submit(stack, body, headers=SUBMITTER)
    assert created.status_code == 202, created.text
    view = created.json()
    assert view["status"] == "awaiting_approval"
    assert view["deadline"]["state"] == "on_time"
    due = dt.datetime.fromisoformat(view["dueAt"])

    extended = post(stack, f"/v1/requests/{view['id']}:extend", {"months": 2, "reason": "complex request"})
    assert extended.status_code == 200, extended.text
    after = extended.json()
    assert dt.datetime.fromisoformat(after["dueAt"]) > due + dt.timedelta(days=58)
    assert after["deadline"]["extension"]["months"] == 2
    assert after["deadline"]["extension"]["by"]["name"] == "privacy.officer@contoso.com"

    again = post(stack, f"/v1/requests/{view['id']}:extend", {"months": 1, "reason": "more time"})
    assert again.status_code == 409
    assert again.headers["Content-Type"].startswith("application/problem+json")
    assert "already extended" in again.json()["detail"]
    bad = post(stack, f"/v1/requests/{view['id']}:extend", {"months": 3, "reason": "too long"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "months"
    assert status(stack, view["links"]["self"])["dueAt"] == after["dueAt"]  # the refused ones changed nothing
    post(stack, f"/v1/requests/{view['id']}:reject", {"reason": "test over"})


def test_the_list_filters_by_status_and_pages_with_next_links(stack, sim):
    ids = []
    for _ in range(3):
        created = submit(stack, {**export_body(sim), "type": "erasure"}, headers=SUBMITTER)
        assert created.status_code == 202, created.text
        ids.append(created.json()["id"])
    seen: list[dict] = []
    url = f"{stack.api_url}/v1/requests?status=awaiting_approval&pageSize=2"
    pages = 0
    while url:
        response = requests.get(url, headers={"x-functions-key": stack.function_key}, timeout=30)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["value"]) <= 2
        seen.extend(page["value"])
        url = page["nextLink"]
        pages += 1
    listed = [item["id"] for item in seen]
    assert [i for i in listed if i in ids] == ids  # in the order received
    assert all(item["status"] == "awaiting_approval" for item in seen)
    assert pages >= 2
    assert get(stack, "/v1/requests?overdue=true").json()["value"] == []  # nothing here is a month old
    refused = get(stack, "/v1/requests?status=finished")
    assert refused.status_code == 400
    assert "status" in refused.json()["detail"]
    for request_id in ids:
        post(stack, f"/v1/requests/{request_id}:reject", {"reason": "test over"})


def test_the_package_link_is_stable_mints_a_fresh_link_each_time_and_ends_with_the_retention(
    stack, sim, store
):
    view = wait(stack, submit(stack, export_body(sim)).headers["Location"], timeout=240)
    assert view["status"] == "completed", view["errors"]
    assert view["deadline"]["state"] == "met"
    link = view["links"]["package"]
    assert link == f"{stack.api_url}/v1/requests/{view['id']}/package"
    first = requests.get(
        link, headers={"x-functions-key": stack.function_key}, allow_redirects=False, timeout=30
    )
    second = requests.get(
        link, headers={"x-functions-key": stack.function_key}, allow_redirects=False, timeout=30
    )
    assert first.status_code == second.status_code == 302
    assert first.headers["Cache-Control"] == "no-store"
    sas = first.headers["Location"]
    assert f"/{view['id']}/package.zip?" in sas
    assert "sig=" in sas
    package = requests.get(sas, timeout=60)  # the SAS is the only credential: no key, no token
    assert package.status_code == 200
    with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
        names = set(archive.namelist())
    assert {"manifest.json", "index.html"} <= names

    request = store.store.get_request(view["id"])
    request.completed_at = request.completed_at - dt.timedelta(days=31)  # past the 30 days of retention
    store.store.update_request(request)
    gone = requests.get(
        link, headers={"x-functions-key": stack.function_key}, allow_redirects=False, timeout=30
    )
    assert gone.status_code == 410
    assert gone.headers["Content-Type"].startswith("application/problem+json")
    assert "package" not in status(stack, view["links"]["self"])["links"]
