"""The tenants: deterministic, with the promised people and edge cases; truth() from the owner annotation."""

from __future__ import annotations

import json
import math
import time

from devtools.amlsim import FAMILIES, Simulator, demo_tenant, large_tenant
from devtools.amlsim.fixture import DEMO_TENANT_ID
from devtools.amlsim.state import Tenant

from .conftest import ANALYTICS, PROD, R1, R2, ws_path


def dump(tenant: Tenant) -> str:
    return json.dumps(
        {
            ws.arm_id: {f: [(r.id, r.owner, r.body()) for r in ws.records(f)] for f in FAMILIES}
            for ws in tenant.workspaces.values()
        },
        sort_keys=True,
    )


def test_demo_tenant_is_deterministic_and_matches_the_test_tenant() -> None:
    assert dump(demo_tenant()) == dump(demo_tenant())
    tenant = demo_tenant()
    assert tenant.tenant_id == DEMO_TENANT_ID == "72f988bf-0000-4000-8000-00000000d5a1"
    assert len(tenant.subscriptions) == 2
    assert {ws.location for ws in tenant.workspaces.values()} == {"westeurope", "northeurope"}


def test_people_and_their_identities() -> None:
    people = demo_tenant().people
    assert sorted(people) == ["alice", "asmith", "bob", "carol", "dave", "erin"]
    assert people["alice"].email != people["alice"].upn
    assert people["carol"].email != people["carol"].upn
    assert people["asmith"].display_name == people["alice"].display_name
    assert people["asmith"].object_id != people["alice"].object_id
    assert people["dave"].upn_variant == "Dave@Contoso.COM"
    assert len({p.object_id for p in people.values()}) == 6


def test_alice_owns_every_family_in_at_least_two_workspaces_and_not_in_analytics(sim: Simulator) -> None:
    per_ws = sim.truth_by_workspace("alice")
    assert set(per_ws) == {ws_path(*R1), ws_path(*R2), ws_path(*PROD)}
    for family in FAMILIES:
        if family == "workspaces":
            continue
        holders = [ws for ws, fams in per_ws.items() if fams[family]]
        assert len(holders) >= 2, family
    assert per_ws[ws_path(*R1)]["workspaces"] == [ws_path(*R1)]
    assert ws_path(*ANALYTICS) in sim.truth_by_workspace("asmith")


def test_truth_uses_the_owner_annotation_not_created_by(sim: Simulator) -> None:
    truth = sim.truth("alice")
    assert set(truth) == set(FAMILIES)
    assert all(truth[f] == sorted(truth[f]) for f in FAMILIES)
    assert all(truth[f] for f in FAMILIES)
    for family, ids in truth.items():
        assert len(ids) == len(set(ids)), family
    state = sim.snapshot()
    records = {(f, r["id"]): r for ws in state["workspaces"] for f, rs in ws["families"].items() for r in rs}
    legacy = [
        key
        for key in records
        if key[0] == "runs"
        and records[key]["owner"] == "alice"
        and "upn" not in records[key]["body"]["createdBy"]
    ]
    assert legacy
    assert all(run_id in truth["runs"] for _, run_id in legacy)
    # metrics and artifacts belong to the run's creator
    run_ids = set(truth["runs"])
    for metric_id in truth["metrics"]:
        assert records[("metrics", metric_id)]["body"]["runId"] in run_ids
    namesake = sim.truth("asmith")
    for family in FAMILIES:
        assert not set(truth[family]) & set(namesake[family]), family
    assert sim.truth("nobody") == {f: [] for f in FAMILIES}


def test_snapshot_is_a_deep_json_copy(sim: Simulator) -> None:
    state = sim.snapshot()
    json.dumps(state)
    ws = state["workspaces"][0]
    ws["families"]["models"][0]["body"]["name"] = "changed"
    assert sim.snapshot()["workspaces"][0]["families"]["models"][0]["body"]["name"] != "changed"
    assert ws["families"]["workspaces"][0]["body"]["properties"]["discoveryUrl"].startswith(sim.base_url)
    assert sum(len(v) for w in state["workspaces"] for v in w["families"].values()) == sim.tenant.count()


