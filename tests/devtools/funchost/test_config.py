"""host.json, settings, binding expressions, and what the host refuses to load (no storage needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from devtools.funchost import ConfigError, FunctionHost, LoadError
from devtools.funchost.config import (
    apply_settings,
    load_host_config,
    load_settings,
    parse_timespan,
    resolve_expression,
)
from devtools.funchost.queues import Backoff, create_service_client, decode_body, poison_queue_name
from tests.devtools.funchost.conftest import make_app


def write_json(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_timespans() -> None:
    assert parse_timespan("00:00:10") == 10
    assert parse_timespan("01:02:03.5") == 3723.5
    assert parse_timespan("1.00:00:00") == 86400
    assert parse_timespan("00:05") == 300
    with pytest.raises(ConfigError):
        parse_timespan("10s")
    with pytest.raises(ConfigError):
        parse_timespan("00:60:00")


def test_host_json_defaults_when_missing(tmp_path: Path) -> None:
    config = load_host_config(tmp_path / "host.json", environ={})
    assert config.route_prefix == "api"
    queues = config.queues
    assert (queues.batch_size, queues.max_dequeue_count, queues.visibility_timeout) == (16, 5, 0.0)
    assert queues.new_batch_threshold == 8 * (os.cpu_count() or 1)
    assert (queues.max_polling_interval, queues.message_encoding) == (60.0, "base64")
    assert config.function_timeout == 1800.0


def test_host_json_values_case_insensitive_and_overridden_by_app_settings(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "host.json",
        {
            "version": "2.0",
            "functionTimeout": "00:10:00",
            "extensions": {
                "http": {"routePrefix": ""},
                "Queues": {
                    "BatchSize": 8,
                    "maxDequeueCount": 2,
                    "visibilityTimeout": "00:00:30",
                    "maxPollingInterval": 2000,
                    "messageEncoding": "None",
                },
            },
        },
    )
    env = {"AzureFunctionsJobHost__extensions__queues__batchSize": "32"}
    config = load_host_config(path, environ=env)
    assert config.route_prefix == ""
    assert config.queues.batch_size == 32
    assert config.queues.new_batch_threshold == 16 * (os.cpu_count() or 1)
    assert config.queues.max_dequeue_count == 2
    assert config.queues.visibility_timeout == 30.0
    assert config.queues.max_polling_interval == 2.0  # a number is milliseconds
    assert config.queues.message_encoding == "none"
    assert config.function_timeout == 600.0
    assert (
        load_host_config(write_json(tmp_path / "h2.json", {"functionTimeout": "-1"}), {}).function_timeout
        is None
    )


def test_polling_cap_from_environment(tmp_path: Path) -> None:
    config = load_host_config(None, environ={"FUNCHOST_MAX_POLLING_INTERVAL_MS": "250"})
    assert config.queues.max_polling_interval == 0.25


@pytest.mark.parametrize(
    ("queues", "message"),
    [
        ({"batchSize": 33}, "batchSize must be between 1 and 32"),
        ({"maxDequeueCount": 0}, "maxDequeueCount must be at least 1"),
        ({"maxPollingInterval": "00:00:00.05"}, "at least 100 ms"),
        ({"visibilityTimeout": 10}, "must be a TimeSpan"),
        ({"messageEncoding": "utf8"}, "base64 or none"),
    ],
)
def test_bad_host_json_values_name_the_key(tmp_path: Path, queues: dict[str, object], message: str) -> None:
    path = write_json(tmp_path / "host.json", {"extensions": {"queues": queues}})
    with pytest.raises(ConfigError, match=message) as info:
        load_host_config(path, environ={})
    assert str(path) in str(info.value)


def test_settings_file_fills_only_unset_values(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "local.settings.json", {"IsEncrypted": False, "Values": {"A": "file", "B": 3}}
    )
    env = {"A": "already"}
    assert apply_settings(load_settings(path), env) == ["B"]
    assert env == {"A": "already", "B": "3"}


def test_binding_expressions() -> None:
    env = {"QUEUE": "work", "ENV": "dev"}
    assert resolve_expression("%QUEUE%-%ENV%", "queue", env) == "work-dev"
    assert resolve_expression("plain", "queue", env) == "plain"
    with pytest.raises(ConfigError, match="'MISSING'"):
        resolve_expression("%MISSING%", "queue name of 'work'", env)


def test_queue_helpers() -> None:
    assert decode_body("aGVsbG8=", "base64") == b"hello"
    assert decode_body("aGVs\nbG8=", "base64") == b"hello"
    assert decode_body("not base64!", "none") == b"not base64!"
    with pytest.raises(ValueError, match="base64"):
        decode_body("not base64!", "base64")
    assert poison_queue_name("work") == "work-poison"
    assert poison_queue_name("work-poison") is None
    assert poison_queue_name("q" * 60) is None
    backoff = Backoff(0.1, 1.0)
    delays = [backoff.next_delay(False) for _ in range(8)]
    assert delays[0] == 0.1
    assert delays[-1] == 1.0
    assert delays == sorted(delays)
    assert backoff.next_delay(True) == 0.1


def test_connection_resolution() -> None:
    with pytest.raises(ConfigError, match="MyStorage"):
        create_service_client("MyStorage", environ={})
    conn = "UseDevelopmentStorage=true"
    assert create_service_client("MyStorage", environ={"MyStorage": conn}).account_name == "devstoreaccount1"
    by_prefix = create_service_client("Other", environ={"AzureWebJobsOther": conn})
    assert by_prefix.account_name == "devstoreaccount1"
    identity = create_service_client(
        "AzureWebJobsStorage",
        environ={
            "AzureWebJobsStorage__accountName": "prodacct",
            "AzureWebJobsStorage__credential": "managedidentity",
        },
    )
    assert identity.url.startswith("https://prodacct.queue.core.windows.net")
    assert type(identity.credential).__name__ == "ManagedIdentityCredential"


def test_output_bindings_are_refused_naming_function_and_binding(tmp_path: Path) -> None:
    ref = make_app(
        tmp_path,
        """
