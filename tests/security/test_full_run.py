"""A full run with tokens required: the demo person's export and erasure. The package is reached only through a
short-lived read-only user delegation SAS, tested for real against Azurite; and no log line of the run, in the
host or in this process, carries any identifier of the person, in any letter case."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import azure.functions as func
import pytest
import requests

from shared.edge import http_api, routes
from shared.runtime import Runtime
from tests.security.conftest import Api, subject_of, subscriptions
from tests.security.idp import APPROVER, OFFICER, READER, SUBMITTER, Person

PERSON = "alice"


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("devtools"):
            return  # the simulator plays Azure: its own logs are not the product's
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def in_process_logs() -> Iterator[Collect]:
    handler = Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def export(api: Api, rt: Runtime, secure_stack: Any, in_process_logs: Collect) -> dict[str, Any]:
    """The person's export, submitted in this process (real HttpRequest, the app's handler), run by the host."""
    sim = secure_stack.simulator
    body = {
        "type": "export",
        "subject": subject_of(sim, PERSON),
        "scope": {"subscriptions": subscriptions(sim)},
    }
    request = func.HttpRequest(
        "POST",
        f"{api.stack.api_url}/v1/requests",
        headers={"Content-Type": "application/json", **api.idp.headers(SUBMITTER)},
        body=json.dumps(body).encode(),
    )
    response = routes.handle(request, http_api.submit)
    assert response.status_code == 202, response.get_body()
    view = api.wait(json.loads(response.get_body())["id"])
    assert view["status"] == "completed", view["errors"]
    return view


def test_the_package_link_is_a_short_lived_read_only_https_sas(api: Api, export: dict[str, Any]) -> None:
    # Only a reader gets it
    assert api.call("GET", f"v1/requests/{export['id']}/package", SUBMITTER).status_code == 403
    issued = dt.datetime.now(dt.UTC)
    response = api.call("GET", f"v1/requests/{export['id']}/package", READER)
    assert response.status_code == 302, response.text
    assert response.headers["Cache-Control"] == "no-store"
    location = response.headers["Location"]
    parts = urlsplit(location)
    sas = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.scheme == "https"
    assert parts.path.endswith(f"/dsr-exports/{export['id']}/package.zip")
    assert (sas["sp"], sas["spr"], sas["sr"]) == ("r", "https", "b")  # read, https only, one blob
    assert sas["skoid"]  # signed with a user delegation key (the managed identity), not an account key
    expiry = dt.datetime.fromisoformat(sas["se"].replace("Z", "+00:00"))
    assert (
        dt.timedelta(minutes=9) <= expiry - issued <= dt.timedelta(minutes=11)
    )  # DSR_PACKAGE_SAS_MINUTES=10
    assert expiry - issued <= dt.timedelta(hours=1)

    # The link works, for real, against Azurite
    package = requests.get(location, timeout=10)
    assert package.status_code == 200, package.text
    with zipfile.ZipFile(io.BytesIO(package.content)) as archive:
        assert json.loads(archive.read("manifest.json"))["request"]["id"] == export["id"]
    # Without the SAS, or with it changed, or to write, it does not
    blob_url = location.split("?", 1)[0]
    assert requests.get(blob_url, timeout=10).status_code == 403
    widened = location.replace("sp=r&", "sp=rw&")
    assert widened != location
    assert requests.get(widened, timeout=10).status_code == 403
    later = (expiry + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    extended = location.replace(sas["se"].replace(":", "%3A"), later.replace(":", "%3A"))
    assert extended != location
    assert requests.get(extended, timeout=10).status_code == 403
    write = requests.put(location, data=b"{}", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert write.status_code == 403
    # Another blob of the package cannot be reached with this signature
    other = location.replace("/package.zip?", "/manifest.json?")
    assert requests.get(other, timeout=10).status_code == 403


def test_no_package_before_it_is_written(api: Api, secure_stack: Any) -> None:
    sim = secure_stack.simulator
    body = {
        "type": "erasure",
        "subject": subject_of(sim, "bob"),
        "scope": {"subscriptions": subscriptions(sim)},
    }
    waiting = api.call("POST", "v1/requests", SUBMITTER, body=body)
    assert waiting.json()["status"] == "awaiting_approval"
    response = api.call("GET", f"v1/requests/{waiting.json()['id']}/package", READER)
    assert response.status_code == 409
    assert response.headers["Content-Type"].startswith("application/problem+json")
    api.call("POST", f"v1/requests/{waiting.json()['id']}:cancel", SUBMITTER)


def test_a_submitter_cancels_only_its_own_requests_an_approver_any(api: Api, secure_stack: Any) -> None:
    sim = secure_stack.simulator
    body = {
        "type": "erasure",
        "subject": subject_of(sim, "bob"),
        "scope": {"subscriptions": subscriptions(sim)},
    }
    other_submitter = Person(
        "a1000000-0000-4000-8000-00000000001a", "other.desk@contoso.com", ("DSR.Submit",)
    )
    mine = api.call("POST", "v1/requests", SUBMITTER, body=body).json()["id"]
    theirs = api.call("POST", "v1/requests", other_submitter, body=body).json()["id"]
    refused = api.call("POST", f"v1/requests/{theirs}:cancel", SUBMITTER)
    assert refused.status_code == 403
    assert "submitter" in refused.json()["detail"]
    assert api.call("GET", f"v1/requests/{theirs}").json()["status"] == "awaiting_approval"  # unchanged
    assert api.call("POST", f"v1/requests/{mine}:cancel", SUBMITTER).status_code == 200
    assert api.call("POST", f"v1/requests/{theirs}:cancel", APPROVER).status_code == 200
    assert api.call("GET", f"v1/requests/{theirs}").json()["decision"]["by"]["name"] == "approver@contoso.com"


def test_no_log_line_of_a_full_run_names_the_person(
    api: Api, secure_stack: Any, export: dict[str, Any], in_process_logs: Collect
) -> None:
    sim = secure_stack.simulator
    person = sim.tenant.people[PERSON]
    # The rest of the run: the person's erasure, approved by someone else, and the lookup by identifier
    body = {
        "type": "erasure",
        "subject": subject_of(sim, PERSON),
        "scope": {"subscriptions": subscriptions(sim)},
    }
    submitted = api.call("POST", "v1/requests", SUBMITTER, body=body)
    assert submitted.status_code == 202, submitted.text
    request_id = submitted.json()["id"]
    approved = api.call(
        "POST", f"v1/requests/{request_id}:approve", APPROVER, body={"reason": "ticket verified"}
    )
    assert approved.status_code == 200, approved.text
    done = api.wait(request_id)
    assert done["status"] in ("completed", "completed_with_errors")
    assert any(p.get("deleted") for p in done["progress"].values()) or done["progress"]

    # Then: every identifier of the person, in any letter case, in no log line of the host or this process
    host_lines = [line for host in secure_stack.host_processes for line in host.log]
    lines = host_lines + in_process_logs.lines
    assert len(host_lines) > 20, "the host's logs were not captured"
    assert in_process_logs.lines, "this process's logs were not captured"
    identifiers = {
        form
        for value in (person.object_id, person.upn, person.email)
        if value
        for form in (value, quote(value, safe=""), quote_plus(value))
    }
    leaks = [
        (identifier, line[:300])
        for line in lines
        for identifier in identifiers
        if identifier.lower() in line.lower()
    ]
    print(f"\n[logs] {len(host_lines)} host lines, {len(in_process_logs.lines)} in-process lines scanned")
    assert leaks == []


def test_the_lookup_by_person_keeps_the_identifier_out_of_urls(
    api: Api, secure_stack: Any, caplog: Any
) -> None:
    person = secure_stack.simulator.tenant.people[PERSON]
    caplog.set_level(logging.DEBUG)
    # POST :search carries the identifier in the body: the URL (logged by HTTP clients, proxies and request
    # telemetry) never holds it. (GET /v1/requests?subjectObjectId= exists for callers that cannot POST.)
    response = api.call("POST", "v1/requests:search", OFFICER, body={"subjectObjectId": person.object_id})
    assert response.status_code == 200
    assert response.json()["value"], "the person's requests are found"
    assert person.object_id not in caplog.text  # the caller's HTTP client logs the URL, as proxies do
