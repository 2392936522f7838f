"""Which records belong to the subject."""

import pytest

from shared.matching import WHOLE_WORKSPACE, Matcher, Subject
from shared.settings import DEFAULT_MATCH_FIELDS

FIELDS = DEFAULT_MATCH_FIELDS.split(",")
ALICE = Subject("0a1b2c3d-0000-4000-8000-000000000001", "alice@contoso.example", "alice.jansen@mail.example")


def test_matches_by_object_id_upn_email_case_insensitively():
    m = Matcher(ALICE, FIELDS)
    assert (
        m.reason({"createdBy": {"userObjectId": "0A1B2C3D-0000-4000-8000-000000000001"}})
        == "createdBy.userObjectId"
    )
    assert m.reason({"createdBy": {"upn": "Alice@Contoso.Example"}}) == "createdBy.upn"
    assert m.reason({"createdBy": {"userName": "ALICE.JANSEN@mail.example"}}) == "createdBy.userName"
    assert m.reason({"systemData": {"createdBy": "alice@contoso.example", "createdByType": "User"}}) == (
        "systemData.createdBy"
    )


def test_someone_elses_records_and_display_names_do_not_match():
    m = Matcher(ALICE, FIELDS)
    assert m.reason({"createdBy": {"userObjectId": "other", "userName": "Alice Jansen"}}) is None
    assert m.reason({"createdBy": None}) is None
    assert m.reason({"name": "alice@contoso.example"}) is None  # not an identity field
    assert m.reason({}) is None


def test_whole_workspace_keeps_everything():
    assert Matcher(None, FIELDS).reason({"anything": 1}) == WHOLE_WORKSPACE


def test_a_subject_without_identifiers_is_refused():
    with pytest.raises(ValueError, match="identifier"):
        Matcher(Subject(None, " ", None), FIELDS)
