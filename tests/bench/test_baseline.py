"""The sequential client of the benchmark (devtools/bench/baseline.py) against the simulator: it must find
exactly what the subject created, so that part 1 compares like with like; and the cost model's formula must
count the calls it makes. Nothing here is timed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.amlsim import Simulator, demo_tenant, large_tenant
from devtools.amlsim.identity import TokenIssuer
from devtools.bench.baseline import SequentialExporter
from devtools.bench.costmodel import predict_calls
from devtools.bench.harness import compare_ids
from shared.core.matching import Subject


def exporter(sim: Simulator, issuer: TokenIssuer, tls: tuple[Path, Path], person: str) -> SequentialExporter:
    p = sim.tenant.people[person]
    token = issuer.mint("https://management.azure.com")["access_token"]
    return SequentialExporter(
        sim.service_urls, token, Subject(p.object_id, p.upn, p.email), verify=str(tls[0])
    )


@pytest.fixture
def demo(issuer: TokenIssuer, tls: tuple[Path, Path]) -> Iterator[Simulator]:
    with Simulator(demo_tenant(), issuer, cert=tls[0], key=tls[1], page_size=5) as sim:
        yield sim


def subscriptions(sim: Simulator) -> list[str]:
    return sorted({ws.subscription_id for ws in sim.tenant.workspaces.values()})


def test_the_sequential_client_finds_exactly_what_the_contract_attributes_to_the_subject(demo, issuer, tls):
    client = exporter(demo, issuer, tls, "alice")
    result = client.run(subscriptions(demo))
    # what the product finds too (sim.reachable): identity fields first, then the contract's rules
    truth = {family: set(ids) for family, ids in demo.reachable("alice").items() if ids}
    assert compare_ids(result.ids, truth) == {}
    assert result.calls == len([e for e in demo.log if not e["path"].startswith("/_sim")])
    assert set(result.statuses) <= {200, 404}


def test_it_calls_one_at_a_time_and_never_asks_for_secrets(demo, issuer, tls):
    exporter(demo, issuer, tls, "dave").run(subscriptions(demo))
    log = demo.log
    assert all(e["query"].get("includeSecret") == "false" for e in log if "/datastores" in e["path"])
    # one keep-alive connection: the calls went one after another
    assert demo.connections_accepted == 1


def test_the_cost_model_counts_the_calls_of_an_export(issuer, tls):
    tenant = large_tenant(
        workspaces=2,
        experiments_per_workspace=3,
        runs_per_experiment=7,
        models_per_workspace=8,
        subject_share=0.3,
    )
    with Simulator(tenant, issuer, cert=tls[0], key=tls[1], page_size=4) as sim:
        result = exporter(sim, issuer, tls, "alice").run(subscriptions(sim))
        predicted = predict_calls(tenant, "alice", page=4)
    # the product also reads each workspace's discovery document, which the published procedure does not, and
    # lists the subject's runs and models again in the tasks that tie notification tasks, assets and images to
    # her by rule (the sequential client has them at hand); and it reads the v2 (ARM) families, which the published
    # procedure does not know
    assert predicted["rules"] > 0
    assert predicted["v2"] >= 11 * len(tenant.workspaces)  # one call per v2 list at least, even when empty
    assert result.calls == predicted["total"] - len(tenant.workspaces) - predicted["rules"] - predicted["v2"]
