"""Indexing a Python v2 Functions app and invoking its functions the way the Python worker does.

The app's functions are read once, through the `azure.functions` decorators' own metadata
(`app.get_functions()`: a second call on one app raises, so the result is cached per app object and several
hosts in one process share it). Sync functions run in a thread pool (`PYTHON_THREADPOOL_THREAD_COUNT`, default
as the worker's: Python's ThreadPoolExecutor default); `async def` functions run on one event loop thread. A
parameter named `context` receives an `azure.functions.Context`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import importlib
import inspect
import logging
import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import _abc as func_abc

from devtools.funchost.config import ConfigError, resolve_expression
from devtools.funchost.ncrontab import CronSchedule, ScheduleError
from devtools.funchost.routes import RouteError, RouteTemplate

HTTP_TRIGGER, QUEUE_TRIGGER, TIMER_TRIGGER = "httpTrigger", "queueTrigger", "timerTrigger"
SUPPORTED_TRIGGERS = (HTTP_TRIGGER, QUEUE_TRIGGER, TIMER_TRIGGER)
DEFAULT_CONNECTION = "AzureWebJobsStorage"
_QUEUE_NAME = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")

# (function name, invocation id) of the invocation running in this thread / task, for log records
current_invocation: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "funchost_invocation", default=None
)


class LoadError(ValueError):
    """The app, or one of its functions, cannot be loaded by the host."""


@dataclass
class FunctionSpec:
    """One function of the app, as the host runs it."""

    name: str
    trigger_type: str
    trigger_name: str  # the parameter that receives the trigger value
    user_function: Callable[..., Any]
    is_async: bool
    wants_context: bool
    trigger_annotation: Any = None
    # HTTP
    route: RouteTemplate | None = None
    route_text: str = ""
    methods: frozenset[str] | None = None  # None: any method
    auth_level: str = "function"
    # queue
    queue_name: str = ""
    connection: str = DEFAULT_CONNECTION
    # timer
    schedule: CronSchedule | None = None
    run_on_startup: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "trigger": self.trigger_type}
        if self.trigger_type == HTTP_TRIGGER:
            info.update(
                route=self.route_text,
                methods=sorted(self.methods) if self.methods is not None else None,
                auth_level=self.auth_level,
            )
        elif self.trigger_type == QUEUE_TRIGGER:
            info.update(queue=self.queue_name, connection=self.connection)
        elif self.trigger_type == TIMER_TRIGGER:
            assert self.schedule is not None
            info.update(schedule=self.schedule.expression, run_on_startup=self.run_on_startup)
        return info


_INDEXED: dict[int, tuple[object, list[Any]]] = {}
_INDEX_LOCK = threading.Lock()


def load_app(app_ref: str, root: Path) -> tuple[object, list[Any]]:
    """Import `module:attribute` with `root` on sys.path; return the app and its functions (cached)."""
    module_name, _, attribute = app_ref.partition(":")
    attribute = attribute or "app"
    if not module_name:
        raise LoadError(f"app reference {app_ref!r} must look like module:attribute")
    root_text = str(root.resolve())
    if root_text not in sys.path:
        sys.path.insert(0, root_text)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise LoadError(f"cannot import {module_name!r} from {root_text}: {exc!r}") from exc
    app: Any = module
    for part in attribute.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise LoadError(f"{module_name!r} has no attribute {attribute!r}") from None
    if not callable(getattr(app, "get_functions", None)):
        raise LoadError(f"{app_ref} is not a Functions app (it has no get_functions())")
    with _INDEX_LOCK:
        cached = _INDEXED.get(id(app))
        if cached is None or cached[0] is not app:
            try:
                functions = list(app.get_functions())
            except Exception as exc:
                raise LoadError(f"{app_ref}: indexing the functions failed: {exc}") from exc
            cached = _INDEXED[id(app)] = (app, functions)
    return cached


def _enum_text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _direction(binding: Any) -> str:
    return {0: "in", 1: "out", 2: "inout"}.get(getattr(binding, "direction", 0), "?")


def index_functions(functions: list[Any], route_prefix: str) -> list[FunctionSpec]:
    """Turn the decorator metadata into FunctionSpecs; fail on anything this host cannot run faithfully."""
    specs: list[FunctionSpec] = []
    for function in functions:
        name = function.get_function_name()
        trigger = function.get_trigger()
        if trigger is None:
            raise LoadError(f"function {name!r} has no trigger")
        trigger_type = str(trigger.type)
        if trigger_type not in SUPPORTED_TRIGGERS:
            raise LoadError(
                f"function {name!r}: trigger {trigger.name!r} of type {trigger_type!r} is not supported "
                f"by the local host (supported: {', '.join(SUPPORTED_TRIGGERS)})"
            )
        for binding in function.get_bindings():
            if binding is trigger:
                continue
            if trigger_type == HTTP_TRIGGER and binding.type == "http" and _direction(binding) == "out":
                if binding.name != "$return":
                    raise LoadError(
                        f"function {name!r}: HTTP output binding {binding.name!r} is not supported by the "
                        "local host; return the HttpResponse instead"
                    )
                continue
            raise LoadError(
                f"function {name!r}: binding {binding.name!r} of type {binding.type!r} (direction "
                f"{_direction(binding)}) is not supported by the local host; use the SDK clients instead of "
                "bindings"
            )
        user_function = function.get_user_function()
        spec = FunctionSpec(
            name=name,
            trigger_type=trigger_type,
            trigger_name=trigger.name,
            user_function=user_function,
            is_async=inspect.iscoroutinefunction(user_function),
            wants_context=False,
        )
        _check_parameters(spec)
        try:
            if trigger_type == HTTP_TRIGGER:
                _index_http(spec, trigger, route_prefix)
            elif trigger_type == QUEUE_TRIGGER:
                _index_queue(spec, trigger)
            else:
                _index_timer(spec, trigger)
        except (ConfigError, RouteError, ScheduleError) as exc:
            raise LoadError(f"function {name!r}: {exc}") from None
        specs.append(spec)
    return specs


def _check_parameters(spec: FunctionSpec) -> None:
    signature = inspect.signature(spec.user_function)
    params = signature.parameters
    if spec.trigger_name not in params:
        raise LoadError(
            f"function {spec.name!r}: the trigger binding {spec.trigger_name!r} is not a parameter of "
            f"{spec.user_function.__name__}()"
        )
    spec.trigger_annotation = params[spec.trigger_name].annotation
    unknown = []
    for pname, param in params.items():
        if pname == spec.trigger_name:
            continue
        if pname == "context":
            spec.wants_context = True
            continue
        if param.default is inspect.Parameter.empty and param.kind not in (
            inspect.Parameter.VAR_POSITIONAL,
            inspect.Parameter.VAR_KEYWORD,
        ):
            unknown.append(pname)
    if unknown:
        raise LoadError(
            f"function {spec.name!r}: parameters {unknown} are declared in Python but have no binding"
        )


def _index_http(spec: FunctionSpec, trigger: Any, route_prefix: str) -> None:
    route = getattr(trigger, "route", None) or spec.name
    spec.route_text = "/".join(p for p in (route_prefix.strip("/"), route.strip("/")) if p)
    spec.route = RouteTemplate(spec.route_text)
    methods = getattr(trigger, "methods", None)
    spec.methods = frozenset(_enum_text(m).upper() for m in methods) if methods else None
    level = getattr(trigger, "auth_level", None)
    spec.auth_level = _enum_text(level).lower() if level is not None else "function"
    if spec.auth_level not in ("anonymous", "function", "admin"):
        raise LoadError(f"function {spec.name!r}: unknown auth level {spec.auth_level!r}")


def validate_queue_name(name: str, what: str) -> None:
    if not _QUEUE_NAME.match(name):
        raise ConfigError(
            f"{what}: {name!r} is not a valid queue name (3-63 lowercase letters, digits and single hyphens, "
            "starting and ending with a letter or digit)"
        )


def _index_queue(spec: FunctionSpec, trigger: Any) -> None:
    raw = getattr(trigger, "queue_name", None)
    if not raw:
        raise LoadError(f"function {spec.name!r}: the queue trigger has no queue name")
    spec.queue_name = resolve_expression(raw, f"queue name of {spec.name!r}")
    validate_queue_name(spec.queue_name, f"queue trigger of {spec.name!r}")
    spec.connection = getattr(trigger, "connection", None) or DEFAULT_CONNECTION
    spec.extra["queue_expression"] = raw


def _index_timer(spec: FunctionSpec, trigger: Any) -> None:
    raw = getattr(trigger, "schedule", None)
    if not raw:
        raise LoadError(f"function {spec.name!r}: the timer trigger has no schedule")
    expression = resolve_expression(raw, f"schedule of {spec.name!r}")
    if re.fullmatch(r"\s*(\d+\.)?\d{1,2}:\d{1,2}(:\d{1,2})?\s*", expression):
        raise ScheduleError(
            f"TimeSpan schedules ({expression!r}) only run on App Service plans; use an NCRONTAB expression"
        )
    spec.schedule = CronSchedule.parse(expression)
    spec.run_on_startup = bool(getattr(trigger, "run_on_startup", False))


class _ThreadStorage(threading.local):
    invocation_id: str | None = None


class _TraceContext(func_abc.TraceContext):
    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(func_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """The `context` argument of a function."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._storage = _ThreadStorage()
        self._storage.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._storage

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> func_abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> func_abc.RetryContext:
        return _RetryContext()