@app.queue_trigger(arg_name="msg", queue_name="incoming", connection="AzureWebJobsStorage")
@app.queue_output(arg_name="out", queue_name="outgoing", connection="AzureWebJobsStorage")
def relay(msg: func.QueueMessage, out: func.Out[str]) -> None:
    out.set(msg.get_body().decode())
""",
    )
    with pytest.raises(LoadError, match=r"function 'relay': binding 'out' of type 'queue'"):
        FunctionHost(ref, root=tmp_path)


def test_unsupported_trigger_and_missing_setting_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = make_app(
        tmp_path,
        """
@app.blob_trigger(arg_name="blob", path="c/{name}", connection="AzureWebJobsStorage")
def on_blob(blob: func.InputStream) -> None:
    pass
""",
    )
    with pytest.raises(LoadError, match=r"function 'on_blob': trigger 'blob' of type 'blobTrigger'"):
        FunctionHost(ref, root=tmp_path)
    monkeypatch.delenv("FUNCHOST_TEST_UNSET", raising=False)
    ref = make_app(
        tmp_path,
        """
@app.queue_trigger(arg_name="msg", queue_name="%FUNCHOST_TEST_UNSET%", connection="AzureWebJobsStorage")
def consume(msg: func.QueueMessage) -> None:
    pass
""",
    )
    with pytest.raises(LoadError, match=r"'consume'.*'FUNCHOST_TEST_UNSET'"):
        FunctionHost(ref, root=tmp_path)
    monkeypatch.setenv("FUNCHOST_TEST_UNSET", "Bad_Name")
    with pytest.raises(LoadError, match="not a valid queue name"):
        FunctionHost(ref, root=tmp_path)


def test_settings_file_feeds_expressions_and_host_json_is_found_next_to_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FUNCHOST_TEST_QUEUE", raising=False)
    ref = make_app(
        tmp_path,
        """
@app.queue_trigger(arg_name="msg", queue_name="%FUNCHOST_TEST_QUEUE%", connection="AzureWebJobsStorage")
def consume(msg: func.QueueMessage) -> None:
    pass

@app.route(route="hello")
def hello(req: func.HttpRequest) -> str:
    return "hi"
""",
    )
    write_json(tmp_path / "host.json", {"extensions": {"http": {"routePrefix": "v2"}}})
    settings = write_json(
        tmp_path / "local.settings.json", {"Values": {"FUNCHOST_TEST_QUEUE": "from-settings"}}
    )
    host = FunctionHost(ref, root=tmp_path, settings_file=settings)
    monkeypatch.delenv("FUNCHOST_TEST_QUEUE")  # the host put it there
    described = {s.name: s.describe() for s in host.functions}
    assert described["consume"]["queue"] == "from-settings"
    assert described["hello"]["route"] == "v2/hello"
    assert described["hello"]["auth_level"] == "function"  # FunctionApp's default
