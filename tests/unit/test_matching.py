"""Which records belong to the subject."""

import pytest

from shared.core.matching import WHOLE_WORKSPACE, Matcher, Subject
from shared.core.settings import DEFAULT_MATCH_FIELDS

FIELDS = DEFAULT_MATCH_FIELDS.split(",")
ALICE = Subject("0a1b2c3d-0000-4000-8000-000000000001", "alice@contoso.example", "alice.jansen@mail.example")


def test_matches_by_object_id_upn_email_case_insensitively():
    m = Matcher(ALICE, FIELDS)
    assert (
        m.reason({"createdBy": {"userObjectId": "0A1B2C3D-0000-4000-8000-000000000001"}})
        == "createdBy.userObjectId"
    )
    assert m.reason({"createdBy": {"upn": "Alice@Contoso.Example"}}) == "createdBy.upn"
    assert m.reason({"properties": {"properties": {"createdBy": {"userId": ALICE.object_id.upper()}}}}) == (
        "properties.properties.createdBy.userId"
    )
    assigned = {"personalComputeInstanceSettings": {"assignedUser": {"objectId": ALICE.object_id}}}
    assert m.reason({"properties": {"properties": assigned}}) == (
        "properties.properties.personalComputeInstanceSettings.assignedUser.objectId"
    )
    assert m.reason({"CreatedBy": {"UserObjectId": ALICE.object_id}}) == "CreatedBy.UserObjectId"
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


def test_a_display_name_only_record_is_refused_and_user_name_is_never_compared():
    m = Matcher(ALICE, FIELDS)
    # userName is a full name or an app id (run-history spec): never an identity field, even holding a UPN
    assert m.reason({"createdBy": {"userName": "Alice Jansen"}}) is None
    assert m.reason({"createdBy": {"userName": "alice@contoso.example"}}) is None
    assert m.reason({"createdBy": {"userName": "ALICE.JANSEN@mail.example", "userTenantId": "t"}}) is None
    # configuring a display-name field does not make it compared
    configured = Matcher(ALICE, [*FIELDS, "createdBy.userName", "CreatedBy.UserName"])
    assert configured.ignored == ("createdBy.userName", "CreatedBy.UserName")
    assert configured.reason({"createdBy": {"userName": "alice@contoso.example"}}) is None
    assert "createdBy.userName" not in FIELDS


def test_an_object_id_naming_another_person_wins_over_a_matching_upn():
    m = Matcher(ALICE, FIELDS)
    bobs = {
        "createdBy": {"userObjectId": "b0b00000-0000-4000-8000-000000000002", "upn": "alice@contoso.example"}
    }
    assert m.reason(bobs) is None
    assert m.names_other(bobs)
    arm = {
        "systemData": {"createdBy": "alice@contoso.example"},
        "createdBy": {"userObjectId": "someone-else"},
    }
    assert m.reason(arm) is None
    # created by an admin, assigned to the subject: the subject's object id is named, so it is hers
    ci = {
        "properties": {
            "properties": {
                "createdBy": {"userId": "admin-oid", "userName": "admin@contoso.example"},
                "personalComputeInstanceSettings": {"assignedUser": {"objectId": ALICE.object_id}},
            }
        }
    }
    assert m.reason(ci) == "properties.properties.personalComputeInstanceSettings.assignedUser.objectId"
    assert not m.names_other(ci)
    # no object id at all: the UPN decides
    assert m.reason({"createdBy": {"upn": "ALICE@contoso.example", "userName": "x"}}) == "createdBy.upn"
    # a subject known only by UPN matches no record that names an object id
    upn_only = Matcher(Subject(None, "alice@contoso.example", None), FIELDS)
    assert (
        upn_only.reason({"createdBy": {"userObjectId": ALICE.object_id, "upn": "alice@contoso.example"}})
        is None
    )
    assert upn_only.reason({"createdBy": {"upn": "alice@contoso.example"}}) == "createdBy.upn"
