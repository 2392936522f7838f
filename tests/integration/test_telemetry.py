"""Telemetry from real task runs (keyless Azurite): one duration per invocation by family and outcome, and the
task's log lines under its request id."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from shared.core import settings as names
from shared.core import telemetry
from shared.core.matching import Subject
from shared.core.model import DsrRequest, Task, utcnow
from shared.runtime import Runtime
from shared.tasks import dispatch
from shared.tasks.context import YieldNowError


@pytest.fixture
def runtime(make_runtime) -> Runtime:
    return make_runtime()


@pytest.fixture
def reader():
    reader = InMemoryMetricReader()
    telemetry.bind_meter_provider(MeterProvider(metric_readers=[reader]))
    yield reader
    telemetry.bind_meter_provider(None)


def test_each_task_invocation_records_its_duration_by_family_and_outcome(
    runtime, reader, monkeypatch, caplog
):
    # Given three kinds of task: one that works 50 ms and ends, one that yields, one that fails
    def works(ctx):
        time.sleep(0.05)
        ctx.count("seen")

    def yields(ctx):
        raise YieldNowError

    def fails(ctx):
        raise ValueError("no such family")

    for kind, handler in (("t-works", works), ("t-yields", yields), ("t-fails", fails)):
        monkeypatch.setitem(dispatch.HANDLERS, kind, handler)
    monkeypatch.delenv(names.APPLICATIONINSIGHTS_CONNECTION_STRING, raising=False)
    request = DsrRequest(
        str(uuid.uuid4()),
        "export",
        Subject("0a1b2c3d-0000-4000-8000-000000000002"),
        {},
        utcnow(),
        status="running",
    )
    runtime.store.create_request(request)
    runtime.store.create_tasks([Task(request.id, kind, kind) for kind in ("t-works", "t-yields", "t-fails")])

    # When each runs once, as the work trigger runs it
    with caplog.at_level(logging.INFO), telemetry.correlation(request.id):
        outcomes = [
            dispatch.execute(runtime, request.id, kind) for kind in ("t-works", "t-yields", "t-fails")
        ]

    # Then each invocation recorded one duration under its family and outcome
    assert outcomes == ["done", "yielded", "failed"]
    data = reader.get_metrics_data()
    assert data is not None
    recorded = {
        (p.attributes["family"], p.attributes["outcome"]): p
        for r in data.resource_metrics
        for s in r.scope_metrics
        for m in s.metrics
        if m.name == "dsr.task.duration"
        for p in m.data.data_points
    }
    assert {key: p.count for key, p in recorded.items()} == {
        ("t-works", "done"): 1,
        ("t-yields", "yielded"): 1,
        ("t-fails", "failed"): 1,
    }
    assert 0.05 <= recorded[("t-works", "done")].sum < 30
    # And the failure's log line carries the request id
    failure = next(r for r in caplog.records if "failed: invalid input" in r.getMessage())
    assert getattr(failure, telemetry.REQUEST_ID_ATTRIBUTE) == request.id
