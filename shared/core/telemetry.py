"""Observability: the request id on every log line, OpenTelemetry to Application Insights, the product's metrics.

- `with correlation(request_id): ...` holds the data subject request's id in a context variable. Every log
  record created meanwhile, by any logger, carries it as the attribute `requestId`: the OpenTelemetry log
  handler turns it into the custom dimension `requestId` in Application Insights, and the host's text logs
  show it at the end of the line (` requestId=<id>`). Only a request id (a UUID) is ever attached; any other
  value is dropped, so nothing a caller typed (a name, an e-mail address) can reach a log this way. Code never
  passes `extra={"requestId": ...}` itself: the correlation is the one way in.
- `configure()` runs once per process, lazily, on the first correlation (every HTTP route and every queue
  trigger that knows a request enters one). With APPLICATIONINSIGHTS_CONNECTION_STRING set it calls
  azure-monitor-opentelemetry's `configure_azure_monitor`, authenticated with the managed identity when
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING says `Authorization=AAD` (Application Insights has local
  authentication off). Without the connection string nothing is configured, and the meters below are the
  OpenTelemetry API's no-ops.
- Metrics, through the OpenTelemetry API (the functions below are what the code calls):

  | instrument | kind | unit | attributes |
  | --- | --- | --- | --- |
  | `dsr.requests` | counter, +1 on every status a request is stored with | `{request}` | `type`, `status` |
  | `dsr.task.duration` | histogram, one invocation of a task | `s` | `family`, `outcome` (done, failed, yielded) |
  | `dsr.aml.calls` | counter, every Azure ML response (and call with no answer) | `{call}` | `host`, `status_class` |
  | `dsr.aml.throttled` | counter, every 429 | `{response}` | `host` |

  Attribute values are drawn from small fixed sets (request types and statuses, task kinds, service hosts),
  never from a subject or a record.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, Final

from opentelemetry import metrics

from shared.core import settings as names

log = logging.getLogger(__name__)

REQUEST_ID_ATTRIBUTE: Final = "requestId"
METER_NAME: Final = "aml-dsr"
# The loggers whose records OpenTelemetry exports: the product's own (shared.*), which carry request ids and
# never a subject identifier. Library loggers (azure.core's HTTP policy, urllib3) stay in the host's logs only.
APP_LOGGER: Final = "shared"
# Outbound HTTP is not traced: a span records the full URL (workspace, experiment and model names, paging
# tokens). The Azure SDK's storage calls are (their URLs name only the product's own tables, queues, blobs).
UNTRACED_LIBRARIES: Final = ("requests", "urllib", "urllib3", "httpx")
# Seconds: a task invocation takes from a few milliseconds to its time budget (240 s by default).
DURATION_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 240.0, 600.0)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_request_id: ContextVar[str | None] = ContextVar("dsr_request_id", default=None)
_lock = threading.Lock()
_configured: bool | None = None  # None: not yet decided for this process
_factory_installed = False


# -- correlation ----------------------------------------------------------------------------------------------
def current_request_id() -> str | None:
    return _request_id.get()


@contextlib.contextmanager
def correlation(request_id: str | None) -> Iterator[str | None]:
    """Tag every log record written inside with `requestId` (None, or a value that is not a request id: no tag).
    Configures telemetry first when this process has not yet."""
    configure()
    value = request_id.lower() if isinstance(request_id, str) and _UUID.fullmatch(request_id) else None
    token = _request_id.set(value)
    try:
        yield value
    finally:
        _request_id.reset(token)


class RequestIdFormatter(logging.Formatter):
    """Wraps a handler's formatter: a record written inside a correlation ends its first line with
    ` requestId=<id>` (before a traceback, if one follows)."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        request_id = getattr(record, REQUEST_ID_ATTRIBUTE, None)
        if not request_id:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first} {REQUEST_ID_ATTRIBUTE}={request_id}{newline}{rest}"


def _tagging_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        request_id = _request_id.get()
        if request_id is not None:
            setattr(record, REQUEST_ID_ATTRIBUTE, request_id)
        return record

    return factory


def install_logging(root: logging.Logger | None = None) -> None:
    """Tag log records with the request id (a LogRecord factory: every logger, every handler, also those added
    later), and show it in the text of the handlers `root` has now (the host's console or log stream)."""
    global _factory_installed
    root = root or logging.getLogger()
    with _lock:
        if not _factory_installed:
            logging.setLogRecordFactory(_tagging_factory(logging.getLogRecordFactory()))
            _factory_installed = True
        for handler in root.handlers:
            exported = type(handler).__module__.startswith("opentelemetry")  # has the attribute already
            if not exported and not isinstance(handler.formatter, RequestIdFormatter):
                handler.setFormatter(RequestIdFormatter(handler.formatter))


