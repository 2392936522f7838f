"""Telemetry: the request id on log records, Application Insights configured only when its setting is there, and
the product's metrics read back through the OpenTelemetry SDK's in-memory reader (no network, no exporter)."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from types import SimpleNamespace

import azure.functions as func
import pytest
import requests
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from shared.aml.client import AzureMLClient
from shared.core import settings as names
from shared.core import telemetry
from shared.core.outbound import AllowList
from shared.edge import routes

REQUEST_ID = "01932f4e-7a1b-7c3d-8e4f-0123456789ab"
OTHER_ID = "01932f4e-7a1b-7c3d-8e4f-ba9876543210"
CONNECTION = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://example.invalid/"
)


@pytest.fixture
def reader():
    """The module's instruments record into an in-memory reader for the test, then into the global provider."""
    reader = InMemoryMetricReader()
    telemetry.bind_meter_provider(MeterProvider(metric_readers=[reader]))
    yield reader
    telemetry.bind_meter_provider(None)


@pytest.fixture
def fresh(monkeypatch):
    """A process that has not configured telemetry yet, without the Application Insights settings."""
    monkeypatch.delenv(names.APPLICATIONINSIGHTS_CONNECTION_STRING, raising=False)
    monkeypatch.delenv(names.APPLICATIONINSIGHTS_AUTHENTICATION_STRING, raising=False)
    telemetry.reset_for_tests()
    yield
    telemetry.reset_for_tests()


@pytest.fixture
def fake_distro(monkeypatch):
    """configure_azure_monitor and ManagedIdentityCredential replaced by recorders."""
    import azure.identity
    import azure.monitor.opentelemetry

    calls: list[dict] = []

    class Credential:
        def __init__(self, client_id=None):
            self.client_id = client_id

    monkeypatch.setattr(azure.monitor.opentelemetry, "configure_azure_monitor", lambda **kw: calls.append(kw))
    monkeypatch.setattr(azure.identity, "ManagedIdentityCredential", Credential)
    return SimpleNamespace(calls=calls, Credential=Credential)


def points(reader: InMemoryMetricReader, name: str) -> dict[tuple, object]:
    """The data points of one metric, keyed by their sorted attributes."""
    found: dict[tuple, object] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        found[tuple(sorted(point.attributes.items()))] = point
    return found


# -- metrics --------------------------------------------------------------------------------------------------
def test_request_status_counts_each_stored_status_by_type_and_status(reader):
    # When three status changes are stored
    telemetry.request_status("export", "accepted")
    telemetry.request_status("export", "accepted")
    telemetry.request_status("erasure", "awaiting_approval")

    # Then dsr.requests counts them per (type, status)
    counts = {key: p.value for key, p in points(reader, "dsr.requests").items()}
    assert counts == {
        (("status", "accepted"), ("type", "export")): 2,
        (("status", "awaiting_approval"), ("type", "erasure")): 1,
    }


def test_task_duration_is_a_histogram_in_seconds_by_family_and_outcome(reader):
    telemetry.task_finished("runs", "done", 1.5)
    telemetry.task_finished("runs", "done", 0.25)
    telemetry.task_finished("models", "yielded", 240.0)
    telemetry.task_finished("erase", "failed", -0.001)  # a clock step never records a negative duration

    found = points(reader, "dsr.task.duration")
    runs = found[(("family", "runs"), ("outcome", "done"))]
    assert (runs.count, runs.sum, runs.min, runs.max) == (2, 1.75, 0.25, 1.5)
    assert found[(("family", "models"), ("outcome", "yielded"))].sum == 240.0
    assert found[(("family", "erase"), ("outcome", "failed"))].min == 0.0
    # the buckets are the seconds-scale ones, not the SDK's millisecond defaults
    assert tuple(runs.explicit_bounds) == telemetry.DURATION_BUCKETS
    assert reader.get_metrics_data() is not None
    units = {
        m.name: m.unit
        for r in reader.get_metrics_data().resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
    }
    assert units["dsr.task.duration"] == "s"


