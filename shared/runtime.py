"""The process-wide dependencies: settings, the managed-identity credential, storage and the Azure ML client.

Built lazily on first use (never at import time, so a missing setting fails the invocation loudly with its
name instead of silently becoming None in a decorator), then reused by every invocation of the process.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass
from typing import Any

from shared.aml.budget import SharedBudget
from shared.aml.client import AzureMLClient, RateLimiter
from shared.aml.identity import graph_client
from shared.core import telemetry
from shared.core.outbound import AllowList
from shared.core.settings import Settings
from shared.core.transport import TokenCredential
from shared.storage.clients import Storage
from shared.storage.store import RequestStore


@dataclass
class Runtime:
    settings: Settings
    credential: TokenCredential
    storage: Storage
    store: RequestStore
    aml: AzureMLClient
    # Microsoft Graph with its own token audience; None when DSR_GRAPH_BASE_URL is empty (shared/aml/identity.py).
    graph: AzureMLClient | None = None

    @classmethod
    def create(cls, settings: Settings, credential: TokenCredential | None = None) -> Runtime:
        if credential is None:
            from azure.identity import ManagedIdentityCredential

            credential = ManagedIdentityCredential(client_id=settings.identity_client_id)
        storage = Storage(settings, credential)
        aml = AzureMLClient(
            credential,
            settings.arm_audience,
            AllowList(settings.allowed_hosts),
            timeout=(5.0, settings.http_timeout_seconds),
            max_inprocess_wait=settings.max_inprocess_retry_after_seconds,
            limiter=RateLimiter(
                settings.rate_reads_per_second,
                settings.rate_read_burst,
                settings.rate_deletes_per_second,
                settings.rate_delete_burst,
                shared=SharedBudget.connect(
                    settings.table_service_uri,
                    credential,
                    principal=settings.identity_client_id or "system-assigned",
                    max_wait=settings.max_inprocess_retry_after_seconds,
                )
                if settings.rate_shared
                else None,
                fallback_instances=settings.rate_fallback_instances,
            ),
        )

        graph = graph_client(settings, credential)
        return cls(settings, credential, storage, RequestStore(storage), aml, graph)

    def pseudonym(self, value: str) -> str:
        """A keyed pseudonym that stands in for a subject identifier in logs and indexes."""
        digest = hmac.new(self.settings.pseudonym_key, value.strip().lower().encode(), hashlib.sha256)
        return "p-" + digest.hexdigest()[:16]

    def now(self) -> float:
        return time.time()


_runtime: Runtime | None = None
_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    with _lock:
        if _runtime is None:
            telemetry.configure()  # once per process, whichever trigger runs first
            _runtime = Runtime.create(Settings.from_env())
            _runtime.storage.ensure()
        return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """For tests and tools that build their own Runtime."""
    global _runtime
    with _lock:
        _runtime = runtime


def describe(runtime: Runtime) -> dict[str, Any]:
    return {"allowed_hosts": list(runtime.settings.allowed_hosts)}
