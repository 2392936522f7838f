"""Fixtures for the local Functions host: the sample app, keyless storage settings, queue clients."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from azure.identity import ManagedIdentityCredential
from azure.storage.queue import QueueClient, QueueServiceClient, TextBase64EncodePolicy

from devtools.amlsim.identity import IdentityEndpoint
from devtools.azurite import Azurite
from devtools.funchost import FunctionHost
from devtools.stack import wait_for as stack_wait_for
from tests.conftest import APP_CLIENT_ID, ROOT

HERE = Path(__file__).resolve().parent
APP_REF = "tests.devtools.funchost.sample_app:app"
HOST_JSON = HERE / "host.json"
HOST_KEY = "local-test-key"
RARE_SCHEDULE = "0 0 0 1 1 *"  # once a year: the timer stays quiet unless a test asks for it

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """The stack's polling helper with this folder's shorter defaults."""
    value: T = stack_wait_for(probe, timeout, interval, what)
    return value


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """App settings every sample-app host needs: a fresh queue name, a quiet timer, a host key."""
    env = {
        "FUNCHOST_SAMPLE_QUEUE": f"work-{uuid.uuid4().hex[:12]}",
        "FUNCHOST_SAMPLE_SCHEDULE": RARE_SCHEDULE,
        "FUNCTIONS_HOST_KEYS": f"other-key,{HOST_KEY}",
        "FUNCHOST_MAX_POLLING_INTERVAL_MS": "200",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def storage_env(
    app_env: dict[str, str],
    azurite: Azurite,
    identity_endpoint: IdentityEndpoint,
    tls: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """Identity-based AzureWebJobsStorage against keyless Azurite, as the app has it in Azure."""
    env = {
        "REQUESTS_CA_BUNDLE": str(tls[0]),
        "AzureWebJobsStorage__queueServiceUri": azurite.url("queue"),
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": APP_CLIENT_ID,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**app_env, **env}


@pytest.fixture
def queue_service(storage_env: dict[str, str]) -> Iterator[QueueServiceClient]:
    credential = ManagedIdentityCredential(client_id=APP_CLIENT_ID)
    with QueueServiceClient(
        storage_env["AzureWebJobsStorage__queueServiceUri"], credential=credential
    ) as service:
        yield service


@pytest.fixture
def queue_name(storage_env: dict[str, str]) -> str:
    return storage_env["FUNCHOST_SAMPLE_QUEUE"]


@pytest.fixture
def sender(queue_service: QueueServiceClient, queue_name: str) -> QueueClient:
    """A producer as the product has one: azure-storage-queue with base64 encoding."""
    return queue_service.get_queue_client(queue_name, message_encode_policy=TextBase64EncodePolicy())


@pytest.fixture
def raw_client(queue_service: QueueServiceClient) -> Callable[[str], QueueClient]:
    """Clients that send and read message text as is (no encoding)."""
    return lambda name: queue_service.get_queue_client(name)


def make_app(folder: Path, body: str) -> str:
    """Write a one-off app module (`app = func.FunctionApp()` + `body`) in `folder`; return its reference."""
    name = f"app_{uuid.uuid4().hex[:10]}"
    (folder / f"{name}.py").write_text("import azure.functions as func\napp = func.FunctionApp()\n" + body)
    return f"{name}:app"


def start_host(**kwargs: Any) -> FunctionHost:
    return FunctionHost(APP_REF, root=ROOT, host_json=HOST_JSON, **kwargs).start()


@pytest.fixture
def host(storage_env: dict[str, str]) -> Iterator[FunctionHost]:
    """The sample app in a started host with queues and timers, on a free port."""
    instance = start_host()
    try:
        yield instance
    finally:
        instance.stop(timeout=10)
