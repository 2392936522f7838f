"""Queue triggers against keyless Azurite: base64, dequeue count, poison queue, leases, scale-out."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from devtools.funchost import FunctionHost
from tests.devtools.funchost import sample_app
from tests.devtools.funchost.conftest import start_host, wait_for

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def queue_length(client: QueueClient) -> int:
    return client.get_queue_properties().approximate_message_count or 0


def peek_raw(client: QueueClient) -> list[str]:
    try:
        return [m.content for m in client.peek_messages(max_messages=32)]
    except ResourceNotFoundError:
        return []


def test_base64_message_reaches_the_trigger_once_and_is_deleted(
    host: FunctionHost, sender: QueueClient, raw_client: Callable[[str], QueueClient], queue_name: str
) -> None:
    body = f"hello {uuid.uuid4()} ünïcödé"
    sent = sender.send_message(body)
    [got] = wait_for(lambda: sample_app.records("work", body=body), what="the queue function")
    assert got["id"] == sent.id
    assert got["dequeue_count"] == 1
    assert got["function_name"] == "work"
    assert UUID.match(got["invocation_id"])
    wait_for(lambda: queue_length(sender) == 0, what="the message to be deleted")
    assert sample_app.records("work", body=body) == [got]  # not run twice
    assert host.invocations["work"] == {"succeeded": 1, "failed": 0}
    assert peek_raw(raw_client(f"{queue_name}-poison")) == []


def test_failing_message_is_retried_max_dequeue_count_times_then_poisoned(
    host: FunctionHost, sender: QueueClient, raw_client: Callable[[str], QueueClient], queue_name: str
) -> None:
    body = f"fail {uuid.uuid4()}"
    sender.send_message(body)
    poison = raw_client(f"{queue_name}-poison")
    [poisoned] = wait_for(lambda: peek_raw(poison), what="the poison queue")
    assert poisoned == base64.b64encode(body.encode()).decode()  # the original message text
    counts = [r["dequeue_count"] for r in sample_app.records("work", body=body)]
    assert counts == [1, 2, 3]  # host.json maxDequeueCount 3
    assert host.invocations["work"] == {"succeeded": 0, "failed": 3}
    wait_for(lambda: queue_length(sender) == 0, what="the message to leave the queue")


def test_message_that_is_not_base64_goes_to_poison_without_running(
    host: FunctionHost, raw_client: Callable[[str], QueueClient], queue_name: str
) -> None:
    text = f"plain text, not base64 {uuid.uuid4()}!"
    raw_client(queue_name).send_message(text)
    [poisoned] = wait_for(lambda: peek_raw(raw_client(f"{queue_name}-poison")), what="the poison queue")
    assert poisoned == text
    assert host.invocations["work"] == {"succeeded": 0, "failed": 0}
    wait_for(lambda: queue_length(raw_client(queue_name)) == 0, what="the message to leave the queue")


def test_lease_is_renewed_while_a_long_invocation_runs(
    storage_env: dict[str, str], sender: QueueClient
) -> None:
    body = f"sleep:2.2:{uuid.uuid4()}"
    host = start_host(queue_lease_seconds=1)  # without renewal the message would reappear after 1 s
    try:
        sender.send_message(body)
        wait_for(lambda: host.invocations["work"]["succeeded"] == 1, what="the slow invocation")
        assert [r["dequeue_count"] for r in sample_app.records("work", body=body)] == [1]
        wait_for(lambda: queue_length(sender) == 0, what="the message to be deleted")
    finally:
        host.stop(timeout=10)


def test_stop_is_graceful_for_in_flight_messages(storage_env: dict[str, str], sender: QueueClient) -> None:
    body = f"sleep:1.0:{uuid.uuid4()}"
    host = start_host()
    try:
        sender.send_message(body)
        wait_for(lambda: sample_app.records("work", body=body), what="the invocation to start")
    finally:
        drained = host.stop(timeout=10)
    assert drained
    assert host.invocations["work"] == {"succeeded": 1, "failed": 0}
    assert queue_length(sender) == 0  # completed and deleted before stop returned


def test_two_hosts_on_one_queue_process_each_message_exactly_once(
    storage_env: dict[str, str], sender: QueueClient
) -> None:
    run = uuid.uuid4().hex
    bodies = [f"sleep:0.05:{run}:{i}" for i in range(30)]
    first, second = start_host(), start_host(timers=False)
    try:
        for body in bodies:
            sender.send_message(body)
        wait_for(
            lambda: (
                first.invocations["work"]["succeeded"] + second.invocations["work"]["succeeded"]
                >= len(bodies)
            ),
            timeout=30,
            what="all messages",
        )
        wait_for(lambda: queue_length(sender) == 0, what="the queue to drain")
    finally:
        first.stop(timeout=10)
        second.stop(timeout=10)
    seen = [r["body"] for r in sample_app.RECORDS if r["kind"] == "work" and f":{run}:" in r["body"]]
    assert sorted(seen) == sorted(bodies)  # each exactly once
    assert first.invocations["work"]["failed"] == second.invocations["work"]["failed"] == 0
    assert first.invocations["work"]["succeeded"] > 0
    assert second.invocations["work"]["succeeded"] > 0