def test_aml_calls_count_by_host_and_status_class_and_429s_by_host(reader):
    for status in (200, 200, 204, 404, 429, 429, 503, 0):
        telemetry.aml_call("Management.Azure.com", status)
    telemetry.aml_call("westeurope.experiments.azureml.net", 429)

    calls = {key: p.value for key, p in points(reader, "dsr.aml.calls").items()}
    assert calls == {
        (("host", "management.azure.com"), ("status_class", "2xx")): 3,
        (("host", "management.azure.com"), ("status_class", "4xx")): 3,
        (("host", "management.azure.com"), ("status_class", "5xx")): 1,
        (("host", "management.azure.com"), ("status_class", "no-answer")): 1,
        (("host", "westeurope.experiments.azureml.net"), ("status_class", "4xx")): 1,
    }
    throttled = {key: p.value for key, p in points(reader, "dsr.aml.throttled").items()}
    assert throttled == {
        (("host", "management.azure.com"),): 2,
        (("host", "westeurope.experiments.azureml.net"),): 1,
    }


class Script(BaseAdapter):
    """Answers each request with the next scripted status (or raises the scripted exception)."""

    def __init__(self, answers):
        super().__init__()
        self.answers = list(answers)

    def send(self, request, **kwargs):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps({"value": []}).encode()
        response.headers = CaseInsensitiveDict(headers)
        response.url, response.request = request.url, request
        return response

    def close(self):
        pass


def test_the_azure_ml_client_reports_every_response_and_every_unanswered_call(reader):
    # Given a client whose service answers: no connection, 429 (short Retry-After), 503, then 200
    session = requests.Session()
    session.mount(
        "https://",
        Script([requests.ConnectionError("reset"), (429, {"Retry-After": "1"}), (503, {}), (200, {})]),
    )
    credential = SimpleNamespace(get_token=lambda *a, **k: SimpleNamespace(token="t", expires_on=4102444800))
    client = AzureMLClient(
        credential, "aud", AllowList(["management.azure.com"]), session=session, sleep=lambda s: None
    )

    # When one call goes through its retries
    assert client.get_json("https://management.azure.com/subscriptions/s/x") == {"value": []}

    # Then every attempt was counted with its status class, and the 429 as throttled
    calls = {dict(key)["status_class"]: p.value for key, p in points(reader, "dsr.aml.calls").items()}
    assert calls == {"no-answer": 1, "4xx": 1, "5xx": 1, "2xx": 1}
    throttled = points(reader, "dsr.aml.throttled")
    assert {key: p.value for key, p in throttled.items()} == {(("host", "management.azure.com"),): 1}


def test_without_a_configured_provider_the_instruments_are_the_api_no_ops():
    # Given the global provider of a process that configured nothing (the OpenTelemetry API's proxy)
    telemetry.bind_meter_provider(None)
    instruments = telemetry._instruments

    # Then the instruments are the API's proxies (no SDK behind them), and the hooks record nothing and pass
    assert type(instruments.requests).__module__.startswith("opentelemetry.metrics")
    assert type(instruments.task_duration).__module__.startswith("opentelemetry.metrics")
    telemetry.request_status("export", "running")
    telemetry.task_finished("runs", "done", 1.0)
    telemetry.aml_call("management.azure.com", 429)


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "2xx"), (302, "3xx"), (429, "4xx"), (599, "5xx"), (0, "no-answer"), (600, "no-answer")],
)
def test_status_classes(status, expected):
    assert telemetry.status_class(status) == expected


