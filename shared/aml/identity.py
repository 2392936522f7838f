"""Resolve the data subject to every identifier Azure ML records may name: object id, UPN, e-mail, other e-mails.

A request may name the person by any one of them; records name them by others (run history by object id, ARM
`systemData.createdBy` by UPN or e-mail). Microsoft Graph, called with the managed identity (application
permission User.Read.All, token audience https://graph.microsoft.com/.default), fills in the kinds the request
lacks:

1. object id: `GET /v1.0/users/{id}`, else `GET /v1.0/directory/deletedItems/{id}` (deleted < 30 days ago);
2. UPN or e-mail: `GET /v1.0/users/{value}` (a UPN), else `GET /v1.0/users?$filter=mail eq '..' or
   otherMails/any(x:x eq '..')` (an e-mail), else `GET /v1.0/directory/deletedItems/microsoft.graph.user
   ?$filter=mail eq '..' or endsWith(userPrincipalName,'..')` (a deleted user's UPN carries its object id as a
   prefix). The lists are sent as advanced queries (`ConsistencyLevel: eventual`, `$count=true`).

Every call selects `id,userPrincipalName,mail,otherMails`. The request's own identifiers are never replaced: Graph
only adds the kinds the request lacks (a disagreement is recorded, not acted on, so a wrong pairing cannot widen
the request to a second person). The outcome is stored on the request once (a re-delivered plan does not resolve
again) and shown in the status, the manifest and index.html: each identifier with its source, Graph's outcome,
and which kinds of identifier the matching fields need that are still unknown. Logs carry none of the values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote, urlsplit

from shared.aml.client import AmlError, AzureMLClient
from shared.core.matching import Subject, canonical
from shared.core.model import iso, utcnow
from shared.core.outbound import AllowList, DisallowedUrlError
from shared.core.settings import GRAPH_AUDIENCE, GRAPH_BASE_URL, Settings
from shared.core.transport import TokenCredential

log = logging.getLogger(__name__)

SELECT: Final = "id,userPrincipalName,mail,otherMails"
ADVANCED: Final = {"ConsistencyLevel": "eventual"}

FROM_REQUEST: Final = "request"
FROM_GRAPH: Final = "graph"
FROM_GRAPH_DELETED: Final = "graph-deleted-items"

KINDS: Final = ("objectId", "userPrincipalName", "email")
KIND_NAMES: Final = {"objectId": "object id", "userPrincipalName": "UPN", "email": "e-mail address"}
# What each known match field can hold, and where it is found (DSR_MATCH_FIELDS; another field counts as able to
# hold any kind).
FIELD_KINDS: Final[Mapping[str, tuple[str, ...]]] = {
    "createdBy.userObjectId": ("objectId",),
    "createdBy.upn": ("userPrincipalName",),
    "createdBy.userName": ("userPrincipalName", "email"),
    "createdBy.email": ("email",),
    "systemData.createdBy": ("userPrincipalName", "email"),
    "properties.properties.createdBy.userId": ("objectId",),
    "properties.properties.personalComputeInstanceSettings.assignedUser.objectId": ("objectId",),
    "CreatedBy.UserObjectId": ("objectId",),
}
FIELD_LABELS: Final[Mapping[str, str]] = {
    "createdBy.userObjectId": "data-plane records (runs, models, services) name their creator by object id",
    "createdBy.upn": "data-plane records name their creator's UPN in createdBy.upn",
    "createdBy.userName": "data-plane records hold a UPN or e-mail in createdBy.userName",
    "createdBy.email": "data-plane records hold an e-mail in createdBy.email",
    "systemData.createdBy": "ARM systemData.createdBy (newer api-versions; none at 2019-11-01) holds a UPN or e-mail",
    "properties.properties.createdBy.userId": "compute instances name their creator by object id",
    "properties.properties.personalComputeInstanceSettings.assignedUser.objectId": (
        "compute instances name their assigned user by object id (newer api-versions)"
    ),
    "CreatedBy.UserObjectId": "pipeline modules name their creator by object id",
}


def graph_client(settings: Settings, credential: TokenCredential) -> AzureMLClient | None:
    """The Graph client, whose token goes only to the Graph base URL's host, and only when that host is on the
    allow-list; None when Graph is not configured."""
    base = settings.graph_base_url
    if not base:
        return None
    parts = urlsplit(base)
    host = f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "")
    allowed = AllowList(settings.allowed_hosts).allows(base)
    return AzureMLClient(
        credential,
        GRAPH_AUDIENCE,
        AllowList([host] if allowed else []),
        timeout=(5.0, settings.http_timeout_seconds),
        max_inprocess_wait=settings.max_inprocess_retry_after_seconds,
    )


class _Denied(Exception):
    pass


def _odata(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _key(value: str) -> str:
    return quote(value.strip(), safe="@")


class _Graph:
    def __init__(self, client: AzureMLClient, base: str) -> None:
        self.client, self.base, self.calls = client, base.rstrip("/"), 0

    def get(self, path: str) -> dict[str, Any] | None:
        self.calls += 1
        try:
            return self.client.get_json(f"{self.base}/v1.0{path}", params={"$select": SELECT})
        except AmlError as exc:
            if exc.status == 404:
                return None
            raise

    def find(self, path: str, expression: str) -> list[dict[str, Any]]:
        self.calls += 1
        params = {"$filter": expression, "$select": SELECT, "$count": "true"}
        body = self.client.get_json(f"{self.base}/v1.0{path}", params=params, headers=ADVANCED)
        value = body.get("value")
        return [u for u in value if isinstance(u, dict)] if isinstance(value, list) else []


def _lookup(graph: _Graph, subject: Subject) -> tuple[dict[str, Any] | None, str, str]:
    """(Graph user or None, source, outcome)."""
    if subject.object_id:
        user = graph.get(f"/users/{_key(subject.object_id)}")
        if user is not None:
            return user, FROM_GRAPH, "resolved"
        user = graph.get(f"/directory/deletedItems/{_key(subject.object_id)}")
        if user is not None:
            return user, FROM_GRAPH_DELETED, "resolved from deleted items"
        return None, "", "not found"
    names = list(dict.fromkeys(v.strip() for v in (subject.user_principal_name, subject.email) if v))
    for name in names:
        user = graph.get(f"/users/{_key(name)}")
        if user is not None:
            return user, FROM_GRAPH, "resolved"
    for name in names:
        users = graph.find("/users", f"mail eq {_odata(name)} or otherMails/any(x:x eq {_odata(name)})")
        if len(users) == 1:
            return users[0], FROM_GRAPH, "resolved"
        if len(users) > 1:
            return None, "", f"ambiguous: {len(users)} users have this e-mail address"
    for name in names:
        expression = f"mail eq {_odata(name)} or endsWith(userPrincipalName,{_odata(name)})"
        found = [
            u
            for u in graph.find("/directory/deletedItems/microsoft.graph.user", expression)
            if canonical(name) in (canonical(u.get("mail")), canonical(_original_upn(u)))
        ]
        if len(found) == 1:
            return found[0], FROM_GRAPH_DELETED, "resolved from deleted items"
        if len(found) > 1:
            return None, "", f"ambiguous: {len(found)} deleted users match"
    return None, "", "not found"


def _original_upn(user: Mapping[str, Any]) -> str:
    """A deleted user's UPN without the object-id prefix Entra ID puts in front of it."""
    upn = str(user.get("userPrincipalName") or "")
    prefix = str(user.get("id") or "").replace("-", "")
    return upn[len(prefix) :] if prefix and upn.lower().startswith(prefix.lower()) else upn


