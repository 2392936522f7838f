"""Identifiers in one canonical form that cannot merge two people: ASCII only at intake, compared
ASCII-case-insensitively, patterns anchored at the very end (no trailing newline)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.core.matching import Matcher, Subject, canonical
from shared.core.principal import Principal
from shared.edge.offboarding import BadEventError, parse
from shared.lifecycle.submission import SubjectIn, SubmitIn

KELVIN_K = "\u212a"  # KELVIN SIGN: str.lower() makes it "k"
FIELDS = ["createdBy.userObjectId", "createdBy.upn"]
KATES_MODEL = {"createdBy": {"upn": "kate@contoso.com"}}


def test_the_kelvin_sign_is_not_a_k():
    assert f"{KELVIN_K}ate@contoso.com".lower() == "kate@contoso.com"  # what str.lower() would have merged
    assert canonical(f"{KELVIN_K}ate@contoso.com") != canonical("kate@contoso.com")
    assert canonical(" Kate@Contoso.COM\n") == "kate@contoso.com"


def test_a_lookalike_subject_never_selects_the_real_persons_records():
    lookalike = Matcher(Subject(user_principal_name=f"{KELVIN_K}ate@contoso.com"), FIELDS)
    assert lookalike.reason(KATES_MODEL) is None
    # and the other way round: a record written with the lookalike is not the real Kate's
    kate = Matcher(Subject(user_principal_name="KATE@contoso.com"), FIELDS)
    assert kate.reason(KATES_MODEL) == "createdBy.upn"
    assert kate.reason({"createdBy": {"upn": f"{KELVIN_K}ate@contoso.com"}}) is None


@pytest.mark.parametrize(
    "upn",
    [
        f"{KELVIN_K}ate@contoso.com",  # Kelvin sign
        "k\u0430te@contoso.com",  # Cyrillic a
        "kate\u200b@contoso.com",  # zero-width space
        "\u202ekate@contoso.com",  # right-to-left override
        "kate@contoso\u3002com",  # ideographic full stop
        "kate@@contoso.com",
        "kate@contoso.com/x",
    ],
)
def test_intake_refuses_identifiers_outside_what_entra_allows(upn):
    with pytest.raises(ValidationError):
        SubjectIn.model_validate({"userPrincipalName": upn}, strict=True)
    with pytest.raises(ValidationError):
        SubjectIn.model_validate({"email": upn}, strict=True)


def test_ordinary_and_guest_upns_are_accepted():
    for upn in (
        "kate@contoso.com",
        "o'brien.k@contoso.co.uk",
        "kate_fabrikam.com#EXT#@contoso.onmicrosoft.com",
    ):
        assert SubjectIn.model_validate({"userPrincipalName": upn}, strict=True).userPrincipalName == upn


def test_ids_with_a_trailing_newline_are_refused_everywhere():
    arm = (
        "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
        "/providers/Microsoft.MachineLearningServices/workspaces/ws"
    )
    body = {"type": "export", "subject": {"objectId": "00000000-0000-0000-0000-000000000002"}}
    assert SubmitIn.model_validate({**body, "scope": {"workspaces": [arm]}}, strict=True)
    with pytest.raises(ValidationError):
        SubmitIn.model_validate({**body, "scope": {"workspaces": [arm + "\n"]}}, strict=True)
    with pytest.raises(BadEventError, match="userPrincipalName is not an address"):
        parse(json.dumps({"userPrincipalName": f"{KELVIN_K}ate@contoso.com", "eventId": "e2"}).encode())


def test_a_principal_is_its_recorded_id_in_any_letter_case():
    officer = Principal("A11CE5A1-7C3E-4D2B-9F10-1A2B3C4D5E01", "officer", "entra")
    assert officer.is_recorded_as("a11ce5a1-7c3e-4d2b-9f10-1a2b3c4d5e01")
    assert not officer.is_recorded_as("a11ce5a1-7c3e-4d2b-9f10-1a2b3c4d5e02")
    assert not officer.is_recorded_as(None)