# -- Application Insights -------------------------------------------------------------------------------------
def configure(env: Mapping[str, str] | None = None) -> bool:
    """Once per process: correlated logging, and OpenTelemetry to Application Insights when
    APPLICATIONINSIGHTS_CONNECTION_STRING is set. Answers whether telemetry goes to Application Insights."""
    global _configured
    if _configured is not None:
        return _configured
    install_logging()
    with _lock:
        if _configured is None:
            _configured = _configure_azure_monitor(os.environ if env is None else env)
        return _configured


def _configure_azure_monitor(env: Mapping[str, str]) -> bool:
    connection_string = env.get(names.APPLICATIONINSIGHTS_CONNECTION_STRING, "").strip()
    if not connection_string:
        return False
    options: dict[str, Any] = {
        "connection_string": connection_string,
        "logger_name": APP_LOGGER,
        "instrumentation_options": {name: {"enabled": False} for name in UNTRACED_LIBRARIES},
    }
    credential = exporter_credential(env.get(names.APPLICATIONINSIGHTS_AUTHENTICATION_STRING, ""))
    if credential is not None:
        options["credential"] = credential
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor

        configure_azure_monitor(**options)
    except Exception:  # telemetry must never stop the product: it runs on without it, and says so
        log.exception("telemetry to Application Insights is off: configuring OpenTelemetry failed")
        return False
    log.info(
        "telemetry to Application Insights on, authenticated with %s",
        "the managed identity" if credential is not None else "the connection string's key",
    )
    return True


def exporter_credential(authentication_string: str) -> Any | None:
    """The credential APPLICATIONINSIGHTS_AUTHENTICATION_STRING asks for: `Authorization=AAD`, with an optional
    `ClientId=<user-assigned identity's client id>` (infra sets `ClientId=<id>;Authorization=AAD`), gives a
    ManagedIdentityCredential (system-assigned without a ClientId); anything else, None."""
    fields: dict[str, str] = {}
    for part in authentication_string.split(";"):
        key, equals, value = part.partition("=")
        if equals:
            fields[key.strip().lower()] = value.strip()
    if fields.get("authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=fields.get("clientid") or None)


def reset_for_tests() -> None:
    """Forget the once-per-process decision (tests only; the LogRecord factory stays installed)."""
    global _configured
    with _lock:
        _configured = None


# -- metrics --------------------------------------------------------------------------------------------------
class _Instruments:
    def __init__(self, meter: metrics.Meter) -> None:
        self.requests = meter.create_counter(
            "dsr.requests", unit="{request}", description="Requests stored with a new status"
        )
        self.task_duration = meter.create_histogram(
            "dsr.task.duration",
            unit="s",
            description="Duration of one task invocation",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.aml_calls = meter.create_counter(
            "dsr.aml.calls", unit="{call}", description="Azure ML REST calls by host and status class"
        )
        self.aml_throttled = meter.create_counter(
            "dsr.aml.throttled", unit="{response}", description="Azure ML 429 responses by host"
        )


# Created from the global provider: until configure() sets one these are the API's no-op proxies, and they
# record into the real provider as soon as it is set.
_instruments = _Instruments(metrics.get_meter(METER_NAME))


def bind_meter_provider(provider: metrics.MeterProvider | None) -> None:
    """Record into `provider` from now on (tests use an in-memory reader); None: the global provider again."""
    global _instruments
    _instruments = _Instruments((provider or metrics.get_meter_provider()).get_meter(METER_NAME))


def request_status(request_type: str, status: str) -> None:
    """A request was stored with `status` (call it once per stored change)."""
    _instruments.requests.add(1, {"type": request_type, "status": status})


def task_finished(family: str, outcome: str, seconds: float) -> None:
    """One invocation of a task of kind `family` ended: `done`, `failed` or `yielded` (re-enqueued)."""
    _instruments.task_duration.record(max(0.0, seconds), {"family": family, "outcome": outcome})


def aml_call(host: str, status: int) -> None:
    """One Azure ML response with `status` from `host` (0: no answer: a connection error or timeout)."""
    host = host.lower()
    _instruments.aml_calls.add(1, {"host": host, "status_class": status_class(status)})
    if status == 429:
        _instruments.aml_throttled.add(1, {"host": host})


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "no-answer"
