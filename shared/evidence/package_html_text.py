"""How values read on `index.html` (shared/evidence/package_html.py): escaped as HTML text, times as people read
them, record fields by dotted path, what a record was tied to the person by, workspace labels, family titles, and
the small blocks built of them (a list of facts, a what/why/what-to-do table, the identifiers a request used).

Every value that comes from a record, the manifest or the request goes through `esc`: records are untrusted (a
model may well be named `<script>`).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from shared.aml.catalog import FAMILY_TITLES

MATCHED_BY: Final[dict[str, str]] = {
    "createdBy.userObjectId": "your Entra object id as creator",
    "createdBy.upn": "your user name (UPN) as creator",
    "systemData.createdBy": "you as creator (Azure Resource Manager)",
    "properties.properties.createdBy.userId": "your Entra object id as the compute instance's creator",
    "properties.properties.personalComputeInstanceSettings.assignedUser.objectId": (
        "your Entra object id as the compute instance's assigned user"
    ),
    "CreatedBy.UserObjectId": "your Entra object id as the pipeline module's creator",
}

_FRACTION = re.compile(r"(?<=:\d\d)\.\d+")
_CONTROL = {c: "\ufffd" for c in (*range(0, 9), 11, 12, *range(14, 32), 127)}


def esc(value: object) -> str:
    """Any value as HTML text: escaped (quotes too, so it is safe in attributes), control characters replaced."""
    if value is None:
        return ""
    if not isinstance(value, str):
        value = (
            json.dumps(value, ensure_ascii=False, sort_keys=True)
            if isinstance(value, dict | list)
            else str(value)
        )
    return html.escape(value.translate(_CONTROL), quote=True)


_COMPACT: Final = json.JSONEncoder(ensure_ascii=False, sort_keys=True)  # no indent: the C encoder does it


def pretty(record: Mapping[str, Any]) -> str:
    """A record's JSON with one top-level field per line and each value compact: as readable for records of
    this shape as a fully indented dump, and several times faster (indented, json runs in pure Python)."""
    if not record:
        return "{}"
    fields = (
        f"  {_COMPACT.encode(str(key))}: {_COMPACT.encode(value)}" for key, value in sorted(record.items())
    )
    return "{\n" + ",\n".join(fields) + "\n}"


def field(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a record (`properties.computeType`), None where the path ends early."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def first_value(record: Mapping[str, Any], paths: Iterable[str]) -> str | None:
    """The first of `paths` that holds something in the record, as text (JSON when not a string)."""
    for path in paths:
        value = field(record, path)
        if value not in (None, "", [], {}):
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return None


def when(value: object) -> str:
    """An ISO time as people read it (`2024-05-01 12:00 UTC`), or the text as given."""
    if not isinstance(value, str) or not value:
        return ""
    text = _FRACTION.sub("", value.replace("T", " ", 1))
    if text.endswith("Z"):
        text = text[:-1] + " UTC"
    elif text.endswith("+00:00"):
        text = text[:-6] + " UTC"
    return text


def matched_on(reason: object) -> str:
    """What a record was tied to the person by (its `matchedBy`, fields joined by `;`), in plain words."""
    if not isinstance(reason, str):
        return ""
    return "; ".join(MATCHED_BY.get(part.strip(), part.strip()) for part in reason.split(";"))


def family_title(family: str) -> str:
    """The family's name as the page shows it (`models` -> its catalog title)."""
    return FAMILY_TITLES.get(family, family.capitalize())


def workspace_label(arm_id: object) -> str:
    """`ws (resource group rg, subscription sub)` from a workspace ARM id."""
    if not isinstance(arm_id, str):
        return ""
    parts = arm_id.strip("/").split("/")
    lower = [p.lower() for p in parts]
    try:
        sub = parts[lower.index("subscriptions") + 1]
        rg = parts[lower.index("resourcegroups") + 1]
        ws = parts[lower.index("workspaces") + 1]
    except (ValueError, IndexError):
        return arm_id
    return f"{ws} (resource group {rg}, subscription {sub})"


_SOURCES: Final = {
    "request": "given in the request",
    "graph": "from Microsoft Entra ID (Microsoft Graph)",
    "graph-deleted-items": "from Microsoft Entra ID's recently deleted users (Microsoft Graph)",
}
_KIND_NAMES: Final = {"objectId": "object id", "userPrincipalName": "UPN", "email": "e-mail address"}


def identity_lines(identity: Mapping[str, Any] | None) -> list[str]:
    """The identifiers the request used and where each came from, and the kinds still missing (the manifest's
    `request.identity`, see shared/aml/identity.py)."""
    if not identity:
        return []
    lines = [
        f"{_KIND_NAMES.get(str(i.get('kind')), 'other e-mail address')} {i.get('value')}: "
        f"{_SOURCES.get(str(i.get('source')), i.get('source'))}"
        for i in identity.get("identifiers") or []
    ]
    graph = identity.get("graph") or {}
    if graph.get("outcome") not in (None, "resolved", "resolved from deleted items"):
        detail = f" ({graph['detail']})" if graph.get("detail") else ""
        lines.append(f"Microsoft Graph: {graph.get('outcome')}{detail}")
    lines += [f"Not known: {m.get('effect')}" for m in identity.get("missing") or []]
    return lines


def facts(rows: Iterable[tuple[str, object]]) -> Iterator[str]:
    """A list of (label, value) as a definition list; empty values left out."""
    yield '<dl class="facts">'
    for label, value in rows:
        if value not in (None, "", [], {}):
            yield f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>"
    yield "</dl>"


def what_why_how(items: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """A table of what cannot be exported or erased, why, and the manual step (`what`, `why`, `manual_step`)."""
    yield "<table><thead><tr><th>What</th><th>Why</th><th>What to do</th></tr></thead><tbody>\n"
    for item in items:
        yield (
            f"<tr><td>{esc(item.get('what'))}</td><td>{esc(item.get('why'))}</td>"
            f"<td>{esc(item.get('manual_step'))}</td></tr>\n"
        )
    yield "</tbody></table>\n"
