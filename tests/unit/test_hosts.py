"""Which host a task calls: the workspace's discovered hosts, else the configured template for its region."""

from types import SimpleNamespace

import pytest

from shared.aml.catalog import ENDPOINTS
from shared.core.model import Task, WorkspaceRef
from shared.core.outbound import DisallowedUrlError
from shared.core.settings import Settings
from shared.tasks.context import TaskContext

SETTINGS = Settings(blob_service_uri="b", queue_service_uri="q", table_service_uri="t", pseudonym_key=b"k")


def context(ws: WorkspaceRef) -> TaskContext:
    task = Task("req", "t1", "models", workspace=ws)
    return TaskContext(SimpleNamespace(settings=SETTINGS), None, task, 0.0, None, None)  # type: ignore[arg-type]


def test_templates_fill_the_region_and_arm_is_global():
    ctx = context(WorkspaceRef("s", "rg", "ws", "westeurope"))
    assert ctx.url(ENDPOINTS["E15"]) == (
        "https://westeurope.modelmanagement.azureml.net/modelmanagement/v1.0/subscriptions/s/resourceGroups/rg/"
        "providers/"
        "Microsoft.MachineLearningServices/workspaces/ws/models?api-version=2019-11-01"
    )
    assert ctx.url(ENDPOINTS["E2"]).startswith("https://management.azure.com/subscriptions/s/")


def test_discovered_hosts_replace_the_templates():
    ws = WorkspaceRef("s", "rg", "ws", "westeurope", {"experiments": "https://westeurope.api.azureml.ms/"})
    ctx = context(ws)
    assert ctx.url(ENDPOINTS["E5"]).startswith(
        "https://westeurope.api.azureml.ms/history/v1.0/subscriptions/s/"
    )
    assert ctx.url(ENDPOINTS["E15"]).startswith(
        "https://westeurope.modelmanagement.azureml.net/modelmanagement/v1.0/"
    )


def test_a_bad_region_never_reaches_a_host_name():
    ctx = context(WorkspaceRef("s", "rg", "ws", "evil.example/x"))
    with pytest.raises(DisallowedUrlError):
        ctx.url(ENDPOINTS["E5"])
