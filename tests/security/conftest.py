"""The security tests' own stack: the local stack with Entra ID tokens required (DSR_REQUIRE_ENTRA_TOKEN on),
validated against a local identity provider (locally generated RSA keys, an https JWKS endpoint)."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.data.tables import TableClient
from azure.identity import ManagedIdentityCredential
from azure.storage.queue import QueueClient

from devtools.demo import TERMINAL
from devtools.stack import APP_CLIENT_ID, LocalStack
from shared.core import settings as names
from shared.core.settings import Settings
from shared.runtime import Runtime, set_runtime
from tests.security.idp import OFFICER, IdentityProvider, Person


@pytest.fixture(scope="package")
def idp(tls: tuple[Path, Path]) -> Iterator[IdentityProvider]:
    provider = IdentityProvider(*tls).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="package")
def secure_stack(idp: IdentityProvider) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    with LocalStack(
        page_size=5, extra_settings={**idp.settings(), "DSR_PACKAGE_SAS_MINUTES": "10"}
    ) as running:
        running.apply_environment()
        yield running
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="package")
def rt(secure_stack: LocalStack) -> Iterator[Runtime]:
    """The app's runtime in this process, on the secure stack's storage (for in-process handler calls)."""
    runtime = Runtime.create(
        Settings.from_env(secure_stack.settings), ManagedIdentityCredential(client_id=APP_CLIENT_ID)
    )
    runtime.storage.ensure()
    set_runtime(runtime)
    yield runtime
    set_runtime(None)


@pytest.fixture
def sim(secure_stack: LocalStack):
    assert secure_stack.simulator is not None
    secure_stack.simulator.clear_faults()
    secure_stack.simulator.clear_log()
    yield secure_stack.simulator
    secure_stack.simulator.clear_faults()


class Api:
    """Calls to the secure stack's host: function key always, bearer token as asked."""

    def __init__(self, stack: LocalStack, idp: IdentityProvider) -> None:
        self.stack, self.idp = stack, idp
        self.session = requests.Session()

    def call(
        self,
        method: str,
        path: str,
        who: Person | None = OFFICER,
        kind: str = "valid",
        body: Any = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        all_headers = {
            "x-functions-key": self.stack.function_key,
            **self.idp.headers(who, kind),
            **(headers or {}),
        }
        return self.session.request(
            method,
            f"{self.stack.api_url}/{path.lstrip('/')}",
            json=body,
            headers=all_headers,
            timeout=30,
            allow_redirects=False,
            **kwargs,
        )

    def wait(self, request_id: str, timeout: float = 240) -> dict[str, Any]:
        """Poll the request's status (as an officer) until it ends."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.call("GET", f"v1/requests/{request_id}")
            assert response.status_code == 200, response.text
            view: dict[str, Any] = response.json()
            if view["status"] in TERMINAL:
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"request still {view['status']} after {timeout}s")
            time.sleep(0.3)


@pytest.fixture(scope="package")
def api(secure_stack: LocalStack, idp: IdentityProvider) -> Api:
    return Api(secure_stack, idp)


def storage_clients(settings: dict[str, str]) -> tuple[TableClient, QueueClient]:
    credential = ManagedIdentityCredential(client_id=APP_CLIENT_ID)
    table = TableClient(settings[names.STORAGE_TABLE_URI], names.REQUESTS_TABLE, credential=credential)
    queue = QueueClient(settings[names.STORAGE_QUEUE_URI], names.PLAN_QUEUE, credential=credential)
    return table, queue


def with_settings(rt: Runtime, **changes: Any) -> Runtime:
    return dataclasses.replace(rt, settings=dataclasses.replace(rt.settings, **changes))


Subject = Callable[[str], dict[str, str]]


def subject_of(sim: Any, key: str = "alice") -> dict[str, str]:
    person = sim.tenant.people[key]
    return {"objectId": person.object_id, "userPrincipalName": person.upn, "email": person.email}


def subscriptions(sim: Any) -> list[str]:
    return sorted({ws.subscription_id for ws in sim.tenant.workspaces.values()})
