"""Model management: E15-E22 and the deletions D2-D5 (200 then 204, 412 DeletionRequired while something depends on it)."""

from __future__ import annotations

import pytest

from devtools.amlsim import Simulator

from .conftest import ARM_VERSION, R1, Client, ws_path

MMS = "/api" + ws_path(*R1)


def url(client: Client, path: str) -> str:
    return client.url("modelmanagement", MMS + path)


@pytest.mark.parametrize(
    ("kind", "count"), [("models", 12), ("assets", 11), ("images", 11), ("services", 11)]
)
def test_lists_page_with_skip_token_to_the_end(client: Client, sim: Simulator, kind: str, count: int) -> None:
    items, pages = client.walk(url(client, f"/{kind}"), ARM_VERSION)
    assert len(items) == count
    assert len({i["id"] for i in items}) == count
    assert [len(p["value"]) for p in pages] == [5, 5, count - 10]
    assert all(
        "$skipToken=" in p["nextLink"] and "api-version=2019-11-01" in p["nextLink"] for p in pages[:2]
    )
    assert "nextLink" not in pages[-1]
    # alice's records interleave with others' on several pages (owner annotation: assets and images name
    # nobody in model management's contract, so the annotation says whose they are)
    mine = set(sim.truth("alice")[kind])
    pages_with_alice = [p for p in pages if any(i["id"] in mine for i in p["value"])]
    assert len(pages_with_alice) >= 2
    if kind in ("assets", "images"):
        assert all("createdBy" not in i for i in items)
    else:
        assert all("upn" not in i["createdBy"] for i in items)  # User has no upn
    _, by_count = client.walk(url(client, f"/{kind}"), {**ARM_VERSION, "count": "100"})
    assert len(by_count) == 1


def test_e16_e18_e20_e22_one_object_by_id(client: Client) -> None:
    model = client.get(url(client, "/models/churn-r1:1"), ARM_VERSION)
    assert model.status_code == 200
    body = model.json()
    assert (body["id"], body["name"], body["version"]) == ("churn-r1:1", "churn-r1", 1)
    assert body["createdBy"]["userObjectId"] == client.sim.people["alice"]["objectId"]
    assert "upn" not in body["createdBy"]  # modelManagement.json User: no upn
    encoded = client.get(url(client, "/models/churn-r1%3A1"), ARM_VERSION)
    assert encoded.json() == body
    image = client.get(url(client, "/images/churn-img-r1:2"), ARM_VERSION).json()
    assert image["modelIds"] == ["churn-r1:3", "fraud-r1:1"]
    service = client.get(url(client, "/services/churn-svc-r1"), ARM_VERSION).json()
    assert service["imageId"] == "churn-img-r1:1"
    assert service["computeType"] == "ACI"
    assets = client.get(url(client, "/assets"), ARM_VERSION).json()["value"]
    asset = client.get(url(client, f"/assets/{assets[0]['id']}"), ARM_VERSION)
    assert asset.status_code == 200
    assert asset.json()["name"] == "churn-features"


def test_not_found_and_no_api_version_needed(client: Client) -> None:
    for kind, code in (
        ("models", "ModelNotFound"),
        ("assets", "AssetNotFound"),
        ("images", "ImageNotFound"),
        ("services", "ServiceNotFound"),
    ):
        response = client.get(url(client, f"/{kind}/nope"), ARM_VERSION)
        assert response.status_code == 404
        # modelManagement.json ModelErrorResponse: top-level {code, statusCode, message, details}
        assert response.json() == {
            "code": code,
            "statusCode": 404,
            "message": f"{code[: -len('NotFound')]} 'nope' was not found.",
            "details": [],
        }
    # modelManagement.json defines no api-version and azureml-core sends none (ml_models_operations.py):
    # model management answers without one
    without = client.get(url(client, "/models"))
    assert without.status_code == 200
    assert without.json()["value"] == client.get(url(client, "/models"), ARM_VERSION).json()["value"]
    assert client.delete(url(client, "/models/nope")).status_code == 204


def test_delete_answers_200_then_204(client: Client, sim: Simulator) -> None:
    assert "nlp-svc-r1" in sim.truth("carol")["services"]
    sim.set_service_lro(initial_status=200)
    try:
        first = client.delete(url(client, "/services/nlp-svc-r1"), ARM_VERSION)
    finally:
        sim.set_service_lro()
    assert first.status_code == 200
    assert client.get(url(client, "/services/nlp-svc-r1"), ARM_VERSION).status_code == 404
    again = client.delete(url(client, "/services/nlp-svc-r1"), ARM_VERSION)
    assert again.status_code == 204
    assert again.content == b""
    assert "nlp-svc-r1" not in sim.truth("carol")["services"]
    assets = client.get(url(client, "/assets"), ARM_VERSION).json()["value"]
    assert client.delete(url(client, f"/assets/{assets[1]['id']}"), ARM_VERSION).status_code == 200
    assert client.delete(url(client, f"/assets/{assets[1]['id']}"), ARM_VERSION).status_code == 204


