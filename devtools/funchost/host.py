"""FunctionHost: loads a Python v2 Functions app and runs its HTTP, queue and timer triggers locally."""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from azure.storage.queue import QueueServiceClient

from devtools.funchost.config import (
    HostConfig,
    apply_settings,
    load_host_config,
    load_settings,
)
from devtools.funchost.functions import (
    HTTP_TRIGGER,
    QUEUE_TRIGGER,
    TIMER_TRIGGER,
    FunctionSpec,
    Invoker,
    index_functions,
    load_app,
)
from devtools.funchost.http_server import Dispatcher, HttpServer
from devtools.funchost.queues import (
    DEFAULT_LEASE_SECONDS,
    QueueListener,
    create_service_client,
    manual_queue_message,
)
from devtools.funchost.timers import TimerListener, schedule_timezone, timer_request

log = logging.getLogger("funchost")


class FunctionTimeoutError(TimeoutError):
    """The invocation ran longer than host.json functionTimeout."""


def _format_timespan(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class FunctionHost:
    """A local stand-in for the Azure Functions host (see the package docstring for what it honours).

    The app is imported and indexed at construction (so a bad app fails early); `start()` opens the HTTP port
    and starts the queue and timer listeners; `stop()` is graceful: no new work, in-flight invocations finish
    (up to `stop_timeout` seconds).
    """

    def __init__(
        self,
        app_ref: str = "function_app:app",
        root: Path | str | None = None,
        host_json: Path | str | None = None,
        settings_file: Path | str | None = None,
        http_port: int = 0,
        *,
        timers: bool = True,
        queues: bool = True,
        queue_lease_seconds: int = DEFAULT_LEASE_SECONDS,
        stop_timeout: float = 30.0,
    ) -> None:
        self.root = Path(root).resolve() if root is not None else Path.cwd().resolve()
        self.app_ref = app_ref
        self.http_port = http_port
        self.timers_enabled = timers
        self.queues_enabled = queues
        self.queue_lease_seconds = queue_lease_seconds
        self.stop_timeout = stop_timeout
        self.applied_settings: list[str] = []
        if settings_file is not None:
            self.applied_settings = apply_settings(load_settings(Path(settings_file)))
        _app, functions = load_app(app_ref, self.root)
        if host_json is None:
            module = sys.modules[app_ref.partition(":")[0]]
            module_file = getattr(module, "__file__", None)
            host_json = Path(module_file).parent / "host.json" if module_file else self.root / "host.json"
        self.host_json = Path(host_json)
        self.config: HostConfig = load_host_config(self.host_json)
        self.functions: list[FunctionSpec] = index_functions(functions, self.config.route_prefix)
        if any(s.trigger_type == TIMER_TRIGGER for s in self.functions):
            schedule_timezone()  # fails now on a bad WEBSITE_TIME_ZONE
        self._by_name = {s.name.lower(): s for s in self.functions}
        self._lock = threading.Condition()
        self._in_flight = 0
        self._invoker: Invoker | None = None
        self._server: HttpServer | None = None
        self._queue_listeners: list[QueueListener] = []
        self._timer_listeners: list[TimerListener] = []
        self._services: dict[str, QueueServiceClient] = {}
        self._started = False
        self.invocations: dict[str, dict[str, int]] = {
            s.name: {"succeeded": 0, "failed": 0} for s in self.functions
        }

    # lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> FunctionHost:
        if self._started:
            return self
        self._invoker = Invoker(function_directory=str(self.root))
        try:
            dispatcher = Dispatcher(self.functions, self.invoke, self._run_admin)
            self._server = HttpServer(("127.0.0.1", self.http_port), dispatcher)
            self._server.start()
            if self.queues_enabled:
                for spec in self.functions:
                    if spec.trigger_type == QUEUE_TRIGGER:
                        service = self._services.get(spec.connection)
                        if service is None:
                            service = self._services[spec.connection] = create_service_client(spec.connection)
                        listener = QueueListener(
                            spec,
                            self.config.queues,
                            service,
                            self.invoke,
                            lease_seconds=self.queue_lease_seconds,
                        )
                        listener.start()
                        self._queue_listeners.append(listener)
            if self.timers_enabled:
                for spec in self.functions:
                    if spec.trigger_type == TIMER_TRIGGER:
                        timer = TimerListener(spec, self.invoke)
                        timer.start()
                        self._timer_listeners.append(timer)
        except BaseException:
            self._started = True
            self.stop(timeout=5)
            raise
        self._started = True
        log.info(
            "Host started: %d function(s) from %s, HTTP on %s, host.json %s",
            len(self.functions),
            self.app_ref,
            self.http_url,
            self.config.source,
        )
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Stop gracefully; True when every in-flight invocation finished within the timeout."""
        if not self._started:
            return True
        self._started = False
        timeout = self.stop_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        for listener in self._queue_listeners:
            listener.stop_polling()
        for timer in self._timer_listeners:
            timer.stop()
        if self._server is not None:
            self._server.shutdown()  # no new HTTP requests
        with self._lock:
            while self._in_flight and time.monotonic() < deadline:
                self._lock.wait(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
            drained = self._in_flight == 0
        for listener in self._queue_listeners:
            drained = listener.join(max(0.0, deadline - time.monotonic())) and drained
        for timer in self._timer_listeners:
            timer.join(max(0.0, deadline - time.monotonic()))
        if self._server is not None:
            self._server.server_close()
        if self._invoker is not None:
            self._invoker.close()
        for service in self._services.values():
            with contextlib.suppress(Exception):
                service.close()
        self._queue_listeners, self._timer_listeners, self._services = [], [], {}
        if not drained:
            log.warning("Host stopped with invocations still running after %.0f s", timeout)
        else:
            log.info("Host stopped")
        return drained

    def __enter__(self) -> FunctionHost:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    @property
    def http_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the host is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def describe(self) -> dict[str, Any]:
        return {"http_url": self.http_url, "functions": [s.describe() for s in self.functions]}

    def function(self, name: str) -> FunctionSpec:
        spec = self._by_name.get(name.lower())
        if spec is None:
            raise KeyError(f"no function named {name!r} (have: {', '.join(s.name for s in self.functions)})")
        return spec

    # invocations ------------------------------------------------------------------------------------------
    def invoke(
        self, spec: FunctionSpec, value: Any, reason: str, convert: Callable[[Any], Any] | None = None
    ) -> Any:
        """Run one invocation and wait for it (up to functionTimeout); log it; re-raise what it raised."""
        if self._invoker is None:
            raise RuntimeError("the host is not started")
        invocation_id = str(uuid.uuid4())
        tag = {"invocation": f"[{spec.name} {invocation_id}] "}
        with self._lock:
            self._in_flight += 1
        started = time.monotonic()
        try:
            log.info(
                "Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id, extra=tag
            )
            future = self._invoker.submit(spec, value, invocation_id)
            try:
                result = future.result(timeout=self.config.function_timeout)
                if convert is not None:  # the output binding: a value it cannot take fails the invocation
                    result = convert(result)
            except concurrent.futures.TimeoutError:
                future.cancel()
                assert self.config.function_timeout is not None
                raise FunctionTimeoutError(
                    f"Timeout value of {_format_timespan(self.config.function_timeout)} was exceeded by "
                    f"function: Functions.{spec.name}"
                ) from None
        except BaseException as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            with self._lock:
                self.invocations[spec.name]["failed"] += 1
            log.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)",
                spec.name,
                invocation_id,
                elapsed,
                exc_info=exc,
                extra=tag,
            )
            raise
        else:
            elapsed = int((time.monotonic() - started) * 1000)
            with self._lock:
                self.invocations[spec.name]["succeeded"] += 1
            log.info(
                "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)",
                spec.name,
                invocation_id,
                elapsed,
                extra=tag,
            )
            return result
        finally:
            with self._lock:
                self._in_flight -= 1
                self._lock.notify_all()

    def _trigger_value(self, spec: FunctionSpec, input: str | bytes | None) -> Any:
        if spec.trigger_type == QUEUE_TRIGGER:
            message = manual_queue_message(input)
            if spec.trigger_annotation in (str, "str"):
                return message.get_body().decode("utf-8", errors="replace")
            if spec.trigger_annotation in (bytes, "bytes"):
                return message.get_body()
            return message
        if spec.trigger_type == TIMER_TRIGGER:
            return timer_request(past_due=False)
        raise ValueError(f"{spec.name} is an HTTP function: call its route ({spec.route_text}) instead")

    def run_function(self, name: str, input: str | bytes | None = None) -> Any:
        """Run a non-HTTP function now and wait for it (as `POST /admin/functions/{name}` does, but blocking).

        A queue function gets a message with `input` as its body (never put in the queue: no retries, no
        poison); a timer function gets a TimerRequest. Returns the function's result; re-raises its exception.
        """
        spec = self.function(name)
        if spec.trigger_type == HTTP_TRIGGER:
            raise ValueError(f"{spec.name} is an HTTP function: call its route ({spec.route_text}) instead")
        return self.invoke(
            spec, self._trigger_value(spec, input), "This function was programmatically called."
        )

    def _run_admin(self, spec: FunctionSpec, input: str | None) -> None:
        value = self._trigger_value(spec, input)

        def run() -> None:
            with contextlib.suppress(Exception):  # invoke logs failures
                self.invoke(spec, value, "This function was programmatically called via the host APIs.")

        threading.Thread(target=run, name=f"funchost-admin-{spec.name}", daemon=True).start()