class Invoker:
    """Runs user functions: sync ones in a thread pool, `async def` ones on one event loop."""

    def __init__(self, function_directory: str, max_threads: int | None = None) -> None:
        if max_threads is None:
            setting = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
            if setting and setting.isdigit() and int(setting) >= 1:
                max_threads = int(setting)
        self.function_directory = function_directory
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max_threads, thread_name_prefix="funchost-fn"
        )
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._run_loop, name="funchost-loop", daemon=True)
        self._loop_thread.start()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def submit(self, spec: FunctionSpec, value: Any, invocation_id: str) -> concurrent.futures.Future[Any]:
        kwargs: dict[str, Any] = {spec.trigger_name: value}
        if spec.wants_context:
            kwargs["context"] = InvocationContext(invocation_id, spec.name, self.function_directory)
        if spec.is_async:
            return asyncio.run_coroutine_threadsafe(self._run_async(spec, kwargs, invocation_id), self._loop)
        return self._pool.submit(self._run_sync, spec, kwargs, invocation_id)

    @staticmethod
    def _run_sync(spec: FunctionSpec, kwargs: dict[str, Any], invocation_id: str) -> Any:
        token = current_invocation.set((spec.name, invocation_id))
        try:
            return spec.user_function(**kwargs)
        finally:
            current_invocation.reset(token)

    @staticmethod
    async def _run_async(spec: FunctionSpec, kwargs: dict[str, Any], invocation_id: str) -> Any:
        current_invocation.set((spec.name, invocation_id))  # task-local: each task runs in a copied context
        return await spec.user_function(**kwargs)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()


class InvocationFilter(logging.Filter):
    """Adds `%(invocation)s` (`[function invocation-id] ` or empty) to log records, for the log format."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = current_invocation.get()
        if not hasattr(record, "invocation"):
            record.invocation = f"[{current[0]} {current[1]}] " if current else ""
        return True


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(invocation)s%(message)s"


def configure_logging(level: str | int = "INFO") -> None:
    """Log to stderr, each line tagged with the function name and invocation id when inside one."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(InvocationFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for noisy in ("azure.core.pipeline.policies.http_logging_policy", "azure.identity", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
