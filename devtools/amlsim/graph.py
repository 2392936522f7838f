"""Microsoft Graph, the part the product uses to resolve a person: users and the deleted-items container.

Served by the simulator on the host `graph.microsoft.com` (first path segment, as the Azure ML hosts), only to a
bearer token for the Graph audience (`https://graph.microsoft.com`) whose `roles` claim holds `User.Read.All`
(or `Directory.Read.All`); an ARM token is refused with 401, a Graph token without the role with 403.

Routes and shapes (Microsoft Graph v1.0 reference, learn.microsoft.com/graph/...: api/user-get, api/user-list,
api/directory-deleteditems-get, api/directory-deleteditems-list, aad-advanced-queries, errors,
resolve-auth-errors; application permission User.Read.All for users and deleted users):
- `GET /v1.0/users/{id | userPrincipalName}`: the user, `{"@odata.context", id, userPrincipalName, mail, ...}`;
  with `$select` only those properties (and `id`); an unknown key (an e-mail address that is not a UPN, a
  deleted user) answers 404 `Request_ResourceNotFound`.
- `GET /v1.0/users?$filter=...`: `{"@odata.context", value: [...]}` (and `@odata.count` with `$count=true`).
  The filter grammar here: clauses `mail eq '..'`, `userPrincipalName eq '..'`, `id eq '..'`,
  `otherMails/any(x:x eq '..')` and `endsWith(mail|userPrincipalName,'..')`, joined by `or`. `endsWith` is an
  advanced query: without `ConsistencyLevel: eventual` and `$count=true` it answers 400
  `Request_UnsupportedQuery`, as Graph does. String comparison ignores letter case.
- `GET /v1.0/directory/deletedItems/microsoft.graph.user[?$filter=..]` and `/directory/deletedItems/{id}`: users
  deleted less than 30 days ago, with `deletedDateTime`; a deleted user's `userPrincipalName` is prefixed with
  its object id without hyphens (Entra ID frees the UPN that way), `mail` and `otherMails` stay.
- Errors: `{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}`.

The directory is the tenant's people (service principals are not users). `soft_delete(key)` moves a person into
deleted items and `restore(key)` moves them back; Azure ML keeps their records either way.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from devtools.amlsim.routes import ApiResponse
from devtools.amlsim.state import JSON, Principal, Tenant

GRAPH_HOST = "graph.microsoft.com"
ROOT = "https://graph.microsoft.com/v1.0/$metadata"
READ_ROLES = frozenset(
    {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
# Extra addresses of the demo people (Graph `otherMails`), by person key.
OTHER_MAILS: dict[str, list[str]] = {
    "alice": ["alice.smith@outlook.com"],
    "asmith": ["alice.smith@fabrikam.com"],
}

_CLAUSE = re.compile(
    r"^(?:(?P<prop>id|mail|userPrincipalName)\s+eq\s+'(?P<v1>(?:[^']|'')*)'"
    r"|otherMails/any\((?P<var>\w+):\s*(?P=var)\s+eq\s+'(?P<v2>(?:[^']|'')*)'\)"
    r"|endsWith\((?P<eprop>mail|userPrincipalName),\s*'(?P<v3>(?:[^']|'')*)'\))$",
    re.IGNORECASE,
)


def graph_error(status: int, code: str, message: str) -> ApiResponse:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    request_id = str(uuid.uuid4())
    return ApiResponse(
        status,
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"date": now, "request-id": request_id, "client-request-id": request_id},
            }
        },
        {"request-id": request_id},
    )


def _user_json(person: Principal, deleted_at: str | None = None) -> JSON:
    given, _, surname = person.display_name.partition(" ")
    upn = person.upn
    if deleted_at is not None:
        upn = person.object_id.replace("-", "") + upn
    body: JSON = {
        "id": person.object_id,
        "businessPhones": [],
        "displayName": person.display_name,
        "givenName": given,
        "jobTitle": None,
        "mail": person.email or None,
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": None,
        "surname": surname or None,
        "userPrincipalName": upn,
        "otherMails": list(OTHER_MAILS.get(person.key, [])),
        "userType": "Guest"
        if person.home_tenant_id and person.home_tenant_id != person.tenant_id
        else "Member",
    }
    if deleted_at is not None:
        body["deletedDateTime"] = deleted_at
    return body


def _matcher(expression: str, advanced: bool) -> Callable[[JSON], bool] | ApiResponse:
    """A predicate for a `$filter` of or-joined clauses, or the 400 Graph answers."""
    clauses = [c.strip() for c in re.split(r"\s+or\s+", expression.strip(), flags=re.IGNORECASE)]
    tests: list[Callable[[JSON], bool]] = []
    for clause in clauses:
        match = _CLAUSE.match(clause)
        if match is None:
            return graph_error(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified: {clause}",
            )
        if match["eprop"] and not advanced:
            return graph_error(
                400,
                "Request_UnsupportedQuery",
                "Operator 'endsWith' is not supported because the 'ConsistencyLevel:eventual' header is missing. "
                "Refer to https://aka.ms/graph-docs/advanced-queries for more information",
            )
        if match["prop"]:
            tests.append(_clause("eq", _canon(match["prop"]), _unq(match["v1"])))
        elif match["v2"] is not None:
            tests.append(_clause("any", "otherMails", _unq(match["v2"])))
        else:
            tests.append(_clause("endsWith", _canon(match["eprop"]), _unq(match["v3"])))
    return lambda user: any(test(user) for test in tests)


def _clause(op: str, prop: str, value: str) -> Callable[[JSON], bool]:
    def test(user: JSON) -> bool:
        if op == "any":
            return value in [str(m).lower() for m in user.get(prop) or []]
        actual = str(user.get(prop) or "").lower()
        return actual == value if op == "eq" else actual.endswith(value)

    return test


def _canon(prop: str) -> str:
    return {"id": "id", "mail": "mail", "userprincipalname": "userPrincipalName"}[prop.lower()]


def _unq(value: str) -> str:
    return value.replace("''", "'").lower()


class GraphDirectory:
    """The tenant's users as Microsoft Graph shows them, and the users deleted from Entra ID."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.deleted: dict[str, str] = {}  # person key -> deletedDateTime

    def soft_delete(self, key: str, days_ago: int = 3) -> None:
        if key not in self.tenant.people:
            raise KeyError(key)
        when = dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)
        self.deleted[key] = when.strftime("%Y-%m-%dT%H:%M:%SZ")

    def restore(self, key: str) -> None:
        self.deleted.pop(key, None)

    def _users(self, deleted: bool) -> list[JSON]:
        people = sorted(self.tenant.people.values(), key=lambda p: p.object_id)
        return [
            _user_json(p, self.deleted.get(p.key) if deleted else None)
            for p in people
            if p.kind == "User" and (p.key in self.deleted) == deleted
        ]

    # -- the routes ---------------------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str]
    ) -> ApiResponse:
        """The answer to one authenticated, authorised call (path after the host; header names in lower case)."""
        if method != "GET":
            return graph_error(405, "Request_BadRequest", f"The HTTP method '{method}' is not allowed here.")
        parts = [unquote(p) for p in path.strip("/").split("/")]
        q = {k.lower(): v for k, v in query.items()}
        advanced = (
            str(headers.get("consistencylevel") or "").lower() == "eventual"
            and q.get("$count", "").lower() == "true"
        )
        select = [s.strip() for s in q.get("$select", "").split(",") if s.strip()]
        if parts[:1] != ["v1.0"]:
            return graph_error(400, "Request_BadRequest", "Invalid version: use v1.0.")
        rest = parts[1:]
        if rest == ["users"]:
            return self._list(self._users(False), q, select, advanced, "users")
        if len(rest) == 2 and rest[0] == "users":
            key = rest[1]
            if key.startswith("('") and key.endswith("')"):  # /users('upn') for a UPN starting with $
                key = key[2:-2].replace("''", "'")
            for user in self._users(False):
                if key.lower() in (str(user["id"]).lower(), str(user["userPrincipalName"]).lower()):
                    return ApiResponse(200, self._entity(user, select, "users"))
            return self._not_found(key)
        if rest[:2] == ["directory", "deletedItems"]:
            if len(rest) == 3 and rest[2] == "microsoft.graph.user":
                return self._list(
                    self._users(True), q, select, advanced, "directory/deletedItems/microsoft.graph.user"
                )
            if len(rest) == 3:
                for user in self._users(True):
                    if rest[2].lower() == str(user["id"]).lower():
                        body = self._entity(user, select, "directoryObjects")
                        return ApiResponse(200, {**body, "@odata.type": "#microsoft.graph.user"})
                return self._not_found(rest[2])
            return graph_error(
                400,
                "Request_BadRequest",
                "The OData cast type is a required part of the URI: /directory/deletedItems/microsoft.graph.user.",
            )
        return graph_error(
            400, "Request_BadRequest", f"Resource not found for the segment '{rest[0] if rest else ''}'."
        )

    @staticmethod
    def _not_found(key: str) -> ApiResponse:
        return graph_error(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
        )

    @staticmethod
    def _project(user: JSON, select: list[str]) -> JSON:
        if not select:
            return {k: user[k] for k in DEFAULT_PROPERTIES if k in user} | (
                {"deletedDateTime": user["deletedDateTime"]} if "deletedDateTime" in user else {}
            )
        return {k: user.get(k) for k in select if k in user or k in ("id",)}

    def _entity(self, user: JSON, select: list[str], entity_set: str) -> JSON:
        shape = f"({','.join(select)})" if select else ""
        return {"@odata.context": f"{ROOT}#{entity_set}{shape}/$entity", **self._project(user, select)}

    def _list(
        self, users: list[JSON], q: Mapping[str, str], select: list[str], advanced: bool, entity_set: str
    ) -> ApiResponse:
        expression = q.get("$filter")
        if expression:
            matcher = _matcher(expression, advanced)
            if isinstance(matcher, ApiResponse):
                return matcher
            users = [u for u in users if matcher(u)]
        shape = f"({','.join(select)})" if select else ""
        body: dict[str, Any] = {"@odata.context": f"{ROOT}#{entity_set}{shape}"}
        if q.get("$count", "").lower() == "true" and advanced:
            body["@odata.count"] = len(users)
        body["value"] = [self._project(u, select) for u in users]
        return ApiResponse(200, body)
