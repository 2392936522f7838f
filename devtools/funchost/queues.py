"""Queue triggers with the Azure Storage Queues extension's semantics (QueueListener / QueueProcessor).

- Connection: the binding's `connection` (default AzureWebJobsStorage) names either a connection string
  (`<conn>`, or `AzureWebJobs<conn>`) or an identity-based section: `<conn>__queueServiceUri` (or
  `__serviceUri`, or `__accountName`), `<conn>__credential=managedidentity` and optional `<conn>__clientId`.
- Receive up to batchSize messages with a 10-minute visibility lease, renewed at half-time while the function
  runs; fetch the next batch as soon as in-flight messages drop to newBatchThreshold.
- messageEncoding base64: a body that is not valid base64 is moved to `<queue>-poison` as is.
- dequeueCount > maxDequeueCount before running: poison. Success: delete. Failure: at dequeueCount >=
  maxDequeueCount move the original text to `<queue>-poison` (created when missing) and delete; otherwise make
  the message visible again after visibilityTimeout. A queue whose name ends in `-poison` (or is too long for
  the suffix) has no poison queue: a failed message then stays invisible until its lease runs out.
- Empty polls back off (randomized exponential) from 100 ms to maxPollingInterval; a message resets it.
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage as FuncQueueMessage
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from devtools.funchost.config import MIN_POLLING_INTERVAL, ConfigError, QueueOptions
from devtools.funchost.functions import FunctionSpec

log = logging.getLogger("funchost.queues")

DEFAULT_LEASE_SECONDS = 600  # QueueListener's visibility timeout while a message is processed
POISON_SUFFIX = "-poison"
_DUPLICATED: set[str] = set()
_DUPLICATED_LOCK = threading.Lock()


def _lookup(environ: Mapping[str, str]) -> dict[str, str]:
    """App settings with case-insensitive names, `:` and `__` both read as the section separator."""
    return {k.replace(":", "__").lower(): v for k, v in environ.items()}


def create_service_client(connection: str, environ: Mapping[str, str] | None = None) -> QueueServiceClient:
    """A QueueServiceClient for a binding's `connection`, resolved as the Functions host resolves it."""
    settings = _lookup(os.environ if environ is None else environ)
    for name in (connection, f"AzureWebJobs{connection}"):
        key = name.lower()
        if settings.get(key):
            return QueueServiceClient.from_connection_string(settings[key])
        section = {k[len(key) + 2 :]: v for k, v in settings.items() if k.startswith(key + "__")}
        if not section:
            continue
        url = section.get("queueserviceuri") or section.get("serviceuri")
        if not url and section.get("accountname"):
            url = f"https://{section['accountname']}.queue.core.windows.net"
        if not url:
            raise ConfigError(
                f"connection {connection!r}: identity-based settings need {name}__queueServiceUri "
                f"(or __serviceUri / __accountName)"
            )
        return QueueServiceClient(url, credential=_credential(section, name))
    raise ConfigError(
        f"connection {connection!r}: set {connection} (a connection string) or {connection}__queueServiceUri "
        f"with {connection}__credential=managedidentity"
    )


def _credential(section: dict[str, str], name: str) -> TokenCredential:
    from azure.identity import ClientSecretCredential, DefaultAzureCredential, ManagedIdentityCredential

    kind = section.get("credential", "").lower()
    client_id = section.get("clientid") or None
    if kind == "managedidentity":
        return ManagedIdentityCredential(client_id=client_id)
    if kind:
        raise ConfigError(f"{name}__credential={kind!r} is not supported (use managedidentity)")
    if client_id and section.get("clientsecret") and section.get("tenantid"):
        return ClientSecretCredential(section["tenantid"], client_id, section["clientsecret"])
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def poison_queue_name(queue_name: str) -> str | None:
    if queue_name.endswith(POISON_SUFFIX) or len(queue_name) + len(POISON_SUFFIX) > 63:
        return None
    return queue_name + POISON_SUFFIX


class Backoff:
    """RandomizedExponentialBackoffStrategy: minimum after a hit, doubling (+-20%) up to the maximum."""

    def __init__(self, minimum: float, maximum: float) -> None:
        self.minimum, self.maximum = minimum, max(minimum, maximum)
        self.current = 0.0

    def next_delay(self, found: bool) -> float:
        if found or self.current == 0.0:
            self.current = self.minimum
        else:
            self.current = min(self.maximum, self.current * 2 * random.uniform(0.8, 1.2))
        return self.current


@dataclass
class _Lease:
    message: QueueMessage
    renew_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: bool = False


