"""The v2 (ARM) resources of the simulated tenants: body builders and what each workspace holds.

Bodies follow the 2026-07-01 examples (contract_v2.py: Job/*/get.json, Workspace/ModelVersion/list.json,
OnlineEndpoint, BatchDeployment, Schedule/list.json, Datastore/list.json) and the recorded answers (REC) for the
fields the examples leave as "string". `systemData` comes from v2.system_data: a UPN, e-mail or UPN in another
letter case for a user by default (`created_by="upn"`), the display name when built with `created_by="name"` (as
the service was recorded to write it), an app id with createdByType Application for the automation principal.

Demo (next to each person's v1 objects; alice is the subject): her jobs of every type (a pipeline with child jobs,
an archived job, a Spark job whose systemData names only her display name), models, data, environments,
components and code with versions (one of her versions in bob's container, one used by bob's deployment), online
and batch endpoints with deployments (one of her endpoints carries bob's deployment, one in production an
application's), schedules (one disabled), connections (systemData null), the compute instance an application made
and assigned to her; colleagues' and the application's objects interleave with hers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from devtools.amlsim import v2
from devtools.amlsim.ids import guid, timestamp
from devtools.amlsim.state import JSON, Principal, Record, Tenant, WorkspaceData

Owner = tuple[Principal, str]  # (principal, systemData style: upn | case | mail | name | app)
_ML = "Microsoft.MachineLearningServices/workspaces"
_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest"
JOB_TYPES = ("Command", "Pipeline", "Sweep", "AutoML", "Spark")


class V2Builder:
    """Adds v2 resources to one workspace with consistent ids, times, owners and systemData."""

    def __init__(self, tenant: Tenant, ws: WorkspaceData, clock: int, created_by: str = "upn") -> None:
        if created_by not in v2.CREATED_BY_MODES:
            raise ValueError(f"created_by must be one of {v2.CREATED_BY_MODES}")
        self.tenant, self.ws, self.t = tenant, ws, clock
        self.store = v2.store(ws)
        self.store.created_by = created_by
        self.arm = ws.arm_id

    def _sd(self, owner: Owner, shape: str) -> JSON:
        self.t += 7
        actor, style = owner
        return v2.system_data(
            actor, style, timestamp(self.t), timestamp(self.t + 3), shape, self.store.created_by
        )

    def _add(self, family: str, path: str, owner: Owner, body: JSON, parent: str | None = None) -> str:
        body = {"id": f"{self.arm}/{path}", "name": path.rsplit("/", 1)[1], **body}
        self.store.collections[family].add(Record(path, owner[0].key, body, parent=parent))
        return f"{self.arm}/{path}"

    # -- jobs ------------------------------------------------------------------------------------------------
    def job(self, name: str, owner: Owner, job_type: str = "Command", **kw: Any) -> str:
        """A job; a pipeline job's `children` (step names) become child jobs `{name}-{step}`."""
        children: Sequence[str] = kw.pop("children", ())
        body = {"type": f"{_ML}/jobs", "properties": self._job_properties(name, job_type, owner, **kw)}
        body["systemData"] = self._sd(owner, "created")
        arm_id = self._add("jobs", f"jobs/{name}", owner, body)
        for step in children:
            child = f"{name}-{step}"
            props = self._job_properties(child, "Command", owner, experiment=kw.get("experiment"))
            props["properties"] = {"azureml.pipeline": name, "azureml.nodeid": step}
            child_body = {
                "type": f"{_ML}/jobs",
                "properties": props,
                "systemData": self._sd(owner, "created"),
            }
            self._add("child_jobs", f"jobs/{child}", owner, child_body, parent=f"jobs/{name}")
        return arm_id

    def _job_properties(self, name: str, job_type: str, owner: Owner, **kw: Any) -> JSON:
        experiment = kw.get("experiment") or name.rsplit("-", 1)[0]
        wsid = self.arm.replace("/resourceGroups/", "/resourcegroups/")
        props: JSON = {
            "description": kw.get("description"),
            "tags": {"mlflow.user": owner[0].display_name} if kw.get("mlflow") else {},
            "properties": {"_azureml.ComputeTargetType": "amlctrain"},
            "displayName": name,
            "status": kw.get("status", "Completed"),
            "experimentName": experiment,
            "services": {
                "Studio": {
                    "jobServiceType": "Studio",
                    "endpoint": f"https://ml.azure.com/runs/{name}?wsid={wsid}",
                }
            },
            "computeId": f"{self.arm}/computes/cpu-cluster",
            "isArchived": bool(kw.get("archived")),
            "jobType": job_type,
            "inputs": {"learning_rate": {"jobInputType": "literal", "value": "0.01"}},
            "outputs": {
                "default": {
                    "jobOutputType": "uri_folder",
                    "mode": "ReadWriteMount",
                    "uri": f"azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.{name}",
                }
            },
        }
        env = kw.get("environment") or f"{self.arm}/environments/AzureML-sklearn-1.5/versions/7"
        if job_type == "Command":
            props.update(command="python train.py --lr ${{inputs.learning_rate}}", environmentId=env)
            props["codeId"] = kw.get("code")
        elif job_type == "Pipeline":
            props.update(jobs={"prep": {"type": "command"}, "train": {"type": "command"}}, settings={})
        elif job_type == "Sweep":
            props.update(objective={"goal": "Maximize", "primaryMetric": "accuracy"})
            props["samplingAlgorithm"] = {"samplingAlgorithmType": "Random"}
            props["trial"] = {"command": "python train.py", "environmentId": env}
        elif job_type == "AutoML":
            props["taskDetails"] = {"taskType": "Classification", "targetColumnName": "churned"}
        else:
            props.update(entry={"sparkJobEntryType": "SparkJobPythonEntry", "file": "features.py"}, conf={})
        return props

    # -- registered assets -------------------------------------------------------------------------------------
    def container(
        self, segment: str, name: str, owner: Owner, *, archived: bool = False, latest: str = "1"
    ) -> str:
        family = f"{_ASSET_FAMILY[segment]}_containers"
        props: JSON = {
            "description": None,
            "tags": {},
            "properties": {},
            "isArchived": archived,
            "latestVersion": latest,
        }
        props["nextVersion"] = str(int(latest) + 1) if latest.isdigit() else None
        body = {"type": f"{_ML}/{segment}", "properties": props, "systemData": self._sd(owner, "full")}
        return self._add(family, f"{segment}/{name}", owner, body)

    def version(self, segment: str, name: str, version: str, owner: Owner, **props: Any) -> str:
        family = f"{_ASSET_FAMILY[segment]}_versions"
        base: JSON = {"description": None, "tags": {}, "properties": {}, "isAnonymous": False}
        base["isArchived"] = bool(props.pop("archived", False))
        base.update(_VERSION_DEFAULTS[segment](self.arm, name, version))
        base.update(props)
        body = {
            "type": f"{_ML}/{segment}/versions",
            "properties": base,
            "systemData": self._sd(owner, "full"),
        }
        return self._add(
            family, f"{segment}/{name}/versions/{version}", owner, body, parent=f"{segment}/{name}"
        )

    # -- endpoints ---------------------------------------------------------------------------------------------
    def endpoint(self, segment: str, name: str, owner: Owner) -> str:
        online = segment == "onlineEndpoints"
        host = f"{name}.{self.ws.location}.inference.ml.azure.com"
        props: JSON = {"authMode": "Key" if online else "AADToken", "provisioningState": "Succeeded"}
        props["scoringUri"] = f"https://{host}/score" if online else f"https://{host}/jobs"
        body: JSON = {"type": f"{_ML}/{segment}", "location": self.ws.location, "tags": {}, "kind": "Managed"}
        body["identity"] = {
            "type": "SystemAssigned",
            "principalId": guid(self.arm, name),
            "tenantId": owner[0].tenant_id,
        }
        body.update(properties=props, systemData=self._sd(owner, "tracked"))
        return self._add(f"{'online' if online else 'batch'}_endpoints", f"{segment}/{name}", owner, body)

    def deployment(
        self, segment: str, endpoint: str, name: str, owner: Owner, model: str, **refs: str
    ) -> str:
        online = segment == "onlineEndpoints"
        props: JSON = {"provisioningState": "Succeeded", "instanceType": "Standard_DS3_v2"}
        props["model"] = model if online else {"referenceType": "Id", "assetId": model}
        if refs.get("environment"):
            props["environmentId"] = refs["environment"]
        if refs.get("code"):
            props["codeConfiguration"] = {"codeId": refs["code"], "scoringScript": "score.py"}
        body: JSON = {
            "type": f"{_ML}/{segment}/deployments",
            "location": self.ws.location,
            "properties": props,
        }
        body.update(sku={"name": "Default", "capacity": 1}, systemData=self._sd(owner, "tracked"))
        family = f"{'online' if online else 'batch'}_deployments"
        return self._add(
            family, f"{segment}/{endpoint}/deployments/{name}", owner, body, f"{segment}/{endpoint}"
        )

    # -- schedules, connections, computes, datastores -------------------------------------------------------------
    def schedule(self, name: str, owner: Owner, *, enabled: bool = True) -> str:
        action = {
            "actionType": "CreateJob",
            "jobDefinition": {"jobType": "Command", "command": "python train.py"},
        }
        trigger = {"triggerType": "Cron", "expression": "0 2 * * *", "timeZone": "UTC", "startTime": None}
        props: JSON = {"displayName": name, "isEnabled": enabled, "trigger": trigger, "action": action}
        props.update(provisioningState="Succeeded", tags={}, properties={}, description=None)
        body = {"type": f"{_ML}/schedules", "properties": props, "systemData": self._sd(owner, "full")}
        return self._add("schedules", f"schedules/{name}", owner, body)

    def connection(self, name: str, owner: Owner, category: str, target: str) -> str:
        props: JSON = {"authType": "PAT" if category == "Git" else "ApiKey", "category": category}
        props.update(target=target, metadata={}, isSharedToAll=True)
        body = {
            "type": f"{_ML}/connections",
            "tags": None,
            "location": None,
            "properties": props,
            "systemData": None,
        }
        self.t += 7
        return self._add("connections", f"connections/{name}", owner, body)

    def assign(self, compute: str, person: str) -> None:
        """The compute instance `compute` (made by someone else) is assigned to `person`."""
        self.store.assigned[compute] = person

    def datastore_style(self, name: str, style: str) -> None:
        self.store.styles[name] = style