# -- logs -----------------------------------------------------------------------------------------------------
def test_log_records_carry_the_request_id_inside_a_correlation_and_not_outside(fresh, caplog):
    log = logging.getLogger("shared.test")
    with caplog.at_level(logging.INFO):
        log.info("before")
        with telemetry.correlation(REQUEST_ID.upper()) as value:
            log.info("inside")
            with telemetry.correlation(OTHER_ID):
                log.info("nested")
            log.warning("inside again")
        log.info("after")

    by_message = {r.getMessage(): getattr(r, telemetry.REQUEST_ID_ATTRIBUTE, None) for r in caplog.records}
    assert value == REQUEST_ID  # stored in its canonical lower-case form
    assert by_message == {
        "before": None,
        "inside": REQUEST_ID,
        "nested": OTHER_ID,
        "inside again": REQUEST_ID,
        "after": None,
    }
    assert telemetry.current_request_id() is None


@pytest.mark.parametrize("value", ["alice@contoso.com", "Alice Example", "../x", "", None, 42])
def test_a_value_that_is_not_a_request_id_never_reaches_a_log_record(fresh, caplog, value):
    with caplog.at_level(logging.INFO), telemetry.correlation(value) as attached:
        logging.getLogger("shared.test").info("inside")

    assert attached is None
    assert not hasattr(caplog.records[0], telemetry.REQUEST_ID_ATTRIBUTE)


def test_text_logs_show_the_request_id_at_the_end_of_the_first_line(fresh):
    # Given a logger whose handler writes "LEVEL name: message" (as the local host's console does)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("test.telemetry.text")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.INFO)

    # When logging is installed on it and lines are written inside and outside a correlation
    telemetry.install_logging(root)
    telemetry.install_logging(root)  # twice: the formatter is wrapped once
    root.info("outside")
    with telemetry.correlation(REQUEST_ID):
        root.info("inside")
        try:
            raise ValueError("boom")
        except ValueError:
            root.exception("failed")

    # Then only the lines inside carry it, before a traceback
    lines = stream.getvalue().splitlines()
    assert lines[0] == "INFO test.telemetry.text: outside"
    assert lines[1] == f"INFO test.telemetry.text: inside requestId={REQUEST_ID}"
    assert lines[2] == f"ERROR test.telemetry.text: failed requestId={REQUEST_ID}"
    assert lines[3] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"
    assert isinstance(handler.formatter, telemetry.RequestIdFormatter)
    assert not isinstance(handler.formatter.inner, telemetry.RequestIdFormatter)


def test_http_routes_with_an_id_log_under_that_request_id(fresh, caplog, monkeypatch):
    # Given an anonymous route handler that logs
    def probe(rt, req):
        logging.getLogger("shared.probe").info("handling")
        return func.HttpResponse("ok")

    anonymous = routes.route_for(routes.get_openapi)
    monkeypatch.setattr(routes, "ROUTES", (*routes.ROUTES, dataclasses.replace(anonymous, handler=probe)))

    def call(route_id: str) -> logging.LogRecord:
        caplog.clear()
        req = func.HttpRequest(
            "GET", f"https://host/api/v1/requests/{route_id}", body=b"", route_params={"id": route_id}
        )
        with caplog.at_level(logging.INFO):
            assert routes.handle(req, probe).status_code == 200
        return next(r for r in caplog.records if r.name == "shared.probe")

    # Then a request id in the route tags the handler's lines, anything else does not
    assert getattr(call(REQUEST_ID), "requestId", None) == REQUEST_ID
    assert not hasattr(call("bob@contoso.com"), "requestId")


@pytest.mark.parametrize(
    ("trigger", "target", "body"),
    [
        ("work", "dispatch.execute", {"requestId": REQUEST_ID, "taskId": "t1"}),
        ("plan", "planning.plan", {"requestId": REQUEST_ID}),
        ("finalize", "completion.finalize", {"requestId": REQUEST_ID}),
        ("work_poison", "recovery.task_poisoned", {"requestId": REQUEST_ID, "taskId": "t1"}),
        ("plan_poison", "recovery.request_poisoned", {"requestId": REQUEST_ID}),
        ("finalize_poison", "recovery.request_poisoned", {"requestId": REQUEST_ID}),
    ],
)
def test_queue_triggers_run_their_work_under_the_message_request_id(
    fresh, monkeypatch, trigger, target, body
):
    import function_app

    seen: list[str | None] = []
    module, name = target.split(".")
    monkeypatch.setattr(
        getattr(function_app, module), name, lambda *a: seen.append(telemetry.current_request_id())
    )
    monkeypatch.setattr(function_app, "get_runtime", lambda: None)
    message = func.QueueMessage(body=json.dumps(body).encode())

    getattr(function_app, trigger).build().get_user_function()(message)

    assert seen == [REQUEST_ID]
    assert telemetry.current_request_id() is None


