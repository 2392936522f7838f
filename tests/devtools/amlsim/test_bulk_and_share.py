"""The simulator's large-tenant knobs for benchmarks: a family of any size made on demand (bulk_tenant), and a
heavy user's share of a generated tenant (large_tenant(subject_share=...))."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import requests

from devtools.amlsim import Simulator, large_tenant
from devtools.amlsim.fixture import bulk_artifact_path, bulk_tenant
from devtools.amlsim.identity import TokenIssuer
from devtools.amlsim.state import GeneratedCollection


def test_a_generated_family_pages_through_the_api_without_being_stored(
    issuer: TokenIssuer, tls: tuple[Path, Path]
):
    tenant = bulk_tenant((2_500, 7))
    big, small = sorted(tenant.workspaces.values(), key=lambda w: w.name)
    ((run_id, artifacts),) = [(r, c) for r, c in big.artifacts.items() if isinstance(c, GeneratedCollection)]
    assert len(artifacts) == 2_500  # made on demand: nothing is stored per record
    token = issuer.mint("https://management.azure.com")["access_token"]
    session = requests.Session()
    session.trust_env = False
    with Simulator(tenant, issuer, cert=tls[0], key=tls[1], page_size=1000) as sim:
        url = sim.service_urls["experiments"].replace("{location}", big.location)
        url += f"/artifact/v1.0{big.arm_id}/artifacts/origins/ExperimentRun/containers/dcid.{run_id}"
        seen: list[str] = []
        while url:
            answer = session.get(
                url, headers={"Authorization": f"Bearer {token}"}, verify=str(tls[0]), timeout=10
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            seen += [item["path"] for item in body["value"]]
            url = body["nextLink"]
        assert seen == [bulk_artifact_path(i) for i in range(2_500)]
        truth = sim.truth("alice")["artifacts"]
    assert len(truth) == 2_500 + 7
    assert artifacts.get(f"ExperimentRun/dcid.{run_id}/{bulk_artifact_path(42)}").body()[
        "path"
    ] == bulk_artifact_path(42)
    assert artifacts.get(f"ExperimentRun/dcid.{run_id}/{bulk_artifact_path(2_500)}") is None
    assert artifacts.get("ExperimentRun/dcid.other/outputs/shards/part-00000001.parquet") is None
    with pytest.raises(TypeError, match="read-only"):
        artifacts.remove("anything")
    assert small.name == "mlw-bulk-01"


def test_a_subject_share_makes_a_heavy_user_and_zero_leaves_the_tenant_as_it_was():
    def owners(tenant) -> collections.Counter[str]:
        return collections.Counter(r.owner for ws in tenant.workspaces.values() for r in ws.records("runs"))

    params = {
        "workspaces": 2,
        "experiments_per_workspace": 5,
        "runs_per_experiment": 20,
        "models_per_workspace": 8,
    }
    plain = owners(large_tenant(**params))
    assert owners(large_tenant(**params, subject_share=0.0)) == plain
    heavy = owners(large_tenant(**params, subject_share=0.5))
    total = sum(heavy.values())
    assert 0.4 < heavy["alice"] / total < 0.6
    assert plain["alice"] / sum(plain.values()) < 0.1
    with pytest.raises(ValueError, match="subject_share"):
        large_tenant(workspaces=1, subject_share=1.5)