_ASSET_FAMILY = {"models": "model", "data": "data", "environments": "environment", "components": "component"}
_ASSET_FAMILY["codes"] = "code"


def _model(arm: str, name: str, version: str) -> JSON:
    return {
        "modelType": "mlflow_model",
        "modelUri": f"azureml://locations/models/{name}/versions/{version}",
        "flavors": {},
    }


def _data(arm: str, name: str, version: str) -> JSON:
    return {
        "dataType": "uri_folder",
        "dataUri": f"azureml://datastores/workspaceblobstore/paths/{name}/v{version}/",
    }


def _environment(arm: str, name: str, version: str) -> JSON:
    return {"image": _IMAGE, "osType": "Linux", "environmentType": "UserCreated", "autoRebuild": "Disabled"}


def _component(arm: str, name: str, version: str) -> JSON:
    spec = {"name": name, "version": version, "type": "command", "command": f"python {name}.py"}
    return {"componentSpec": spec}


def _code(arm: str, name: str, version: str) -> JSON:
    return {"codeUri": f"https://stcontoso.blob.core.windows.net/azureml-blobstore/LocalUpload/{name}/src"}


_VERSION_DEFAULTS: dict[str, Callable[[str, str, str], JSON]] = {
    "models": _model,
    "data": _data,
    "environments": _environment,
    "components": _component,
    "codes": _code,
}
