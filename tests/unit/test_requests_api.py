"""Strict validation of what a caller may submit."""

import pytest
from pydantic import ValidationError

from shared.lifecycle.submission import SubmitIn

SUB = "3f2a1b4c-0000-4000-8000-0000000000a1"
WS = f"/subscriptions/{SUB}/resourceGroups/rg-research/providers/Microsoft.MachineLearningServices/workspaces/ws-vision"


def body(**over):
    base = {
        "type": "export",
        "subject": {
            "objectId": "0a1b2c3d-0000-4000-8000-000000000001",
            "userPrincipalName": "alice@contoso.example",
        },
        "scope": {
            "workspaces": [WS],
            "resourceGroups": [f"/subscriptions/{SUB}/resourceGroups/rg-prod"],
            "subscriptions": [SUB],
        },
    }
    base.update(over)
    return base


def test_a_complete_request_validates():
    model = SubmitIn.model_validate(body(reference="TICKET-42"))
    assert model.subject.userPrincipalName == "alice@contoso.example"
    assert model.scope.workspaces == [WS]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"type": "delete-everything"}, "type"),
        ({"unknown": 1}, "unknown"),
        ({"subject": {"objectId": "not-a-guid"}}, "subject.objectId"),
        ({"subject": {}}, "subject"),
        ({"subject": {"objectId": "0a1b2c3d-0000-4000-8000-000000000001", "name": "x"}}, "subject.name"),
        ({"subject": {"userPrincipalName": "alice@contoso.example/../x"}}, "subject.userPrincipalName"),
        ({"scope": {}}, "scope"),
        ({"scope": {"workspaces": ["/subscriptions/x/resourceGroups/rg"]}}, "scope.workspaces"),
        ({"scope": {"workspaces": [WS + "/../../other"]}}, "scope.workspaces"),
        ({"scope": {"workspaces": [WS.replace("ws-vision", "ws?x=1")]}}, "scope.workspaces"),
        ({"scope": {"resourceGroups": [f"/subscriptions/{SUB}/resourceGroups/a/b"]}}, "scope.resourceGroups"),
        ({"scope": {"subscriptions": ["abc"]}}, "scope.subscriptions.0"),
        ({"subject": None}, ""),
        ({"reference": "x" * 201}, "reference"),
    ],
)
def test_bad_input_is_refused_naming_the_field(override, field):
    with pytest.raises(ValidationError) as err:
        SubmitIn.model_validate(body(**override))
    locations = {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}
    assert any(loc.startswith(field) for loc in locations), locations


def test_whole_workspace_export_names_workspaces_and_no_subject():
    ok = SubmitIn.model_validate({"type": "export", "wholeWorkspace": True, "scope": {"workspaces": [WS]}})
    assert ok.subject is None
    with pytest.raises(ValidationError, match="names its workspaces explicitly"):
        SubmitIn.model_validate({"type": "export", "wholeWorkspace": True, "scope": {"subscriptions": [SUB]}})
    with pytest.raises(ValidationError, match="names no subject"):
        SubmitIn.model_validate(body(wholeWorkspace=True, scope={"workspaces": [WS]}))
