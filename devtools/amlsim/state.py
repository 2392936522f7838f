"""In-memory state of a simulated Azure Machine Learning tenant.

The structures here are plain containers; the Simulator serialises access with one lock. Every stored object
is a `Record`: its id, the key of the principal who created it (the *owner annotation*, kept beside the object
and never sent in an API answer, so that `truth()` does not depend on the `createdBy` fields the product
matches on), and its JSON body. Large generated tenants store a renderer and a few arguments instead of the
body, which is rebuilt on every read; that keeps a tenant of a few hundred thousand objects small.

Lists page by *keyset*: every record gets a tenant-wide increasing sequence number when it is added, and a
continuation token carries the sequence number of the last record served. A walk therefore never repeats or
skips a record that existed for the whole walk, even when other records are deleted between two pages.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

# Every resource family the simulator holds, in the order the request log and snapshots use.
FAMILIES: tuple[str, ...] = (
    "workspaces",
    "computes",
    "experiments",
    "runs",
    "metrics",
    "artifacts",
    "tasks",
    "datastores",
    "models",
    "assets",
    "images",
    "services",
    "pipeline_experiments",
    "pipeline_graphs",
    "pipeline_modules",
    "pipeline_templates",
    "pipeline_datasources",
)
PIPELINE_FAMILIES: tuple[str, ...] = (
    "pipeline_experiments",
    "pipeline_graphs",
    "pipeline_modules",
    "pipeline_templates",
    "pipeline_datasources",
)
FLAT_FAMILIES: tuple[str, ...] = (
    "computes",
    "experiments",
    "tasks",
    "datastores",
    "models",
    "assets",
    "images",
    "services",
    *PIPELINE_FAMILIES,
)

_sequence = itertools.count(1)  # next() on itertools.count is atomic under the GIL

# A soft-deleted workspace is kept, recoverable, for 14 days by default (the documented maximum; a workspace
# may set 1 to 14), then the service purges it [learn.microsoft.com/azure/machine-learning/concept-soft-delete].
SOFT_DELETE_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class Principal:
    """A user (a data subject) or a service principal that creates objects."""

    key: str
    object_id: str
    display_name: str
    upn: str = ""
    email: str = ""
    tenant_id: str = ""  # the tenant the principal signs in through (the resource tenant)
    home_tenant_id: str = ""  # differs from tenant_id for a guest user
    kind: str = "User"  # "User" or "ServicePrincipal"
    app_id: str = ""  # service principals only
    puid: str = ""

    @property
    def upn_variant(self) -> str:
        """The UPN in another letter case, as some records carry it (`Dave@Contoso.COM`)."""
        local, _, domain = self.upn.partition("@")
        name, _, tld = domain.rpartition(".")
        return f"{local[:1].upper()}{local[1:]}@{name[:1].upper()}{name[1:]}.{tld.upper()}"

    def as_dict(self) -> JSON:
        return {
            "key": self.key,
            "objectId": self.object_id,
            "displayName": self.display_name,
            "upn": self.upn,
            "email": self.email,
            "tenantId": self.tenant_id,
            "homeTenantId": self.home_tenant_id or self.tenant_id,
            "kind": self.kind,
            "appId": self.app_id,
            "upnVariant": self.upn_variant if self.upn else "",
        }


class Record:
    """One stored object: id, owner annotation, parent key (experiment name or run id) and body."""

    __slots__ = ("_args", "_body", "_render", "id", "owner", "parent", "seq")

    def __init__(
        self,
        id: str,
        owner: str | None,
        body: JSON | None = None,
        *,
        parent: str | None = None,
        render: Callable[..., JSON] | None = None,
        args: tuple[Any, ...] = (),
    ) -> None:
        self.id = id
        self.owner = owner
        self.parent = parent
        self.seq = 0
        self._body = body
        self._render = render
        self._args = args

    def body(self) -> JSON:
        """The stored body (callers must not mutate it), or a freshly rendered one."""
        if self._render is not None:
            return self._render(*self._args)
        assert self._body is not None
        return self._body


class Collection:
    """Records in insertion order, by id, pageable by sequence number."""

    def __init__(self, fold: bool = False) -> None:
        self.fold = fold  # ARM names are case-insensitive
        self._by_id: dict[str, Record] = {}
        self._order: list[Record] = []
        self._seqs: list[int] = []

    def _key(self, id: str) -> str:
        return id.lower() if self.fold else id

    def add(self, record: Record) -> Record:
        key = self._key(record.id)
        if key in self._by_id:
            raise ValueError(f"duplicate id {record.id!r}")
        record.seq = next(_sequence)
        self._by_id[key] = record
        self._order.append(record)
        self._seqs.append(record.seq)
        return record

    def get(self, id: str) -> Record | None:
        return self._by_id.get(self._key(id))

    def remove(self, id: str) -> Record | None:
        record = self._by_id.pop(self._key(id), None)
        if record is not None:
            index = bisect.bisect_left(self._seqs, record.seq)
            del self._order[index]
            del self._seqs[index]
        return record

    def page(self, after: int, size: int) -> tuple[list[Record], bool]:
        """Up to `size` records with a sequence number above `after`, and whether more follow."""
        start = bisect.bisect_right(self._seqs, after)
        items = self._order[start : start + size]
        return items, start + size < len(self._order)

    def __iter__(self) -> Iterator[Record]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)


class GeneratedCollection(Collection):
    """`count` records made on demand from their index, nothing stored per record: a family of millions of
    objects (a benchmark's 1 GB export) costs the simulator a few bytes. Read-only (these are listed, never
    created or deleted through the API). A record's sequence number is its index + 1: keyset paging only needs
    numbers that increase within one list."""

    def __init__(
        self, count: int, make: Callable[[int], Record], index_of: Callable[[str], int | None]
    ) -> None:
        super().__init__()
        self.total = count
        self._make = make  # index -> Record
        self._index_of = index_of  # id -> index, None when the id is not one of ours

    def _at(self, index: int) -> Record:
        record = self._make(index)
        record.seq = index + 1
        return record

    def add(self, record: Record) -> Record:
        raise TypeError("a generated collection is read-only")

    def get(self, id: str) -> Record | None:
        index = self._index_of(id)
        return self._at(index) if index is not None and 0 <= index < self.total else None

    def remove(self, id: str) -> Record | None:
        raise TypeError("a generated collection is read-only")

    def page(self, after: int, size: int) -> tuple[list[Record], bool]:
        start = max(0, after)
        stop = min(self.total, start + size)
        return [self._at(i) for i in range(start, stop)], stop < self.total

    def __iter__(self) -> Iterator[Record]:
        return (self._at(i) for i in range(self.total))

    def __len__(self) -> int:
        return self.total


class WorkspaceData:
    """One workspace: its ARM resource and everything the data-plane services hold for it."""

    def __init__(
        self, subscription_id: str, resource_group: str, name: str, location: str, arm: Record
    ) -> None:
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.name = name
        self.location = location
        self.arm = arm
        self.deleting: str | None = None  # id of a running delete operation
        self.computes = Collection(fold=True)
        self.experiments = Collection()  # by experimentId
        self.experiment_names: dict[str, Record] = {}
        self.runs: dict[str, Collection] = {}  # experiment name -> runs
        self.run_index: dict[str, Record] = {}
        self.metrics: dict[str, Collection] = {}  # experiment name -> metrics
        self.metric_index: dict[str, Record] = {}
        self.artifacts: dict[str, Collection] = {}  # run id -> artifacts
        self.tasks = Collection()
        self.datastores = Collection()
        self.models = Collection()
        self.assets = Collection()
        self.images = Collection()
        self.services = Collection()
        self.pipeline: dict[str, Collection] = {family: Collection() for family in PIPELINE_FAMILIES}
        self.v2: Any = None  # its v2 (ARM) resources: a v2.V2Workspace, made on first use

    @property
    def arm_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.MachineLearningServices/workspaces/{self.name}"
        )

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.subscription_id.lower(), self.resource_group.lower(), self.name.lower())

    # -- building -----------------------------------------------------------------------------------------
    def add_experiment(self, record: Record, name: str) -> Record:
        self.experiments.add(record)
        self.experiment_names[name] = record
        self.runs.setdefault(name, Collection())
        self.metrics.setdefault(name, Collection())
        return record

    def add_run(self, experiment_name: str, record: Record) -> Record:
        record.parent = experiment_name
        self.runs[experiment_name].add(record)
        self.run_index[record.id] = record
        self.artifacts.setdefault(record.id, Collection())
        return record

    def add_metric(self, experiment_name: str, record: Record) -> Record:
        record.parent = experiment_name
        self.metrics[experiment_name].add(record)
        self.metric_index[record.id] = record
        return record

    def add_artifact(self, run_id: str, record: Record) -> Record:
        record.parent = run_id
        return self.artifacts[run_id].add(record)

    def collection(self, family: str) -> Collection:
        if family.startswith("pipeline_"):
            return self.pipeline[family]
        value = getattr(self, family)
        assert isinstance(value, Collection)
        return value

    # -- reading ------------------------------------------------------------------------------------------
    def records(self, family: str) -> Iterator[Record]:
        """Every record of one family in this workspace."""
        if family == "workspaces":
            yield self.arm
        elif family in ("runs", "metrics", "artifacts"):
            groups: dict[str, Collection] = getattr(self, family)
            for group in list(groups.values()):
                yield from group
        else:
            yield from self.collection(family)

    def truth_id(self, family: str, record: Record) -> str:
        """The id a record has in `truth()`: ARM resources by resource id, the rest by their API id."""
        if family == "workspaces":
            return self.arm_id
        if family == "computes":
            return f"{self.arm_id}/computes/{record.id}"
        return record.id

    def count(self) -> int:
        return sum(1 for family in FAMILIES for _ in self.records(family))


@dataclass
class DeletedWorkspace:
    """A workspace that answers 404: soft-deleted (its data kept, recoverable until `recoverable_until`) or
    purged (its data gone; only this tombstone remains, for tests to assert what really happened)."""

    arm_id: str
    workspace: WorkspaceData | None  # None once purged
    deleted_at: float
    recoverable_until: float | None
    state: str = "soft-deleted"  # soft-deleted | purged
    purged_at: float | None = None
    purged_by: str | None = None  # "forceToPurge" | "retention expired"
    objects: int = 0  # how many objects the workspace held when it was deleted

    def describe(self) -> JSON:
        def stamp(value: float | None) -> str | None:
            return None if value is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))

        return {
            "id": self.arm_id,
            "state": self.state,
            "deletedAt": stamp(self.deleted_at),
            "recoverableUntil": stamp(self.recoverable_until),
            "purgedAt": stamp(self.purged_at),
            "purgedBy": self.purged_by,
            "objectsAtDeletion": self.objects,
            "objectsRetained": self.workspace.count() if self.workspace is not None else 0,
        }


@dataclass
class Tenant:
    """A whole simulated tenant: people, subscriptions, resource groups and workspaces."""

    name: str
    tenant_id: str
    people: dict[str, Principal]  # the data subjects, by key
    principals: dict[str, Principal] = field(default_factory=dict)  # people and service principals
    subscriptions: dict[str, str] = field(default_factory=dict)  # id -> display name
    resource_groups: dict[tuple[str, str], tuple[str, str, str]] = field(default_factory=dict)
    workspaces: dict[tuple[str, str, str], WorkspaceData] = field(default_factory=dict)
    demo_person: str = "alice"
    # Deleted workspaces by key: soft-deleted (data retained) or purged (tombstone only).
    deleted: dict[tuple[str, str, str], DeletedWorkspace] = field(default_factory=dict)

    def add_resource_group(self, subscription_id: str, name: str, location: str) -> None:
        self.resource_groups[(subscription_id.lower(), name.lower())] = (subscription_id, name, location)

    def add_workspace(self, workspace: WorkspaceData) -> WorkspaceData:
        if workspace.key in self.workspaces:
            raise ValueError(f"duplicate workspace {workspace.arm_id}")
        workspace.arm.seq = next(_sequence)
        self.workspaces[workspace.key] = workspace
        return workspace

    def find_workspace(self, subscription_id: str, resource_group: str, name: str) -> WorkspaceData | None:
        return self.workspaces.get((subscription_id.lower(), resource_group.lower(), name.lower()))

    def remove_workspace(self, workspace: WorkspaceData) -> None:
        self.workspaces.pop(workspace.key, None)

    def soft_delete_workspace(self, workspace: WorkspaceData, now: float | None = None) -> DeletedWorkspace:
        """The default delete: the workspace answers 404 but its data is kept, recoverable for 14 days."""
        now = time.time() if now is None else now
        self.remove_workspace(workspace)
        entry = DeletedWorkspace(
            workspace.arm_id,
            workspace,
            now,
            now + SOFT_DELETE_RETENTION_SECONDS,
            objects=workspace.count(),
        )
        self.deleted[workspace.key] = entry
        return entry

    def purge_workspace(
        self, workspace: WorkspaceData, now: float | None = None, by: str = "forceToPurge"
    ) -> DeletedWorkspace:
        """A permanent delete (live or soft-deleted workspace): its data is gone, a tombstone remains."""
        now = time.time() if now is None else now
        self.remove_workspace(workspace)
        previous = self.deleted.get(workspace.key)
        entry = DeletedWorkspace(
            workspace.arm_id,
            None,
            previous.deleted_at if previous else now,
            previous.recoverable_until if previous else None,
            "purged",
            now,
            by,
            previous.objects if previous else workspace.count(),
        )
        self.deleted[workspace.key] = entry
        return entry

    def soft_deleted(self, subscription_id: str, resource_group: str, name: str) -> DeletedWorkspace | None:
        entry = self.deleted.get((subscription_id.lower(), resource_group.lower(), name.lower()))
        return entry if entry is not None and entry.state == "soft-deleted" else None

    def recover_workspace(self, subscription_id: str, resource_group: str, name: str) -> WorkspaceData:
        """Recover a soft-deleted workspace (the portal's "Recently deleted" view: Recover)."""
        entry = self.soft_deleted(subscription_id, resource_group, name)
        if entry is None or entry.workspace is None:
            raise KeyError(f"no soft-deleted workspace {resource_group}/{name}")
        workspace = entry.workspace
        del self.deleted[workspace.key]
        self.workspaces[workspace.key] = workspace
        return workspace

    def expire_soft_deleted(self, now: float | None = None) -> list[str]:
        """Purge every soft-deleted workspace whose retention ended by `now`; their resource ids."""
        now = time.time() if now is None else now
        expired = [
            e
            for e in self.deleted.values()
            if e.state == "soft-deleted" and e.recoverable_until is not None and e.recoverable_until <= now
        ]
        for entry in expired:
            assert entry.workspace is not None
            self.purge_workspace(entry.workspace, now, by="retention expired")
        return [e.arm_id for e in expired]

    def has_subscription(self, subscription_id: str) -> bool:
        return subscription_id.lower() in {s.lower() for s in self.subscriptions}

    def has_resource_group(self, subscription_id: str, name: str) -> bool:
        return (subscription_id.lower(), name.lower()) in self.resource_groups

    def truth(self, person: str) -> dict[str, list[str]]:
        """{family: sorted ids of the objects `person` created}, from the owner annotation only."""
        found: dict[str, list[str]] = {family: [] for family in FAMILIES}
        for workspace in list(self.workspaces.values()):
            for family in FAMILIES:
                found[family].extend(
                    workspace.truth_id(family, record)
                    for record in workspace.records(family)
                    if record.owner == person
                )
        return {family: sorted(ids) for family, ids in found.items()}

    def reachable(self, person: str) -> dict[str, list[str]]:
        """{family: sorted ids} a faithful product attributes to `person` by the contract's identity fields and
        rules, WITHOUT the owner annotation (an independent oracle of shared/tasks/rules.py; docs/azure-fidelity.md):

        - runs, models, services, compute instances, pipeline modules: an object-id field names the person's
          object id, or (no object id named at all) a UPN field holds the person's UPN or e-mail address;
          display names are never compared;
        - experiments: those holding a reachable run; metrics, artifacts, notification tasks, assets: those of a
          reachable run (`runId` / `runid`); images: those packaging a reachable model (`modelIds`);
        - pipeline experiments, graphs, templates: named by a reachable pipeline run; modules and data sources:
          named by those graphs, unless a module's object id names someone else;
        - workspaces and datastores: never (their contract names nobody).
        """
        principal = self.principals.get(person)
        found: dict[str, list[str]] = {family: [] for family in FAMILIES}
        if principal is None:
            return found
        for workspace in list(self.workspaces.values()):
            for family, ids in reachable_in(workspace, principal).items():
                found[family].extend(ids)
        return {family: sorted(ids) for family, ids in found.items()}

    def erasable(self, person: str) -> set[tuple[str, str, str]]:
        """(workspace id, family, id) of what a faithful erasure deletes for `person` (shared/tasks/erasure.py, erase_reason):
        models and services that name the person; images whose every packaged model is such a model; assets
        made by one of the person's reachable runs."""
        principal = self.principals.get(person)
        keys: set[tuple[str, str, str]] = set()
        if principal is None:
            return keys
        for ws in list(self.workspaces.values()):
            mine = reachable_in(ws, principal)
            models = set(mine["models"])
            for family in ("models", "services", "assets"):
                keys.update((ws.arm_id, family, i) for i in mine[family])
            for image in ws.records("images"):
                used = set(image.body().get("modelIds") or [])
                if used and used <= models:
                    keys.add((ws.arm_id, "images", image.id))
        return keys

    def findable(self, person: str) -> dict[str, list[str]]:
        """What the contract lets a faithful product find of what `person` made: truth() AND reachable()."""
        truth, reachable = self.truth(person), self.reachable(person)
        return {family: sorted(set(truth[family]) & set(reachable[family])) for family in FAMILIES}

    def truth_by_workspace(self, person: str) -> dict[str, dict[str, list[str]]]:
        """{workspace resource id: {family: sorted ids}} for each workspace where `person` created things."""
        result: dict[str, dict[str, list[str]]] = {}
        for workspace in list(self.workspaces.values()):
            per_family = {
                family: sorted(
                    workspace.truth_id(family, record)
                    for record in workspace.records(family)
                    if record.owner == person
                )
                for family in FAMILIES
            }
            if any(per_family.values()):
                result[workspace.arm_id] = per_family
        return result

    def count(self) -> int:
        return sum(workspace.count() for workspace in self.workspaces.values())


# -- the contract's rules, independently of the product -------------------------------------------------------
_OBJECT_ID_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "computes": (
        ("properties", "properties", "createdBy", "userId"),
        ("properties", "properties", "personalComputeInstanceSettings", "assignedUser", "objectId"),
    ),
    "runs": (("createdBy", "userObjectId"),),
    "models": (("createdBy", "userObjectId"),),
    "services": (("createdBy", "userObjectId"),),
    "pipeline_modules": (("CreatedBy", "UserObjectId"),),
}
_UPN_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {"runs": (("createdBy", "upn"),)}


