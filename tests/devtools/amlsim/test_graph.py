"""The simulated Microsoft Graph: users by id or UPN, $select, $filter on mail/otherMails, deleted items, errors,
and bearer checks (only Graph-audience tokens holding a user-read app role)."""

from __future__ import annotations

import dataclasses

import pytest

from devtools.amlsim import Simulator
from devtools.amlsim.identity import TokenIssuer

from .conftest import ARM_VERSION, R1, Client, ws_path

SELECT = {"$select": "id,userPrincipalName,mail,otherMails"}
ADVANCED = {"ConsistencyLevel": "eventual"}


@pytest.fixture
def graph_token(issuer: TokenIssuer) -> str:
    return str(issuer.mint("https://graph.microsoft.com/.default")["access_token"])


def g(sim: Simulator, path: str) -> str:
    return f"{sim.graph_url}/v1.0{path}"


def test_user_by_upn_and_by_object_id_with_select(client: Client, sim: Simulator, graph_token: str) -> None:
    alice = sim.tenant.people["alice"]
    by_upn = client.get(g(sim, f"/users/{alice.upn}"), SELECT, token=graph_token)
    by_id = client.get(g(sim, f"/users/{alice.object_id}"), SELECT, token=graph_token)
    assert by_upn.status_code == by_id.status_code == 200, by_upn.text
    assert (
        by_upn.json()
        == by_id.json()
        == {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName,mail,otherMails)/$entity",
            "id": "a11ce5a1-7c3e-4d2b-9f10-1a2b3c4d5e01",
            "userPrincipalName": "alice@contoso.com",
            "mail": "alice.smith@contoso.com",
            "otherMails": ["alice.smith@outlook.com"],
        }
    )
    # Without $select: Graph's default property set (no otherMails)
    plain = client.get(g(sim, f"/users/{alice.upn.upper()}"), token=graph_token).json()
    assert plain["@odata.context"].endswith("#users/$entity")
    assert "otherMails" not in plain
    assert plain["displayName"] == "Alice Smith"


def test_an_email_that_is_not_a_upn_is_404_then_found_by_filter(
    client: Client, sim: Simulator, graph_token: str
) -> None:
    mail = sim.tenant.people["alice"].email
    missing = client.get(g(sim, f"/users/{mail}"), SELECT, token=graph_token)
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["code"] == "Request_ResourceNotFound"
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    params = {
        **SELECT,
        "$filter": f"mail eq '{mail.upper()}' or otherMails/any(x:x eq '{mail}')",
        "$count": "true",
    }
    found = client.get(g(sim, "/users"), params, token=graph_token, headers=ADVANCED).json()
    assert [u["id"] for u in found["value"]] == [sim.tenant.people["alice"].object_id]
    assert found["@odata.count"] == 1
    # otherMails alone finds the guest whose other address is that one
    other = client.get(
        g(sim, "/users"), {"$filter": "otherMails/any(a:a eq 'alice.smith@fabrikam.com')"}, token=graph_token
    ).json()
    assert [u["userPrincipalName"] for u in other["value"]] == [sim.tenant.people["asmith"].upn]


def test_advanced_operator_needs_consistency_level(client: Client, sim: Simulator, graph_token: str) -> None:
    params = {"$filter": "endsWith(mail,'@contoso.com')", "$count": "true"}
    refused = client.get(g(sim, "/users"), params, token=graph_token)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "Request_UnsupportedQuery"
    ok = client.get(g(sim, "/users"), params, token=graph_token, headers=ADVANCED).json()
    assert ok["@odata.count"] == 5  # alice, bob, carol, dave, erin (the guest's mail is at fabrikam)


def test_soft_deleted_user_is_only_in_deleted_items(client: Client, sim: Simulator, graph_token: str) -> None:
    erin = sim.tenant.people["erin"]
    sim.graph.soft_delete("erin")
    assert client.get(g(sim, f"/users/{erin.object_id}"), token=graph_token).status_code == 404
    one = client.get(g(sim, f"/directory/deletedItems/{erin.object_id}"), SELECT, token=graph_token)
    assert one.status_code == 200
    body = one.json()
    assert body["@odata.type"] == "#microsoft.graph.user"
    assert body["userPrincipalName"] == erin.object_id.replace("-", "") + erin.upn  # Entra frees the UPN
    assert body["mail"] == erin.email
    listed = client.get(
        g(sim, "/directory/deletedItems/microsoft.graph.user"),
        {"$filter": f"endsWith(userPrincipalName,'{erin.upn}')", "$count": "true"},
        token=graph_token,
        headers=ADVANCED,
    ).json()
    assert [u["id"] for u in listed["value"]] == [erin.object_id]
    assert "deletedDateTime" in listed["value"][0]
    untyped = client.get(g(sim, "/directory/deletedItems"), token=graph_token)
    assert untyped.status_code == 400
    sim.graph.restore("erin")
    assert (
        client.get(g(sim, f"/directory/deletedItems/{erin.object_id}"), token=graph_token).status_code == 404
    )
    assert client.get(g(sim, f"/users/{erin.object_id}"), token=graph_token).status_code == 200


def test_graph_accepts_only_graph_tokens_and_arm_only_arm_tokens(
    client: Client, sim: Simulator, graph_token: str
) -> None:
    alice = sim.tenant.people["alice"]
    arm_token_on_graph = client.get(g(sim, f"/users/{alice.upn}"))  # the client's default token is ARM's
    assert arm_token_on_graph.status_code == 401
    assert arm_token_on_graph.json()["error"]["code"] == "InvalidAuthenticationToken"
    assert client.get(g(sim, f"/users/{alice.upn}"), token=None).status_code == 401
    graph_token_on_arm = client.get(client.url("arm", ws_path(*R1)), ARM_VERSION, token=graph_token)
    assert graph_token_on_arm.status_code == 401
    assert client.get(client.url("arm", ws_path(*R1)), ARM_VERSION).status_code == 200


def test_graph_token_without_the_app_role_is_403(client: Client, sim: Simulator, issuer: TokenIssuer) -> None:
    bare = dataclasses.replace(issuer, graph_roles=())
    token = bare.mint("https://graph.microsoft.com/.default")["access_token"]
    denied = client.get(g(sim, f"/users/{sim.tenant.people['alice'].upn}"), token=token)
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "Authorization_RequestDenied"


def test_control_api_soft_deletes_and_restores(client: Client, sim: Simulator) -> None:
    url = f"{sim.base_url}/_sim/graph"
    deleted = client.session.post(url, json={"softDelete": "bob"}, verify=client.cert, timeout=10)
    assert deleted.json() == {"deleted": ["bob"]}
    assert "bob" in sim.graph.deleted
    restored = client.session.post(url, json={"restore": "bob"}, verify=client.cert, timeout=10)
    assert restored.json() == {"deleted": []}
    unknown = client.session.post(url, json={"softDelete": "nobody"}, verify=client.cert, timeout=10)
    assert unknown.status_code == 400
