"""The whole local stack in one object: Azurite (keyless), the Azure ML simulator with its managed-identity
endpoint, a Key Vault stand-in holding the package signing key (devtools/keyvault.py), and one or more local
Functions host processes running function_app.py.

The app's settings are exactly the ones it reads in Azure (identity-based storage connection, service base
URLs, allow-list); only their values point here. `LocalStack.settings` is that environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devtools import processes
from devtools.amlsim import Simulator
from devtools.amlsim.fixture import demo_tenant
from devtools.amlsim.identity import TokenIssuer
from devtools.azurite import Azurite
from devtools.certs import ensure_certificate
from devtools.keyvault import LocalKeyVault

ROOT = Path(__file__).resolve().parent.parent
TENANT_ID = "72f988bf-0000-4000-8000-00000000d5a1"
APP_PRINCIPAL_ID = "5b0c2a8e-1111-4a4b-9c9d-0000000000a1"
APP_CLIENT_ID = "9d4e1f20-2222-4c3b-8e8f-0000000000c1"


@dataclass
class HostProcess:
    proc: subprocess.Popen[bytes]
    http_url: str
    log: list[str] = field(default_factory=list)


@dataclass
class LocalStack:
    tenant: Any = None
    page_size: int = 5
    latency_ms: int = 0
    hosts: int = 1
    extra_settings: dict[str, str] = field(default_factory=dict)
    azurite_location: Path | None = None  # persist Azurite on disk (survives its restart); default in memory
    queue_lease_seconds: int = 600
    # Port of a local https receiver of the signed callbacks (127.0.0.1, the stack's certificate); 0 = pick one.
    callback_port: int = 0
    simulator: Simulator | None = None
    azurite: Azurite | None = None
    vault: LocalKeyVault | None = None
    host_processes: list[HostProcess] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    function_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def start(self) -> LocalStack:
        cert, key = ensure_certificate(ROOT / ".local" / "tls")
        self.callback_port = self.callback_port or _free_port()
        issuer = TokenIssuer(tenant_id=TENANT_ID, principal_id=APP_PRINCIPAL_ID, client_id=APP_CLIENT_ID)
        self.simulator = Simulator(
            self.tenant if self.tenant is not None else demo_tenant(),
            issuer,
            cert=cert,
            key=key,
            page_size=self.page_size,
            latency_ms=self.latency_ms,
        )
        self.simulator.start()
        self.azurite = Azurite(cert, key, location=self.azurite_location).start()
        self.vault = LocalKeyVault(issuer, cert, key).start()
        sim_host = urlsplit(self.simulator.base_url).netloc
        vault_host = urlsplit(self.vault.base_url).netloc
        urls = self.simulator.service_urls
        self.settings = {
            **self.simulator.identity_environment,
            "REQUESTS_CA_BUNDLE": str(cert),
            "AzureWebJobsStorage__blobServiceUri": self.azurite.url("blob"),
            "AzureWebJobsStorage__queueServiceUri": self.azurite.url("queue"),
            "AzureWebJobsStorage__tableServiceUri": self.azurite.url("table"),
            "AzureWebJobsStorage__credential": "managedidentity",
            "AzureWebJobsStorage__clientId": APP_CLIENT_ID,
            "DSR_IDENTITY_CLIENT_ID": APP_CLIENT_ID,
            "DSR_ARM_BASE_URL": urls["arm"],
            "DSR_EXPERIMENTS_BASE_URL": urls["experiments"],
            "DSR_MODELMANAGEMENT_BASE_URL": urls["modelmanagement"],
            "DSR_PIPELINES_BASE_URL": urls["pipelines"],
            "DSR_ALLOWED_HOSTS": f"{sim_host},{vault_host}",
            "DSR_GRAPH_BASE_URL": self.simulator.graph_url,
            "DSR_PSEUDONYM_KEY": secrets.token_urlsafe(32),
            "DSR_AUDIT_KEY": secrets.token_urlsafe(32),
            "DSR_SIGNING_KEY_ID": self.vault.key_id,
            "DSR_CALLBACK_ALLOWED_HOSTS": f"127.0.0.1:{self.callback_port}",
            "DSR_CALLBACK_SIGNING_KEY": secrets.token_urlsafe(32),
            "DSR_STATUS_RETRY_AFTER_SECONDS": "1",
            # Locally, the caller's identity comes from the headers Easy Auth sets in Azure (see principal.py).
            "DSR_TRUST_EASYAUTH_HEADERS": "true",
            "DSR_ALLOW_WORKSPACE_DELETION": "true",
            "DSR_OFFBOARDING_QUEUE": "offboarding-events",
            "DSR_OFFBOARDING_SCOPE": ",".join(
                sorted({w.subscription_id for w in self.simulator.tenant.workspaces.values()})
            ),
            "DSR_OFFBOARDING_AUTO_APPROVE": "true",
            "DSR_TENANT_ID": TENANT_ID,
            "FUNCTIONS_HOST_KEYS": self.function_key,
            "FUNCHOST_MAX_POLLING_INTERVAL_MS": "250",
            **self.extra_settings,
        }
        for _ in range(self.hosts):
            self.start_host()
        return self

    def start_host(self, **overrides: str) -> HostProcess:
        """Start one more host process (scale-out); `overrides` change its settings (e.g. a fault switch)."""
        env = {**os.environ, **self.settings, **overrides, "PYTHONUNBUFFERED": "1"}
        proc = processes.spawn(
            [
                sys.executable,
                "-m",
                "devtools.funchost",
                "--app",
                "function_app:app",
                "--root",
                str(ROOT),
                "--port",
                "0",
                "--queue-lease-seconds",
                str(self.queue_lease_seconds),
            ],
            env=env,
            cwd=str(ROOT),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"the local Functions host did not start:\n{err[-4000:]}")
        info = json.loads(line)
        host = HostProcess(proc, info["http_url"])
        threading.Thread(target=_drain, args=(proc, host.log), daemon=True).start()
        self.host_processes.append(host)
        return host

    def stop_host(self, host: HostProcess) -> None:
        processes.stop(host.proc)
        self.host_processes.remove(host)

    def kill_host(self, host: HostProcess) -> None:
        """SIGKILL: the host dies mid-invocation, as an instance can; its messages come back after their lease."""
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(host.proc.pid, signal.SIGKILL)
        host.proc.wait(timeout=10)
        processes.stop(host.proc)
        self.host_processes.remove(host)

    @property
    def api_url(self) -> str:
        return self.host_processes[0].http_url + "/api"

    def stop(self) -> None:
        for host in list(self.host_processes):
            self.stop_host(host)
        if self.azurite:
            self.azurite.stop()
        if self.vault:
            self.vault.stop()
        if self.simulator:
            self.simulator.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def apply_environment(self) -> None:
        """Put the app's settings into this process too (for tools and tests that use the domain package)."""
        os.environ.update(self.settings)


def _drain(proc: subprocess.Popen[bytes], sink: list[str]) -> None:
    streams = [s for s in (proc.stdout, proc.stderr) if s is not None]

    def pump(stream: Any) -> None:
        for raw in stream:
            sink.append(raw.decode(errors="replace").rstrip())
            if len(sink) > 5000:
                del sink[:2500]

    threads = [threading.Thread(target=pump, args=(s,), daemon=True) for s in streams]
    for t in threads:
        t.start()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy and return that; fail after `timeout` seconds.

    The one polling helper of the demo, the benchmarks and the tests."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what} (last value: {value!r})")
        time.sleep(interval)