def resolve(
    settings: Settings, client: AzureMLClient | None, subject: Subject
) -> tuple[Subject, dict[str, Any]]:
    """The subject with the identifiers Graph adds, and the record of how (see the module docstring). Raises
    ThrottledError when Graph asks for a longer wait than a worker should sleep (the caller re-enqueues)."""
    identifiers = [
        {"kind": kind, "value": value, "source": FROM_REQUEST}
        for kind, value in zip(
            KINDS, (subject.object_id, subject.user_principal_name, subject.email), strict=True
        )
        if value
    ]
    identifiers += [{"kind": "otherMails", "value": v, "source": FROM_REQUEST} for v in subject.other_emails]
    user, source, graph_info = _ask_graph(settings, client, subject)
    resolved = subject
    if user is not None:
        resolved, conflicts = _add_from_graph(subject, user, source, identifiers)
        if conflicts:
            graph_info["conflicts"] = [
                f"the request's {KIND_NAMES[k]} differs from the one Graph holds for this person; the request's "
                "is used"
                for k in conflicts
            ]
    missing = missing_kinds(resolved, settings.match_fields)
    record: dict[str, Any] = {
        "resolvedAt": iso(utcnow()),
        "identifiers": identifiers,
        "graph": graph_info,
        "missing": missing,
    }
    log.info(
        "subject resolution: %s, %d identifiers (%s), missing kinds: %s",
        graph_info["outcome"],
        len(identifiers),
        ", ".join(sorted({f"{i['kind']} from {i['source']}" for i in identifiers})),
        ", ".join(str(m["kind"]) for m in missing) or "none",
    )
    return resolved, record