def decode_body(raw: str, encoding: str) -> bytes:
    """The message body as the function sees it; ValueError when base64 is expected and the text is not."""
    if encoding == "none":
        return raw.encode("utf-8")
    text = "".join(raw.split())  # .NET Convert.FromBase64String ignores white space
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"message is not valid base64: {exc}") from None


class QueueListener:
    """Polls one queue for one function; processes messages concurrently; poison handling as the host."""

    def __init__(
        self,
        spec: FunctionSpec,
        options: QueueOptions,
        service: QueueServiceClient,
        invoke: Callable[[FunctionSpec, Any, str], Any],
        *,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
    ) -> None:
        self.spec = spec
        self.options = options
        self.invoke = invoke
        self.lease_seconds = max(1, int(lease_seconds))
        self.queue: QueueClient = service.get_queue_client(spec.queue_name)
        poison = poison_queue_name(spec.queue_name)
        self.poison: QueueClient | None = service.get_queue_client(poison) if poison else None
        self._stop = threading.Event()  # no more receives
        self._closed = threading.Event()  # no more lease renewals
        self._cond = threading.Condition()
        self._leases: dict[int, _Lease] = {}  # by a receive sequence number: a message id can come back
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=options.batch_size + options.new_batch_threshold,
            thread_name_prefix=f"funchost-q-{spec.name}",
        )
        self._sequence = 0
        self._threads: list[threading.Thread] = []
        self.backoff = Backoff(MIN_POLLING_INTERVAL, options.max_polling_interval)

    # lifecycle ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._ensure_queue(self.queue)
        for target, name in ((self._poll_loop, "poll"), (self._renew_loop, "lease")):
            thread = threading.Thread(target=target, name=f"funchost-{name}-{self.spec.name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop_polling(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        """Wait for in-flight messages; True when none is left."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._leases and time.monotonic() < deadline:
                self._cond.wait(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
            idle = not self._leases
        self._closed.set()
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=idle, cancel_futures=True)
        return idle

    @property
    def in_flight(self) -> int:
        with self._cond:
            return len(self._leases)

    # polling ----------------------------------------------------------------------------------------------
    @staticmethod
    def _ensure_queue(client: QueueClient) -> None:
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()

    def _poll_loop(self) -> None:
        threshold = self.options.new_batch_threshold
        found = False
        while not self._stop.is_set():
            with self._cond:
                while len(self._leases) > threshold and not self._stop.is_set():
                    self._cond.wait(timeout=1.0)
            if self._stop.is_set():
                break
            try:
                messages = list(
                    self.queue.receive_messages(
                        messages_per_page=self.options.batch_size,
                        max_messages=self.options.batch_size,
                        visibility_timeout=self.lease_seconds,
                    )
                )
            except ResourceNotFoundError:
                log.warning("queue %r is missing; creating it", self.spec.queue_name)
                try:
                    self._ensure_queue(self.queue)
                except HttpResponseError as exc:
                    log.warning("cannot create queue %r: %s", self.spec.queue_name, exc)
                messages = []
            except Exception as exc:  # transient storage / network trouble: back off as the host does
                log.warning("polling queue %r for %s failed: %s", self.spec.queue_name, self.spec.name, exc)
                messages = []
            if messages:
                found = True
                now = time.monotonic()
                keys = []
                with self._cond:
                    for message in messages:
                        self._sequence += 1
                        keys.append(self._sequence)
                        self._leases[self._sequence] = _Lease(message, renew_at=now + self.lease_seconds / 2)
                for key in keys:
                    self._pool.submit(self._process, key)
                continue
            delay = self.backoff.next_delay(found)
            found = False
            self._stop.wait(delay)

    def _renew_loop(self) -> None:
        interval = min(1.0, self.lease_seconds / 4)
        while not self._closed.wait(interval):
            now = time.monotonic()
            with self._cond:
                due = [lease for lease in self._leases.values() if lease.renew_at <= now]
            for lease in due:
                with lease.lock:
                    if lease.done:
                        continue
                    try:
                        updated = self.queue.update_message(
                            lease.message.id,
                            lease.message.pop_receipt,
                            visibility_timeout=self.lease_seconds,
                        )
                    except HttpResponseError as exc:
                        log.warning("renewing the lease of message %s failed: %s", lease.message.id, exc)
                        lease.renew_at = now + min(5.0, self.lease_seconds / 4)
                        continue
                    lease.message.pop_receipt = updated.pop_receipt
                    lease.message.next_visible_on = updated.next_visible_on
                    lease.renew_at = time.monotonic() + self.lease_seconds / 2

    # one message ----------------------------------------------------------------------------------------
    def _process(self, key: int) -> None:
        with self._cond:
            lease = self._leases[key]
        message = lease.message
        try:
            self._handle(message, lease)
        except Exception:
            log.exception("handling message %s of queue %r failed", message.id, self.spec.queue_name)
        finally:
            with self._cond:
                self._leases.pop(key, None)
                self._cond.notify_all()

    def _handle(self, message: QueueMessage, lease: _Lease) -> None:
        raw = message.content if isinstance(message.content, str) else str(message.content or "")
        count = int(message.dequeue_count or 1)
        if self.poison is not None and count > self.options.max_dequeue_count:
            self._to_poison(message, lease, raw, reason=f"dequeue count {count} is over maxDequeueCount")
            return
        try:
            body = decode_body(raw, self.options.message_encoding)
        except ValueError as exc:
            if self.poison is not None:
                self._to_poison(message, lease, raw, reason=str(exc))
            else:
                log.warning("message %s of %r: %s (no poison queue)", message.id, self.spec.queue_name, exc)
                self._finish(lease)
            return
        value = self._trigger_value(message, body)
        try:
            self.invoke(self.spec, value, f"New queue message detected on '{self.spec.queue_name}'.")
        except Exception:
            succeeded = False
        else:
            succeeded = True
        if succeeded:
            self._duplicate_once(raw)
            self._delete(message, lease)
        elif self.poison is None:
            self._finish(lease)  # leave it invisible: no poison queue to stop a hot loop
        elif count >= self.options.max_dequeue_count:
            self._to_poison(
                message,
                lease,
                raw,
                reason=f"message has reached maxDequeueCount of {self.options.max_dequeue_count}",
            )
        else:
            self._release(message, lease)

    def _duplicate_once(self, raw: str) -> None:
        """Fault injection for at-least-once tests (FUNCHOST_DUPLICATE_DELIVERY=1): after a message succeeds,
        put an exact copy of it back on its queue, once per distinct message text, as a storage queue may
        deliver a message twice. Never on in Azure: this is the local host only."""
        if os.environ.get("FUNCHOST_DUPLICATE_DELIVERY", "").lower() not in ("1", "true", "yes"):
            return
        digest = hashlib.sha256(f"{self.spec.queue_name}\n{raw}".encode()).hexdigest()
        with _DUPLICATED_LOCK:
            if digest in _DUPLICATED:
                return
            _DUPLICATED.add(digest)
        self.queue.send_message(raw)
        log.info("duplicate delivery: a copy of a %r message was put back on the queue", self.spec.queue_name)

    def _trigger_value(self, message: QueueMessage, body: bytes) -> Any:
        annotation = self.spec.trigger_annotation
        if annotation in (str, "str"):
            return body.decode("utf-8", errors="replace")
        if annotation in (bytes, "bytes"):
            return body
        return FuncQueueMessage(
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            expiration_time=message.expires_on,
            insertion_time=message.inserted_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )

    @staticmethod
    def _finish(lease: _Lease) -> None:
        with lease.lock:
            lease.done = True

    def _delete(self, message: QueueMessage, lease: _Lease) -> None:
        with lease.lock:
            lease.done = True
            try:
                self.queue.delete_message(message.id, message.pop_receipt)
            except HttpResponseError as exc:
                if exc.status_code not in (400, 404):
                    raise
                log.debug("deleting message %s: %s (someone else owns it now)", message.id, exc.status_code)

    def _release(self, message: QueueMessage, lease: _Lease) -> None:
        with lease.lock:
            lease.done = True
            try:
                self.queue.update_message(
                    message.id, message.pop_receipt, visibility_timeout=int(self.options.visibility_timeout)
                )
            except HttpResponseError as exc:
                if exc.status_code not in (400, 404):
                    raise
                log.debug("releasing message %s: %s (someone else owns it now)", message.id, exc.status_code)

    def _to_poison(self, message: QueueMessage, lease: _Lease, raw: str, *, reason: str) -> None:
        assert self.poison is not None
        log.warning(
            "%s: moving message %s to queue '%s' (%s)",
            self.spec.name,
            message.id,
            self.poison.queue_name,
            reason,
        )
        try:
            self.poison.send_message(raw)
        except ResourceNotFoundError:
            self._ensure_queue(self.poison)
            self.poison.send_message(raw)
        self._delete(message, lease)


def manual_queue_message(body: str | bytes | None) -> FuncQueueMessage:
    """The trigger value for an on-demand run (admin API): a message that never was in the queue."""
    import uuid

    now = dt.datetime.now(dt.UTC)
    data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    return FuncQueueMessage(
        id=str(uuid.uuid4()),
        body=data,
        dequeue_count=1,
        insertion_time=now,
        expiration_time=now + dt.timedelta(days=7),
        time_next_visible=now,
        pop_receipt=None,
    )
