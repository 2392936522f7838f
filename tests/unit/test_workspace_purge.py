"""D1's query and the workspace erasure outcome: purge by default, a soft delete said as one."""

from __future__ import annotations

import datetime as dt

import pytest

from shared.aml.catalog import FORCE_TO_PURGE_SINCE, supports_force_to_purge
from shared.core import settings as names
from shared.core.settings import Settings
from shared.tasks.workspace_delete import gone_outcome, workspace_delete_params, workspace_outcome

BASE = {
    names.STORAGE_BLOB_URI: "https://acct.blob.core.windows.net",
    names.STORAGE_QUEUE_URI: "https://acct.queue.core.windows.net",
    names.STORAGE_TABLE_URI: "https://acct.table.core.windows.net",
    names.PSEUDONYM_KEY: "k" * 40,
}


def test_by_default_the_workspace_delete_purges_at_the_newest_stable_api_version() -> None:
    settings = Settings.from_env(BASE)
    assert (settings.workspace_purge, settings.arm_workspace_delete_api_version) == (True, "2025-12-01")
    assert workspace_delete_params(settings) == (
        {"api-version": "2025-12-01", "forceToPurge": "true"},
        None,
    )


def test_a_chosen_soft_delete_sends_no_force_to_purge_and_says_why() -> None:
    settings = Settings.from_env({**BASE, names.WORKSPACE_PURGE: "false"})
    params, why = workspace_delete_params(settings)
    assert params == {"api-version": "2025-12-01"}
    assert why is not None
    assert names.WORKSPACE_PURGE in why


@pytest.mark.parametrize("version", ["2019-11-01", "2023-10-01", "2023-06-01-preview"])
def test_an_api_version_without_force_to_purge_is_not_trusted_with_it(version: str) -> None:
    settings = Settings.from_env({**BASE, names.ARM_WORKSPACE_DELETE_API_VERSION: version})
    params, why = workspace_delete_params(settings)
    assert params == {"api-version": version}  # a purge asked there would silently soft-delete
    assert why is not None
    assert FORCE_TO_PURGE_SINCE in why


@pytest.mark.parametrize(
    ("version", "has_it"),
    [
        ("2024-04-01", True),
        ("2025-12-01", True),
        ("2024-01-01-preview", False),
        ("2019-11-01", False),
        ("", False),
    ],
)
def test_force_to_purge_exists_from_2024_04_01(version: str, has_it: bool) -> None:
    assert supports_force_to_purge(version) is has_it


def test_the_outcome_names_a_purge_or_the_latest_recovery_date() -> None:
    seen = dt.datetime(2026, 12, 7, 21, 0, 30, 999_000, tzinfo=dt.UTC)
    purged: dict[str, object] = {"forceToPurge": True}
    assert workspace_outcome(purged, seen) == "purged"
    assert purged["recoverableUntil"] is None
    soft: dict[str, object] = {"forceToPurge": False}
    assert workspace_outcome(soft, seen) == "soft-deleted, recoverable until 2026-12-21T21:00:30Z"
    assert soft["recoverableUntil"] == "2026-12-21T21:00:30Z"
    assert gone_outcome("purged")
    assert gone_outcome(str(workspace_outcome(soft, seen)))
    assert not gone_outcome("still visible")
    assert not gone_outcome("operation failed")
