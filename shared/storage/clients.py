"""The storage account's clients, created once per process: Blob, Queue and Table services on one pooled
transport each, the product's queues, tables and export container, queue sends, and the blob path segment
of an Azure resource name.

Every client authenticates with the managed identity (identity-based connection settings); nothing here
knows an account key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import RequestsTransport
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import QueueServiceClient, TextBase64EncodePolicy

from shared.core import settings as names
from shared.core.transport import TokenCredential, fixed_tls_verify

MAX_QUEUE_DELAY_SECONDS = 7 * 24 * 3600 - 60


_UNSAFE = re.compile(r"[^A-Za-z0-9._()-]")


def safe_segment(name: str) -> str:
    """A blob path segment for an Azure resource name (names are kept readable; odd characters escaped)."""
    cleaned = _UNSAFE.sub("_", name)[:80] or "_"
    if cleaned != name:
        cleaned += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return cleaned


def compact_json(value: Any) -> str:
    """JSON as stored in a Table property or a queue message: compact, keys sorted."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


POOL_CONNECTIONS = 64  # connections kept per storage endpoint: more than the worker's threads (32 in infra)


class PooledTransport(RequestsTransport):
    """The storage SDKs' requests transport with a connection pool as large as the worker's thread pool. The
    default (requests keeps 10 per host) makes every call beyond the tenth at once open a connection, with its
    TLS handshake, and throw it away afterwards."""

    def __init__(self, pool_size: int = POOL_CONNECTIONS, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = pool_size

    def _init_session(self, session: Any) -> None:  # the SDK's hook that mounts its adapters on a new session
        super()._init_session(session)
        for prefix in self._protocols:
            session.adapters[prefix].init_poolmanager(self.pool_size, self.pool_size)


class Storage:
    """Clients for the product's storage account, created once per process."""

    def __init__(self, settings: names.Settings, credential: TokenCredential) -> None:
        self.settings = settings
        verify = fixed_tls_verify()  # no proxy: the SDK's requests session stops re-reading the environment
        fixed: dict[str, Any] = (
            {} if verify is None else {"use_env_settings": False, "connection_verify": verify}
        )
        # A transport given to a client no longer gets the Blob and Queue SDKs' default timeouts: these are them.
        timeouts = {"connection_timeout": 20, "read_timeout": 60}
        self.blob_service = BlobServiceClient(
            settings.blob_service_uri, credential=credential, transport=PooledTransport(**fixed, **timeouts)
        )
        self.queue_service = QueueServiceClient(
            settings.queue_service_uri, credential=credential, transport=PooledTransport(**fixed, **timeouts)
        )
        self.table_service = TableServiceClient(
            settings.table_service_uri, credential=credential, transport=PooledTransport(**fixed)
        )
        self._ready = False
        self._lock = threading.Lock()

    def ensure(self) -> None:
        """Create the tables, queues and container if missing (idempotent; once per process)."""
        with self._lock:
            if self._ready:
                return
            for table in (
                names.REQUESTS_TABLE,
                names.IDEMPOTENCY_TABLE,
                names.EVENTS_TABLE,
                names.SUBJECTS_TABLE,
                names.CALLBACKS_TABLE,
            ):
                with contextlib.suppress(ResourceExistsError):
                    self.table_service.create_table(table)
            for queue in (names.PLAN_QUEUE, names.WORK_QUEUE, names.FINALIZE_QUEUE, names.CALLBACK_QUEUE):
                with contextlib.suppress(ResourceExistsError):
                    self.queue_service.create_queue(queue)
            with contextlib.suppress(ResourceExistsError):
                self.blob_service.create_container(names.EXPORT_CONTAINER)
            self._ready = True

    @property
    def container(self) -> ContainerClient:
        return self.blob_service.get_container_client(names.EXPORT_CONTAINER)

    def table(self, name: str) -> TableClient:
        return self.table_service.get_table_client(name)

    def send(self, queue: str, message: dict[str, Any], delay_seconds: float = 0) -> None:
        """Put a message on a queue, base64-encoded as the Functions host expects, optionally delayed."""
        client = self.queue_service.get_queue_client(queue, message_encode_policy=TextBase64EncodePolicy())
        delay = int(min(max(delay_seconds, 0), MAX_QUEUE_DELAY_SECONDS))
        client.send_message(compact_json(message), visibility_timeout=delay or None)