def test_model_used_by_image_and_image_used_by_service_conflict_until_dependents_go(
    client: Client, sim: Simulator
) -> None:
    model = client.delete(url(client, "/models/churn-r1:1"), ARM_VERSION)
    assert model.status_code == 412
    # azureml-core reads 412 "DeletionRequired" (core/model.py Model.delete)
    assert (model.json()["code"], model.json()["statusCode"]) == ("DeletionRequired", 412)
    assert "churn-img-r1:1" in model.json()["message"]
    assert [d["target"] for d in model.json()["details"]] == ["churn-img-r1:1"]
    image = client.delete(url(client, "/images/churn-img-r1:1"), ARM_VERSION)
    assert image.status_code == 412
    assert [d["target"] for d in image.json()["details"]] == ["churn-svc-r1"]
    assert client.get(url(client, "/models/churn-r1:1"), ARM_VERSION).status_code == 200  # nothing went
    sim.set_service_lro(initial_status=200)
    try:
        assert client.delete(url(client, "/services/churn-svc-r1"), ARM_VERSION).status_code == 200
    finally:
        sim.set_service_lro()
    assert client.delete(url(client, "/images/churn-img-r1:1"), ARM_VERSION).status_code == 200
    assert client.delete(url(client, "/models/churn-r1:1"), ARM_VERSION).status_code == 200
    assert client.delete(url(client, "/models/churn-r1:1"), ARM_VERSION).status_code == 204


def test_alices_model_used_by_bobs_image_cannot_go(client: Client, sim: Simulator) -> None:
    assert "churn-r1:2" in sim.truth("alice")["models"]
    assert "fraud-img-r1:1" in sim.truth("bob")["images"]
    response = client.delete(url(client, "/models/churn-r1:2"), ARM_VERSION)
    assert response.status_code == 412
    assert [d["target"] for d in response.json()["details"]] == ["fraud-img-r1:1"]
    # and carol's service runs on alice's image churn-img-r1:2
    image = client.delete(url(client, "/images/churn-img-r1:2"), ARM_VERSION)
    assert image.status_code == 412
    assert [d["target"] for d in image.json()["details"]] == ["churn-svc-r1-b"]


def test_service_delete_answers_202_and_the_operation_runs_before_the_service_goes(
    client: Client, sim: Simulator
) -> None:
    # Given the default: a service DELETE is a long-running operation (Services_Delete 202, Operations_Get)
    sim.set_service_lro(polls_in_progress=2, retry_after=3)
    assert "nlp-svc-r1" in sim.truth("carol")["services"]
    first = client.delete(url(client, "/services/nlp-svc-r1"), ARM_VERSION)
    assert first.status_code == 202
    assert first.content == b""
    location = first.headers["Operation-Location"]
    assert first.headers["Retry-After"] == "3"
    prefix = client.url("modelmanagement", MMS + "/operations/")
    assert location.startswith(prefix)
    op_id = location[len(prefix) :]
    # While it runs the service is still there, and a second DELETE names the same operation
    assert client.get(url(client, "/services/nlp-svc-r1"), ARM_VERSION).status_code == 200
    again = client.delete(url(client, "/services/nlp-svc-r1"), ARM_VERSION)
    assert (again.status_code, again.headers["Operation-Location"]) == (202, location)
    states = []
    for _ in range(3):
        poll = client.get(location)  # Operations_Get takes no api-version
        assert poll.status_code == 200
        body = poll.json()
        assert (body["id"], body["operationType"]) == (op_id, "Delete")
        states.append(body["state"])
        if body["state"] != "Succeeded":
            assert poll.headers["Retry-After"] == "3"
            assert client.get(url(client, "/services/nlp-svc-r1"), ARM_VERSION).status_code == 200
    assert states == ["NotStarted", "Running", "Succeeded"]
    assert "endTime" in body
    assert "error" not in body
    # Then it is gone: 404 in model management's shape, and a DELETE now finds nothing (204)
    gone = client.get(url(client, "/services/nlp-svc-r1"), ARM_VERSION)
    assert (gone.status_code, gone.json()["code"]) == (404, "ServiceNotFound")
    assert client.delete(url(client, "/services/nlp-svc-r1"), ARM_VERSION).status_code == 204
    assert "nlp-svc-r1" not in sim.truth("carol")["services"]
    missing = client.get(client.url("modelmanagement", MMS + "/operations/nope"))
    assert (missing.status_code, missing.json()["code"], missing.json()["statusCode"]) == (
        404,
        "OperationNotFound",
        404,
    )


def test_a_failed_service_delete_operation_keeps_the_service_and_says_why(
    client: Client, sim: Simulator
) -> None:
    sim.set_service_lro(polls_in_progress=0, outcome="Failed", retry_after=None)
    try:
        first = client.delete(url(client, "/services/churn-svc-r1"), ARM_VERSION)
    finally:
        sim.set_service_lro()
    assert first.status_code == 202
    assert "Retry-After" not in first.headers
    body = client.get(first.headers["Operation-Location"]).json()
    assert body["state"] == "Failed"
    assert (body["error"]["code"], body["error"]["statusCode"]) == ("ServiceDeletionFailed", 500)
    assert client.get(url(client, "/services/churn-svc-r1"), ARM_VERSION).status_code == 200