def _at(body: Any, path: tuple[str, ...]) -> str | None:
    for part in path:
        body = body.get(part) if isinstance(body, dict) else None
    return body.strip().lower() if isinstance(body, str) and body.strip() else None


def _names(family: str, body: JSON, principal: Principal) -> bool | None:
    """True: names the principal; False: names someone else by object id; None: names nobody usable."""
    oids = {_at(body, p) for p in _OBJECT_ID_PATHS.get(family, ())} - {None}
    if oids:
        return principal.object_id.lower() in oids
    mine = {v.lower() for v in (principal.upn, principal.email) if v}
    if any(_at(body, p) in mine for p in _UPN_PATHS.get(family, ())):
        return True
    return None


def reachable_in(ws: WorkspaceData, principal: Principal) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"workspaces": [], "datastores": []}  # their contract names nobody

    def direct(family: str) -> list[Record]:
        return [r for r in ws.records(family) if _names(family, r.body(), principal)]

    runs = direct("runs")
    run_ids = {r.id for r in runs}
    found["runs"] = sorted(run_ids)
    found["computes"] = [ws.truth_id("computes", r) for r in direct("computes")]
    found["models"] = sorted(r.id for r in direct("models"))
    found["services"] = sorted(r.id for r in direct("services"))
    experiments = {r.parent for r in runs}
    found["experiments"] = [r.id for name, r in ws.experiment_names.items() if name in experiments]
    found["metrics"] = [r.id for r in ws.records("metrics") if r.body().get("runId") in run_ids]
    found["artifacts"] = [r.id for run_id in run_ids for r in ws.artifacts.get(run_id, [])]
    found["tasks"] = [r.id for r in ws.records("tasks") if r.body().get("runId") in run_ids]
    found["assets"] = [r.id for r in ws.records("assets") if r.body().get("runid") in run_ids]
    models = set(found["models"])
    found["images"] = [r.id for r in ws.records("images") if models & set(r.body().get("modelIds") or [])]
    pipeline: dict[str, set[str]] = {family: set() for family in PIPELINE_FAMILIES}
    for run in runs:
        body = run.body()
        properties = body.get("properties") or {}
        if properties.get("azureml.runsource") != "azureml.PipelineRun":
            continue
        pipeline["pipeline_experiments"].add(str(body.get("experimentId")))
        pipeline["pipeline_templates"].add(str(properties.get("azureml.pipelineTemplateId")))
        graph_id = str(properties.get("azureml.graphId"))
        pipeline["pipeline_graphs"].add(graph_id)
        graph = ws.pipeline["pipeline_graphs"].get(graph_id)
        if graph is None:
            continue
        for node in graph.body().get("moduleNodes") or []:
            module = ws.pipeline["pipeline_modules"].get(str(node.get("moduleId")))
            if module is not None and _names("pipeline_modules", module.body(), principal) is not False:
                pipeline["pipeline_modules"].add(module.id)
        for node in graph.body().get("datasetNodes") or []:
            pipeline["pipeline_datasources"].add(str(node.get("dataSourceId")))
    # a module the person made, met in anyone's pipeline graph, names the person's object id
    for module in ws.pipeline["pipeline_modules"]:
        if _names("pipeline_modules", module.body(), principal) and _in_any_run_graph(ws, module.id):
            pipeline["pipeline_modules"].add(module.id)
    for family, ids in pipeline.items():
        found[family] = sorted(i for i in ids if ws.pipeline[family].get(i) is not None)
    return found


def _in_any_run_graph(ws: WorkspaceData, module_id: str) -> bool:
    for run in ws.records("runs"):
        graph_id = (run.body().get("properties") or {}).get("azureml.graphId")
        graph = ws.pipeline["pipeline_graphs"].get(str(graph_id)) if graph_id else None
        if graph is not None and any(
            n.get("moduleId") == module_id for n in graph.body().get("moduleNodes") or []
        ):
            return True
    return False
