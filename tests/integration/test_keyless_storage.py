"""The product reaches Blob, Queue and Table keyless: bearer tokens from the managed-identity endpoint.

Azurite runs with https and `--oauth basic`, as production storage has shared-key access off. The product's
own `Storage` (built from the identity-based settings) must get its tokens from the managed-identity endpoint,
and Azurite must refuse an anonymous request and a token minted for another audience.
"""

from __future__ import annotations

import base64
import json

import pytest
import requests

from shared.core import settings as names


@pytest.fixture
def runtime(make_runtime):
    return make_runtime(ensure=False)  # the tests create the storage objects themselves


def test_storage_clients_use_managed_identity_tokens(runtime, identity_endpoint):
    # Given a fresh identity endpoint log, when the product creates its tables, queues and container
    identity_endpoint.requests.clear()
    runtime.storage.ensure()
    plan_queue = runtime.storage.queue_service.get_queue_client(names.PLAN_QUEUE)
    plan_queue.clear_messages()  # what earlier tests on this Azurite left there
    runtime.storage.send(names.PLAN_QUEUE, {"requestId": "r-1"}, delay_seconds=0)
    blob = runtime.storage.container.get_blob_client("probe/keyless.txt")
    blob.upload_blob(b"keyless", overwrite=True)
    # Then everything worked, and the token came from the identity endpoint for the Storage audience
    assert blob.download_blob().readall() == b"keyless"
    message = plan_queue.receive_message()
    assert json.loads(base64.b64decode(message.content)) == {
        "requestId": "r-1"
    }  # base64, as the host reads it
    tables = {
        t.name for t in runtime.storage.table_service.query_tables(f"TableName eq '{names.REQUESTS_TABLE}'")
    }
    assert tables == {names.REQUESTS_TABLE}
    resources = {r["resource"] for r in identity_endpoint.requests if r["status"] == "200"}
    assert resources == {"https://storage.azure.com"}


def test_anonymous_and_wrong_audience_requests_are_refused(runtime, azurite, issuer, tls):
    runtime.storage.ensure()
    runtime.storage.container.get_blob_client("probe/secret.txt").upload_blob(b"x", overwrite=True)
    url = f"{azurite.url('blob')}/dsr-exports/probe/secret.txt"
    anonymous = requests.get(url, verify=str(tls[0]), timeout=10)
    arm_token = issuer.mint("https://management.azure.com/.default")["access_token"]
    wrong_audience = requests.get(
        url,
        verify=str(tls[0]),
        timeout=10,
        headers={"Authorization": f"Bearer {arm_token}", "x-ms-version": "2025-11-05"},
    )
    storage_token = issuer.mint("https://storage.azure.com/.default")["access_token"]
    right = requests.get(
        url,
        verify=str(tls[0]),
        timeout=10,
        headers={"Authorization": f"Bearer {storage_token}", "x-ms-version": "2025-11-05"},
    )
    assert (anonymous.status_code, wrong_audience.status_code, right.status_code) == (403, 403, 200)
    assert right.content == b"x"


def test_the_identity_endpoint_refuses_a_caller_without_the_platform_header(identity_endpoint):
    answer = requests.get(
        identity_endpoint.url,
        params={"api-version": "2019-08-01", "resource": "https://storage.azure.com"},
        timeout=10,
    )
    assert answer.status_code == 401
    assert "access_token" not in answer.text