def _ask_graph(
    settings: Settings, client: AzureMLClient | None, subject: Subject
) -> tuple[dict[str, Any] | None, str, dict[str, Any]]:
    """(Graph user or None, source, the record of Graph's part: base URL, outcome, detail, calls). Nothing is
    sent when Graph is not configured or its host is not allow-listed."""
    graph_info: dict[str, Any] = {"baseUrl": settings.graph_base_url or None}
    user: dict[str, Any] | None = None
    source = ""
    if client is None:
        graph_info["outcome"] = "not configured"
        graph_info["detail"] = f"{GRAPH_BASE_URL} is empty: the identifiers are the request's only"
    elif not client.allow_list.allows(settings.graph_base_url):
        graph_info["outcome"] = "not allowed"
        graph_info["detail"] = (
            f"the host of {GRAPH_BASE_URL} is not on DSR_ALLOWED_HOSTS: nothing was sent to it"
        )
    else:
        graph = _Graph(client, settings.graph_base_url)
        try:
            user, source, outcome = _lookup(graph, subject)
            graph_info["outcome"] = outcome
        except AmlError as exc:
            graph_info["outcome"] = "denied" if exc.status in (401, 403) else "failed"
            graph_info["detail"] = f"HTTP {exc.status} {exc.code}" + (
                ": the managed identity needs the Microsoft Graph application permission User.Read.All"
                if exc.status == 403
                else ""
            )
        except DisallowedUrlError as exc:
            graph_info["outcome"] = "not allowed"
            graph_info["detail"] = str(exc)
        graph_info["calls"] = graph.calls
    return user, source, graph_info


def _add_from_graph(
    subject: Subject, user: Mapping[str, Any], source: str, identifiers: list[dict[str, Any]]
) -> tuple[Subject, list[str]]:
    """Append to `identifiers` the kinds Graph's `user` holds and the request lacks (its other e-mails too);
    return the subject completed with them and the kinds where the request's value is not one of Graph's."""
    found = {
        "objectId": str(user.get("id") or "") or None,
        "userPrincipalName": _original_upn(user) or None,
        "email": str(user.get("mail") or "") or None,
    }
    given = {
        "objectId": subject.object_id,
        "userPrincipalName": subject.user_principal_name,
        "email": subject.email,
    }
    others = [str(m) for m in user.get("otherMails") or [] if m]
    known = {v.lower() for v in [*found.values(), *others] if v}
    conflicts: list[str] = []
    for kind in KINDS:
        mine, theirs = given[kind], found[kind]
        if mine and theirs and mine.strip().lower() not in known:
            conflicts.append(kind)
        if not mine and theirs:
            identifiers.append({"kind": kind, "value": theirs, "source": source})
    have = {i["value"].lower() for i in identifiers}
    extra = [m for m in others if m.lower() not in have]
    identifiers += [{"kind": "otherMails", "value": m, "source": source} for m in extra]
    resolved = Subject(
        subject.object_id or found["objectId"],
        subject.user_principal_name or found["userPrincipalName"],
        subject.email or found["email"],
        tuple(dict.fromkeys([*subject.other_emails, *extra])),
    )
    return resolved, conflicts


def missing_kinds(subject: Subject, fields: Iterable[str]) -> list[dict[str, Any]]:
    """For each kind of identifier some match field can hold and the subject lacks: the fields, and what could
    therefore not be matched."""
    have = {
        "objectId": bool(subject.object_id),
        "userPrincipalName": bool(subject.user_principal_name),
        "email": bool(subject.email or subject.other_emails),
    }
    missing = []
    for kind in KINDS:
        if have[kind]:
            continue
        needing = [f for f in fields if kind in FIELD_KINDS.get(f, KINDS)]
        if not needing:
            continue
        name = KIND_NAMES[kind]
        missing.append(
            {
                "kind": kind,
                "fields": needing,
                "effect": "; ".join(
                    f"{FIELD_LABELS.get(f, f + ' can hold one')}: no {name} known, records naming the person only "
                    f"by {name} there could not be matched"
                    for f in needing
                ),
            }
        )
    return missing