# -- configuring Application Insights -------------------------------------------------------------------------
def test_nothing_is_configured_without_the_connection_string(fresh, fake_distro):
    assert telemetry.configure({}) is False
    assert (
        telemetry.configure({names.APPLICATIONINSIGHTS_CONNECTION_STRING: CONNECTION}) is False
    )  # decided once
    assert fake_distro.calls == []


def test_a_blank_connection_string_is_unset(fresh, fake_distro):
    assert telemetry.configure({names.APPLICATIONINSIGHTS_CONNECTION_STRING: "  "}) is False
    assert fake_distro.calls == []


def test_the_connection_string_configures_azure_monitor_once_with_the_managed_identity(fresh, fake_distro):
    env = {
        names.APPLICATIONINSIGHTS_CONNECTION_STRING: CONNECTION,
        names.APPLICATIONINSIGHTS_AUTHENTICATION_STRING: "ClientId=9d4e1f20-2222-4c3b-8e8f-0000000000c1;Authorization=AAD",
    }
    assert telemetry.configure(env) is True
    assert telemetry.configure(env) is True

    assert len(fake_distro.calls) == 1
    options = fake_distro.calls[0]
    assert options["connection_string"] == CONNECTION
    assert options["logger_name"] == "shared"
    assert isinstance(options["credential"], fake_distro.Credential)
    assert options["credential"].client_id == "9d4e1f20-2222-4c3b-8e8f-0000000000c1"
    assert options["instrumentation_options"]["requests"] == {"enabled": False}
    assert "azure_sdk" not in options["instrumentation_options"]


def test_the_first_correlation_configures_from_the_process_environment(fresh, fake_distro, monkeypatch):
    monkeypatch.setenv(names.APPLICATIONINSIGHTS_CONNECTION_STRING, CONNECTION)

    with telemetry.correlation(REQUEST_ID):
        pass
    with telemetry.correlation(OTHER_ID):
        pass

    assert [c["connection_string"] for c in fake_distro.calls] == [CONNECTION]
    assert "credential" not in fake_distro.calls[0]  # no authentication string: the exporter's default


@pytest.mark.parametrize(
    ("value", "client_id"),
    [
        ("ClientId=abc;Authorization=AAD", "abc"),
        ("authorization=aad ; clientid = abc", "abc"),
        ("Authorization=AAD", None),  # system-assigned identity
    ],
)
def test_the_authentication_string_selects_the_managed_identity(fake_distro, value, client_id):
    credential = telemetry.exporter_credential(value)

    assert isinstance(credential, fake_distro.Credential)
    assert credential.client_id == client_id


@pytest.mark.parametrize("value", ["", "ClientId=abc", "Authorization=Key", "garbage"])
def test_other_authentication_strings_give_no_credential(fake_distro, value):
    assert telemetry.exporter_credential(value) is None


def test_a_failing_configuration_leaves_the_product_running_without_telemetry(fresh, monkeypatch, caplog):
    import azure.monitor.opentelemetry

    def broken(**kwargs):
        raise ValueError("Invalid instrumentation key")

    monkeypatch.setattr(azure.monitor.opentelemetry, "configure_azure_monitor", broken)

    with caplog.at_level(logging.ERROR):
        assert telemetry.configure({names.APPLICATIONINSIGHTS_CONNECTION_STRING: "x"}) is False

    assert "telemetry to Application Insights is off" in caplog.text
