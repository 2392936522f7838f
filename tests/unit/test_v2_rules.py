"""How a v2 (ARM) record's systemData decides (shared/tasks/v2_rules.identity): the subject's UPN or mail in any
letter case; an application's record never; another person's e-mail decided as theirs; a display name, or a
subject whose UPN and mail are unknown, left to the rules."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from shared.core.matching import Subject
from shared.tasks.v2_rules import identity

ALICE = Subject("0b1c2d3e-0000-4000-8000-000000000001", "alice@contoso.com", "alice.smith@contoso.com")


def decide(subject: Subject, created_by: object, created_by_type: str | None = "User") -> str | None:
    ctx = SimpleNamespace(matcher=SimpleNamespace(subject=subject))
    data = {"createdBy": created_by}
    if created_by_type is not None:
        data["createdByType"] = created_by_type
    return identity(ctx, {"name": "x", "systemData": data})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("created_by", "created_by_type", "expected"),
    [
        ("alice@contoso.com", "User", "systemData.createdBy"),
        ("ALICE@Contoso.com", "User", "systemData.createdBy"),  # ASCII case folded
        ("alice.smith@contoso.com", None, "systemData.createdBy"),  # endpoints: no createdByType
        ("alice@contoso.com", "Application", ""),  # an application's record is never a person's
        ("bob@contoso.com", "User", ""),  # another person's e-mail: theirs
        ("Alice Smith", "User", None),  # a display name is never compared: left to the rules
        (None, "User", None),  # no creator at all
        ("alice@contoso\u212a.com", "User", ""),  # the Kelvin sign is not a K: someone else
    ],
)
def test_system_data_decides_on_the_resolved_upn_or_mail_only(created_by, created_by_type, expected):
    assert decide(ALICE, created_by, created_by_type) == expected


def test_a_subject_known_by_object_id_only_leaves_every_user_record_to_the_rules():
    only_oid = Subject(ALICE.object_id)
    assert decide(only_oid, "bob@contoso.com") is None
    assert decide(only_oid, "alice@contoso.com") is None
    assert decide(only_oid, "alice@contoso.com", "Application") == ""
