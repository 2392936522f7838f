"""host.json, app settings and binding expressions, read the way the Functions host reads them.

- `host.json` keys are case-insensitive (.NET configuration); app settings named
  `AzureFunctionsJobHost__<path>` override them (e.g. `AzureFunctionsJobHost__extensions__queues__batchSize`).
- `local.settings.json` `Values` go into the environment unless already set (app settings in Azure).
- `%NAME%` in a queue name or a schedule is replaced by the app setting NAME; a missing one is an error.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_POLLING_CAP_ENV = "FUNCHOST_MAX_POLLING_INTERVAL_MS"
HOST_OVERRIDE_PREFIX = "azurefunctionsjobhost__"
MIN_POLLING_INTERVAL = 0.1  # seconds, QueuePollingIntervals.Minimum
MAX_BATCH_SIZE = 32  # Azure Queues returns at most 32 messages per request
DEFAULT_FUNCTION_TIMEOUT = 30 * 60.0  # Flex Consumption default

_TIMESPAN = re.compile(
    r"^(?P<sign>-)?(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{1,2})(?::(?P<s>\d{1,2})(?:\.(?P<frac>\d{1,7}))?)?$"
)
_EXPRESSION = re.compile(r"%([^%]+)%")


class ConfigError(ValueError):
    """A host.json value, app setting or binding expression the host cannot use."""


def parse_timespan(value: str) -> float:
    """A .NET TimeSpan string (`[d.]hh:mm[:ss[.fffffff]]`) in seconds."""
    match = _TIMESPAN.match(value.strip())
    if not match:
        raise ConfigError(f"{value!r} is not a TimeSpan ([d.]hh:mm:ss)")
    hours, minutes = int(match["h"]), int(match["m"])
    seconds = int(match["s"] or 0)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ConfigError(f"{value!r} is not a TimeSpan: a field is out of range")
    total: float = int(match["days"] or 0) * 86400 + hours * 3600 + minutes * 60 + seconds
    total += float("0." + match["frac"]) if match["frac"] else 0.0
    return -total if match["sign"] else total


def _lower_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k).lower(): _lower_keys(v) for k, v in value.items()}
    return value


def _apply_overrides(doc: dict[str, Any], environ: Mapping[str, str]) -> None:
    for name, value in environ.items():
        if not name.lower().startswith(HOST_OVERRIDE_PREFIX):
            continue
        path = [p for p in name[len(HOST_OVERRIDE_PREFIX) :].lower().split("__") if p]
        if not path:
            continue
        node = doc
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value


def _get(doc: dict[str, Any], *path: str) -> Any:
    node: Any = doc
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` of host.json, with the WebJobs QueuesOptions defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    max_polling_interval: float = 60.0
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostConfig:
    route_prefix: str = "api"
    queues: QueueOptions = QueueOptions()
    function_timeout: float | None = DEFAULT_FUNCTION_TIMEOUT  # None: unbounded ("-1")
    source: str = "(defaults)"


def _as_int(value: Any, key: str, source: str, low: int, high: int | None = None) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key} must be an integer, got {value!r}") from None
    if number < low or (high is not None and number > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{source}: {key} must be {bound}, got {number}")
    return number


def _as_seconds(value: Any, key: str, source: str, *, numbers_are_ms: bool) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{source}: {key} must be a TimeSpan, got {value!r}")
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\d+", value.strip())):
        if not numbers_are_ms:
            raise ConfigError(f"{source}: {key} must be a TimeSpan such as 00:00:10, got {value!r}")
        return float(value) / 1000.0
    try:
        return parse_timespan(str(value))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {key}: {exc}") from None


def load_host_config(path: Path | None, environ: Mapping[str, str] | None = None) -> HostConfig:
    """Read host.json (missing file: defaults) plus `AzureFunctionsJobHost__*` overrides."""
    environ = os.environ if environ is None else environ
    source = str(path) if path is not None else "host.json"
    doc: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source} is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source} must hold a JSON object")
        doc = _lower_keys(loaded)
    _apply_overrides(doc, environ)

    prefix = _get(doc, "extensions", "http", "routeprefix")
    route_prefix = "api" if prefix is None else str(prefix).strip("/")

    queues = _get(doc, "extensions", "queues") or {}
    if not isinstance(queues, dict):
        raise ConfigError(f"{source}: extensions.queues must be an object")
    batch = _as_int(queues.get("batchsize", 16), "extensions.queues.batchSize", source, 1, MAX_BATCH_SIZE)
    threshold_raw = queues.get("newbatchthreshold")
    if threshold_raw is None or str(threshold_raw).strip() == "-1":
        threshold = (batch // 2) * (os.cpu_count() or 1)
    else:
        threshold = _as_int(threshold_raw, "extensions.queues.newBatchThreshold", source, 0)
    max_dequeue = _as_int(queues.get("maxdequeuecount", 5), "extensions.queues.maxDequeueCount", source, 1)
    visibility = _as_seconds(
        queues.get("visibilitytimeout", "00:00:00"),
        "extensions.queues.visibilityTimeout",
        source,
        numbers_are_ms=False,
    )
    if visibility < 0:
        raise ConfigError(f"{source}: extensions.queues.visibilityTimeout must not be negative")
    polling = _as_seconds(
        queues.get("maxpollinginterval", "00:01:00"),
        "extensions.queues.maxPollingInterval",
        source,
        numbers_are_ms=True,
    )
    if polling < MIN_POLLING_INTERVAL:
        raise ConfigError(f"{source}: extensions.queues.maxPollingInterval must be at least 100 ms")
    cap = environ.get(MAX_POLLING_CAP_ENV)
    if cap:
        cap_seconds = _as_int(cap, MAX_POLLING_CAP_ENV, "environment", 100) / 1000.0
        polling = min(polling, cap_seconds)
    encoding = str(queues.get("messageencoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise ConfigError(
            f"{source}: extensions.queues.messageEncoding must be base64 or none, got {encoding!r}"
        )

    timeout_raw = doc.get("functiontimeout")
    timeout: float | None
    if timeout_raw is None:
        timeout = DEFAULT_FUNCTION_TIMEOUT
    elif str(timeout_raw).strip() == "-1":
        timeout = None
    else:
        timeout = _as_seconds(timeout_raw, "functionTimeout", source, numbers_are_ms=False)
        if timeout <= 0:
            raise ConfigError(f"{source}: functionTimeout must be positive (or -1 for unbounded)")

    return HostConfig(
        route_prefix=route_prefix,
        queues=QueueOptions(
            batch_size=batch,
            new_batch_threshold=threshold,
            max_dequeue_count=max_dequeue,
            visibility_timeout=visibility,
            max_polling_interval=polling,
            message_encoding=encoding,
        ),
        function_timeout=timeout,
        source=source,
    )


def load_settings(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json-style file, as strings."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"settings file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"settings file {path} is not valid JSON: {exc}") from None
    values = doc.get("Values", {}) if isinstance(doc, dict) else None
    if not isinstance(values, dict):
        raise ConfigError(f"settings file {path}: Values must be an object")
    result: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            result[key] = "true" if value else "false"
        elif value is None:
            continue
        elif isinstance(value, int | float | str):
            result[key] = str(value)
        else:
            raise ConfigError(f"settings file {path}: Values.{key} must be a string")
    return result


def apply_settings(values: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Put settings into the environment where not already set; return the names that were set."""
    environ = os.environ if environ is None else environ
    applied = []
    for key, value in values.items():
        if key not in environ:
            environ[key] = value
            applied.append(key)
    return applied


def resolve_expression(text: str, what: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace each `%NAME%` in `text` by the app setting NAME; fail naming the setting when it is missing."""
    environ = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = environ.get(name)
        if value is None:
            raise ConfigError(f"{what}: app setting {name!r} (from the expression %{name}%) is not set")
        return value

    return _EXPRESSION.sub(replace, text)
