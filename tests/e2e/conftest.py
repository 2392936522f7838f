"""The whole local stack for end-to-end tests: keyless Azurite, the Azure ML simulator, the Functions host."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devtools.stack import LocalStack


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    saved = dict(os.environ)
    with LocalStack(page_size=5) as running:
        running.apply_environment()
        yield running
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def sim(stack: LocalStack):
    """The simulator, with faults and the request log cleared for each test."""
    assert stack.simulator is not None
    stack.simulator.clear_faults()
    stack.simulator.clear_log()
    yield stack.simulator
    stack.simulator.clear_faults()
