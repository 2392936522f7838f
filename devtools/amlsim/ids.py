"""Deterministic ids and times shared by the simulator's tenants (fixture.py, v2_fixture.py)."""

from __future__ import annotations

import datetime as dt
import functools
import uuid

_NAMESPACE = uuid.UUID("3b241101-e2bb-4255-8caf-4136c566a962")
_EPOCH = dt.datetime(2024, 1, 8, 9, 0, tzinfo=dt.UTC)


def guid(*parts: object) -> str:
    """A uuid5 of the parts: the same names give the same id on every build."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(str(p) for p in parts)))


@functools.lru_cache(maxsize=1 << 16)  # lazily rendered bodies ask for the same times again and again
def timestamp(minutes: int) -> str:
    """The tenant clock: `minutes` after 2024-01-08 09:00 UTC, as the services print it."""
    return (_EPOCH + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
