"""What the demo and large tenants hold of v2 (ARM) resources (built with v2_fixture.V2Builder).

Demo (fixture.demo_tenant; alice is the subject), besides her v1 objects:
- mlw-research-01: her jobs of every type (the pipeline `r1-pipeline-churn` has two child jobs; `r1-train-old` is
  archived; `r1-spark-features` names only her display name, a gap no rule closes), models, data, environments,
  components and code with versions (her `fraud-model` version 2 sits in bob's container and bob's deployment
  uses it), online endpoints (`churn-ep` with her two deployments; `shared-ep`, hers, carries bob's deployment)
  and a batch endpoint, schedules (one disabled), a connection; bob's, carol's, asmith's (her namesake) and the
  automation application's objects in between;
- mlw-research-02 and mlw-analytics: a few jobs and models of alice, bob, erin and asmith;
- mlw-prod-01: her online endpoint `prod-churn` serving the application's deployment (kept in an erasure), and the
  compute instance ci-p1-03 the application made and assigned to her;
- with `foundry=True`, a hub (kind Hub) and a project (kind Project) holding her jobs, model and connection.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from devtools.amlsim import v2
from devtools.amlsim.ids import guid
from devtools.amlsim.state import JSON, Principal, Record, Tenant, WorkspaceData
from devtools.amlsim.v2_fixture import JOB_TYPES, Owner, V2Builder

RunBody = Callable[..., JSON]  # fixture.run_body
ExperimentBody = Callable[..., JSON]  # fixture.experiment_body


def populate_demo(tenant: Tenant, created_by: str = "upn") -> None:
    """Add the demo's v2 resources to the demo tenant's workspaces (see the module docstring)."""
    p = tenant.principals
    people: dict[str, Owner] = {key: (principal, "upn") for key, principal in p.items()}
    people["automation"] = (p["automation"], "app")
    for ws in tenant.workspaces.values():
        b = V2Builder(tenant, ws, 20000 + len(ws.name) * 100, created_by)
        {
            "mlw-research-01": _research01,
            "mlw-research-02": _research02,
            "mlw-prod-01": _production,
            "mlw-analytics": _analytics,
        }.get(ws.name, _foundry)(b, p, people)


def _research01(b: V2Builder, p: dict[str, Principal], o: dict[str, Owner]) -> None:
    alice, bob, carol, svc = o["alice"], o["bob"], o["carol"], o["automation"]
    alice_mail, alice_case, alice_name = (p["alice"], "mail"), (p["alice"], "case"), (p["alice"], "name")
    code = b.container("codes", "7d3f2c1a-churn-src", alice)
    code_v1 = b.version("codes", "7d3f2c1a-churn-src", "1", alice)
    b.container("environments", "churn-env", alice)
    env = b.version("environments", "churn-env", "1", alice)
    b.job("r1-train-churn", alice, "Command", mlflow=True, environment=env, code=code_v1, experiment="churn")
    b.job("r1-train-fraud", bob, "Command", mlflow=True, experiment="fraud")
    b.job("r1-pipeline-churn", alice, "Pipeline", children=("prep", "train"), experiment="churn")
    b.job("r1-sweep-churn", alice_mail, "Sweep", experiment="churn")
    b.job("r1-eval-nlp", (p["carol"], "mail"), "Command", experiment="nlp")
    b.job("r1-automl-churn", alice_case, "AutoML", experiment="churn")
    b.job("r1-nightly-retrain", svc, "Command", experiment="retrain")
    b.job("r1-pipeline-fraud", bob, "Pipeline", children=("score",), experiment="fraud")
    b.job("r1-spark-features", alice_name, "Spark", experiment="features")
    b.job("r1-eval-ranker", o["asmith"], "Command", experiment="ranker")
    b.job("r1-train-old", alice, "Command", archived=True, experiment="churn")
    b.container("models", "churn-model", alice, latest="3")
    churn_1 = b.version("models", "churn-model", "1", alice, jobName="r1-train-churn")
    b.version("models", "churn-model", "2", alice, archived=True)
    churn_3 = b.version("models", "churn-model", "3", alice_case)
    b.container("models", "fraud-model", bob, latest="2")
    fraud_1 = b.version("models", "fraud-model", "1", bob, jobName="r1-train-fraud")
    fraud_2 = b.version("models", "fraud-model", "2", alice)  # hers, in bob's container, used by bob
    b.container("models", "baseline-model", svc)
    b.version("models", "baseline-model", "1", svc)
    b.container("data", "churn-features", alice_mail, latest="2")
    b.version("data", "churn-features", "1", alice_mail)
    b.version("data", "churn-features", "2", alice_mail)
    b.container("data", "fraud-rules", bob)
    b.version("data", "fraud-rules", "1", bob)
    b.container("environments", "base-env", svc)
    b.version("environments", "base-env", "1", svc)
    b.container("components", "prep-step", alice)
    b.version("components", "prep-step", "1", alice)
    b.container("components", "train-step", carol, latest="2")
    b.version("components", "train-step", "1", carol)
    b.version("components", "train-step", "2", alice)
    b.container("codes", "5b9e0d44-fraud-src", bob)
    b.version("codes", "5b9e0d44-fraud-src", "1", bob)
    b.endpoint("onlineEndpoints", "churn-ep", alice)
    b.deployment("onlineEndpoints", "churn-ep", "blue", alice, churn_1, environment=env, code=code)
    b.deployment("onlineEndpoints", "churn-ep", "green", alice, churn_3)
    b.endpoint("onlineEndpoints", "fraud-ep", bob)
    b.deployment("onlineEndpoints", "fraud-ep", "blue", bob, fraud_2)
    b.endpoint("onlineEndpoints", "shared-ep", alice)
    b.deployment("onlineEndpoints", "shared-ep", "main", bob, fraud_1)
    b.endpoint("batchEndpoints", "churn-batch", alice)
    b.deployment("batchEndpoints", "churn-batch", "default", alice, churn_1)
    b.endpoint("batchEndpoints", "scoring-batch", svc)
    b.deployment(
        "batchEndpoints", "scoring-batch", "nightly", svc, f"{b.arm}/models/baseline-model/versions/1"
    )
    b.schedule("nightly-churn", alice)
    b.schedule("weekly-churn-report", alice_mail, enabled=False)
    b.schedule("nightly-retrain", svc)
    b.schedule("fraud-refresh", bob)
    b.connection("alice-github", alice, "Git", "https://github.com/contoso/churn")
    b.connection("team-openai", bob, "AzureOpenAI", "https://contoso-openai.openai.azure.com/")
    b.connection("workspace-acr", svc, "ContainerRegistry", "crcontoso.azurecr.io")
    b.datastore_style("ds_r1_file_sas_05", "name")  # hers, but systemData names only her display name


def _research02(b: V2Builder, p: dict[str, Principal], o: dict[str, Owner]) -> None:
    b.job("r2-train-churn", o["alice"], "Command", experiment="churn")
    b.job("r2-pipeline-fraud", o["bob"], "Pipeline", children=("step",), experiment="fraud")
    b.job("r2-eval-churn", (p["erin"], "mail"), "Command", experiment="churn")
    b.container("models", "r2-churn", (p["alice"], "mail"))
    b.version("models", "r2-churn", "1", (p["alice"], "mail"), jobName="r2-train-churn")
    b.schedule("r2-weekly", o["bob"])


def _production(b: V2Builder, p: dict[str, Principal], o: dict[str, Owner]) -> None:
    svc = o["automation"]
    b.job("p1-batch-scoring", svc, "Command", experiment="scoring")
    b.job("p1-validate", o["alice"], "Command", experiment="validation")
    b.container("models", "prod-model", svc)
    model = b.version("models", "prod-model", "1", svc)
    b.endpoint("onlineEndpoints", "prod-churn", o["alice"])
    b.deployment("onlineEndpoints", "prod-churn", "blue", svc, model)  # the application's, on her endpoint
    b.assign("ci-p1-03", "alice")  # made by the application, assigned to her


def _analytics(b: V2Builder, p: dict[str, Principal], o: dict[str, Owner]) -> None:
    b.job("a1-explore", o["asmith"], "Command", mlflow=True, experiment="explore")
    b.job("a1-report", (p["erin"], "mail"), "Command", experiment="report")
    b.container("models", "ranker", o["asmith"])
    b.version("models", "ranker", "1", o["asmith"], jobName="a1-explore")


def _foundry(b: V2Builder, p: dict[str, Principal], o: dict[str, Owner]) -> None:
    """The AI Foundry pair: a hub (no assets) and a project holding alice's and bob's work."""
    if b.ws.name.startswith("hub-"):
        b.store.kind = "Hub"
        return
    b.store.kind = "Project"
    b.store.hub_id = f"{b.arm.rsplit('/', 1)[0]}/hub-{b.ws.name.removeprefix('proj-')}"
    b.job("proj-finetune-churn", o["alice"], "Command", experiment="finetune")
    b.job("proj-eval-churn", o["bob"], "Command", experiment="finetune")
    b.container("models", "churn-llm", o["alice"])
    b.version("models", "churn-llm", "1", o["alice"], jobName="proj-finetune-churn")
    b.connection("alice-openai", o["alice"], "AzureOpenAI", "https://contoso-ai.openai.azure.com/")


def populate_large(tenant: Tenant, per_workspace: int, seed: int = 1, created_by: str = "upn") -> None:
    """`per_workspace` jobs (every fifth a pipeline with two children), models with two versions each for a
    quarter of that, and an endpoint per 25 jobs, per workspace of the large tenant; owners drawn by `seed`."""
    rng = random.Random(seed)
    humans = [p for p in tenant.principals.values() if p.kind == "User"]
    svc = tenant.principals["automation"]
    styles = ("upn", "upn", "upn", "mail", "case")
    for w, ws in enumerate(tenant.workspaces.values()):
        b = V2Builder(tenant, ws, 500000 + w * 100000, created_by)

        def pick() -> Owner:
            roll = rng.random()
            return (svc, "app") if roll < 0.05 else (humans[rng.randrange(len(humans))], rng.choice(styles))

        for i in range(per_workspace):
            job_type = JOB_TYPES[i % len(JOB_TYPES)]
            children = ("prep", "train") if job_type == "Pipeline" else ()
            b.job(
                f"job-{w:02d}-{i:05d}", pick(), job_type, children=children, experiment=f"exp-{w:02d}-{i % 7}"
            )
        for i in range(per_workspace // 4):
            owner = pick()
            b.container("models", f"model-{w:02d}-{i:04d}", owner, latest="2")
            version = b.version("models", f"model-{w:02d}-{i:04d}", "1", owner)
            b.version("models", f"model-{w:02d}-{i:04d}", "2", pick())
            if i % 6 == 0:
                b.endpoint("onlineEndpoints", f"ep-{w:02d}-{i:04d}", owner)
                b.deployment("onlineEndpoints", f"ep-{w:02d}-{i:04d}", "blue", pick(), version)


def mirror_jobs_in_run_history(tenant: Tenant, experiment_body: ExperimentBody, run_body: RunBody) -> None:
    """Every v2 job also becomes a run in run history (the v1 endpoints), as on Azure, where a job IS a run: its
    name is the run id, its experimentName the experiment, its output the container dcid.<name> (REC). A child
    job's run names its pipeline as parentRunId. Off by default (fixture.demo_tenant(jobs_in_run_history=...)):
    the v1 exports then stay exactly as they were."""
    for ws in tenant.workspaces.values():
        store = v2.store(ws)
        store.jobs_in_run_history = True
        for family in ("jobs", "child_jobs"):
            for record in list(store.collections[family]):
                _mirror(tenant, ws, record, experiment_body, run_body)


def _mirror(
    tenant: Tenant, ws: WorkspaceData, record: Record, experiment_body: ExperimentBody, run_body: RunBody
) -> None:
    body, actor = record.body(), tenant.principals[record.owner or "automation"]
    name, experiment = body["name"], body["properties"]["experimentName"]
    if experiment not in ws.experiment_names:
        exp_id = guid(ws.arm_id, "experiment", experiment)
        ws.add_experiment(
            Record(exp_id, actor.key, experiment_body(exp_id, experiment, actor, "full", 0)), experiment
        )
    exp = ws.experiment_names[experiment]
    number = len(ws.runs[experiment]) + 1
    source = (
        ("azureml.runsource", "experiment"),
    )  # not a v1 pipeline run: no aether graph or template behind it
    run = run_body(
        name, exp.id, number, actor, "full", 0, body["properties"]["status"], source, "cpu-cluster"
    )
    if record.parent:
        run["parentRunId"] = run["rootRunId"] = record.parent.split("/", 1)[1]
    ws.add_run(experiment, Record(name, actor.key, run))
