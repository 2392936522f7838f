"""Four eyes with tokens: a workspace deletion is approved only by a signed-in person other than its submitter,
holding DSR.Approve; never by the submitter, an application, or a person without the role."""

from __future__ import annotations

import dataclasses
from typing import Any

from devtools.amlsim.fixture import demo_tenant
from tests.security.conftest import Api
from tests.security.idp import AUTOMATION, OFFICER, OFFICER_2, READER

WS_NAME = "mlw-research-02"


def test_only_another_person_with_the_approve_role_approves_a_workspace_deletion(
    api: Api, secure_stack: Any
) -> None:
    sim = secure_stack.simulator
    sim.set_lro(polls_in_progress=0, outcome="Succeeded", retry_after=1, initial_status=202)
    arm_id = next(ws.arm_id for ws in sim.tenant.workspaces.values() if ws.name == WS_NAME)
    body = {"type": "erasure", "scope": {"workspaces": [arm_id]}, "deleteWorkspace": {"confirm": WS_NAME}}
    try:
        submitted = api.call("POST", "v1/requests", OFFICER, body=body)
        assert submitted.status_code == 202, submitted.text
        view = submitted.json()
        assert view["status"] == "awaiting_approval"
        assert view["submittedBy"] == {"id": OFFICER.oid, "name": OFFICER.upn, "source": "entra"}
        path = f"v1/requests/{view['id']}:approve"

        own = api.call("POST", path, OFFICER)
        assert own.status_code == 403
        assert "submitter" in own.json()["detail"]
        # the same person with the object id in upper case (GUIDs compare case-insensitively) is still the submitter
        shouting = api.call("POST", path, dataclasses.replace(OFFICER, oid=OFFICER.oid.upper()))
        assert shouting.status_code == 403
        assert "submitter" in shouting.json()["detail"]
        app = api.call("POST", path, AUTOMATION)
        assert app.status_code == 403
        assert "signed-in person" in app.json()["detail"]
        reader = api.call("POST", path, READER)
        assert reader.status_code == 403
        assert "DSR.Approve" in reader.json()["detail"]
        assert api.call("GET", f"v1/requests/{view['id']}", READER).json()["status"] == "awaiting_approval"

        approved = api.call("POST", path, OFFICER_2, body={"reason": "ticket verified"})
        assert approved.status_code == 200, approved.text
        decision = approved.json()["decision"]
        assert (decision["action"], decision["by"]["id"], decision["by"]["source"]) == (
            "approved",
            OFFICER_2.oid,
            "entra",
        )
        done = api.wait(view["id"])
        assert done["status"] == "completed", done["errors"]
    finally:
        sim.reset(demo_tenant())