def test_large_tenant_is_quick_deterministic_and_sized_for_twenty_thousand_calls() -> None:
    started = time.perf_counter()
    tenant = large_tenant()
    assert time.perf_counter() - started < 10
    assert len(tenant.workspaces) == 8
    assert {ws.location for ws in tenant.workspaces.values()} == {"westeurope", "northeurope"}
    assert len(tenant.people) == 50
    # the calls a full export of every workspace needs with page size 100
    page = 100
    calls = 1
    for ws in tenant.workspaces.values():
        calls += 1 + math.ceil(len(ws.computes) / page) + math.ceil(len(ws.experiments) / page)
        calls += sum(math.ceil(max(1, len(c)) / page) for c in ws.runs.values())
        calls += sum(math.ceil(max(1, len(c)) / page) for c in ws.metrics.values())
        calls += sum(math.ceil(max(1, len(c)) / page) for c in ws.artifacts.values())
        for family in ("tasks", "datastores", "models", "assets", "images", "services"):
            calls += math.ceil(len(ws.collection(family)) / page)
    assert 17_000 <= calls <= 25_000
    small = large_tenant(
        workspaces=2,
        experiments_per_workspace=3,
        runs_per_experiment=4,
        models_per_workspace=8,
        people=10,
        seed=7,
    )
    again = large_tenant(
        workspaces=2,
        experiments_per_workspace=3,
        runs_per_experiment=4,
        models_per_workspace=8,
        people=10,
        seed=7,
    )
    other = large_tenant(
        workspaces=2,
        experiments_per_workspace=3,
        runs_per_experiment=4,
        models_per_workspace=8,
        people=10,
        seed=8,
    )
    assert dump(small) == dump(again)
    assert dump(small) != dump(other)
    assert small.truth("alice") == again.truth("alice")


def test_findable_is_the_truth_the_contract_lets_a_product_find() -> None:
    tenant = demo_tenant()
    truth, findable, reachable = tenant.truth("alice"), tenant.findable("alice"), tenant.reachable("alice")
    assert all(set(findable[f]) == set(truth[f]) & set(reachable[f]) for f in FAMILIES)
    gap = {f: sorted(set(truth[f]) - set(findable[f])) for f in FAMILIES if set(truth[f]) - set(findable[f])}
    # ARM 2019-11-01 and datastores name nobody; clusters name nobody; a model names her display name only;
    # assets and images name no creator and some of hers are tied to no run or model of hers
    assert set(gap) == {"workspaces", "computes", "datastores", "models", "assets", "images"}
    assert gap["workspaces"] == [tenant.workspaces[next(iter(tenant.workspaces))].arm_id]
    assert gap["datastores"] == truth["datastores"]
    assert gap["models"] == ["anomaly-r1:2"]  # createdBy {userName: "Alice Smith"} only
    assert "anomaly-img-r1:2" in gap["images"]  # packages only that model
    # her runs that name no object id (UPN only) are still found, by the UPN
    r1 = tenant.find_workspace(*next(iter(tenant.workspaces)))
    assert r1 is not None
    upn_only = [
        r.id for r in r1.records("runs") if r.owner == "alice" and "userObjectId" not in r.body()["createdBy"]
    ]
    assert upn_only
    assert set(upn_only) <= set(findable["runs"])
    # reachable beyond her own: experiments with her runs, images packaging her models, shared data sources
    beyond = {f for f in FAMILIES if set(reachable[f]) - set(truth[f])}
    assert beyond == {"experiments", "assets", "images", "pipeline_datasources"}
    bobs_image = "fraud-img-r1:1"  # bob's image packaging her model churn-r1:2
    assert bobs_image in reachable["images"]
    assert bobs_image not in truth["images"]
    # the namesake's records are never reachable for alice (they share only containers: an experiment both
    # ran in)
    namesake = tenant.reachable("asmith")
    shared = {f for f in FAMILIES if set(reachable[f]) & set(namesake[f])}
    assert shared == {"experiments"}
    assert tenant.reachable("nobody") == {f: [] for f in FAMILIES}
