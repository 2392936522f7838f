"""`index.html`: the page of the package a person opens first, offline, in any browser.

Self-contained (inline CSS, no script, no external address; a Content-Security-Policy forbids anything else),
in plain language: what the package is, what was found per kind of object, the records in tables (a few
useful columns and the whole record under "Show the record"), for an erasure what was deleted and what could
not be, what these APIs cannot export, and how to check the files against manifest.json.

Every value that comes from a record, the manifest or the request is HTML-escaped: records are untrusted (a
model may well be named `<script>`). The page is produced as a stream of str pieces, reading each JSON Lines
file again only as far as the rows it shows, so its memory does not grow with the size of the export.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from shared.aml.catalog import FAMILY_TITLES

ROWS_PER_FILE: Final = 200  # rows shown per file; the rest are counted and pointed to
MAX_ROWS: Final = 5000  # rows shown in the whole page (a browser must still open it)
MAX_LINE_BYTES: Final = 8 * 2**20  # a record line longer than this is not parsed for the page
MAX_RECORD_CHARS: Final = 64 * 1024  # a record's JSON shown under "Show the record" is cut after this

ReadChunks = Callable[[str], Iterable[bytes]]

# Columns beyond name, created and matched-on: (heading, dotted field) per family.
EXTRA_COLUMN: Final[dict[str, tuple[str, str]]] = {
    "workspace": ("Region", "location"),
    "computes": ("Type", "properties.computeType"),
    "experiments": ("Description", "description"),
    "runs": ("Status", "status"),
    "metrics": ("Run", "runId"),
    "artifacts": ("Run", "container"),
    "notifications": ("Run", "runId"),
    "datastores": ("Type", "dataStoreType"),
    "models": ("Version", "version"),
    "images": ("Version", "version"),
    "services": ("State", "state"),
    "assets": ("Description", "description"),
}
NAME_FIELDS: Final = ("name", "displayName", "path", "runId", "metricId", "experimentId", "id")
ID_FIELDS: Final = ("id", "runId", "metricId", "artifactId", "experimentId")
CREATED_FIELDS: Final = (
    "createdTime",
    "createdUtc",
    "createdDate",
    "createdAt",
    "properties.createdOn",
    "properties.creationTime",
    "systemData.createdAt",
    "startTimeUtc",
)
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
OUTCOMES: Final[dict[str, str]] = {
    "deleted": "Deleted, and confirmed gone",
    "purged": "Workspace permanently deleted (purged), and confirmed gone",
    "already gone": "Already gone when we asked",
    "would delete": "Would be deleted (dry run: nothing was deleted)",
    "blocked": "Kept: another person's object still uses it",
    "still visible": "Deletion sent, but it could still be read afterwards",
}

CSS: Final = """
:root { color-scheme: light; --ink: #1b1b1f; --muted: #5b5b66; --line: #d8d8e0; --band: #f4f5f8;
  --accent: #0b5cad; --warn: #8a4b00; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  background: #fff; }
main { max-width: 70rem; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
h1 { font-size: 1.8rem; line-height: 1.2; margin: 0 0 .5rem; }
h2 { font-size: 1.35rem; margin: 2.5rem 0 .75rem; padding-bottom: .25rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.15rem; margin: 2rem 0 .5rem; }
h4 { font-size: 1rem; margin: 1.25rem 0 .25rem; }
p, ul, ol { margin: .5rem 0; }
.lead { font-size: 1.1rem; }
.muted, caption { color: var(--muted); }
.note { background: var(--band); border-left: 4px solid var(--accent); padding: .6rem .9rem; }
.warn { border-left-color: var(--warn); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 1rem 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
nav ol { columns: 2; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1rem; font-size: .95rem; }
caption { text-align: left; padding: .25rem 0; caption-side: top; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line);
  overflow-wrap: anywhere; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
code, pre { font: .85rem/1.4 ui-monospace, "Cascadia Mono", Consolas, monospace; }
code { background: var(--band); padding: 0 .2rem; border-radius: 3px; overflow-wrap: anywhere; }
pre { background: var(--band); padding: .6rem; overflow: auto; max-height: 30rem; white-space: pre-wrap;
  overflow-wrap: anywhere; margin: .4rem 0 0; }
details summary { cursor: pointer; color: var(--accent); }
@media print { details { display: none; } nav { display: none; } }
"""

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
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _first(record: Mapping[str, Any], paths: Iterable[str]) -> str | None:
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
    if not isinstance(reason, str):
        return ""
    return "; ".join(MATCHED_BY.get(part.strip(), part.strip()) for part in reason.split(";"))


def _title(family: str) -> str:
    return FAMILY_TITLES.get(family, family.capitalize())


def _workspace_label(arm_id: object) -> str:
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


def records_of(chunks: Iterable[bytes], limit: int) -> Iterator[dict[str, Any] | None]:
    """The first `limit` lines of a JSON Lines stream, parsed; None for a line too long or not JSON. Reads no
    further than it needs, and holds at most one line (up to MAX_LINE_BYTES) besides the current chunk."""
    if limit <= 0:
        return
    produced = 0
    carry = bytearray()
    skipping = False
    iterator = iter(chunks)
    try:
        for chunk in iterator:
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                if end < 0:
                    if not skipping:
                        carry += chunk[start:]
                        if len(carry) > MAX_LINE_BYTES:
                            carry.clear()
                            skipping = True
                    break
                if skipping:
                    skipping = False
                    yield None
                else:
                    carry += chunk[start:end]
                    yield _parse(bytes(carry))
                    carry.clear()
                produced += 1
                if produced >= limit:
                    return
                start = end + 1
        if skipping:
            yield None
        elif carry.strip():
            yield _parse(bytes(carry))
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # stop reading the file as soon as enough rows were read


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


_SOURCES: Final = {
    "request": "given in the request",
    "graph": "from Microsoft Entra ID (Microsoft Graph)",
    "graph-deleted-items": "from Microsoft Entra ID's recently deleted users (Microsoft Graph)",
}
_KIND_NAMES: Final = {"objectId": "object id", "userPrincipalName": "UPN", "email": "e-mail address"}


def _identity_lines(identity: Mapping[str, Any] | None) -> list[str]:
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


def _facts(rows: Iterable[tuple[str, object]]) -> Iterator[str]:
    yield '<dl class="facts">'
    for label, value in rows:
        if value not in (None, "", [], {}):
            yield f"<dt>{esc(label)}</dt><dd>{esc(value)}</dd>"
    yield "</dl>"


class _Page:
    """The page's state while it streams: how many rows are left to show in the whole page."""

    def __init__(
        self,
        manifest: Mapping[str, Any],
        erasure_record: Mapping[str, Any] | None,
        entries: Mapping[str, str],
        read_chunks: ReadChunks,
        manifest_sha256: str | None,
        rows_per_file: int,
        max_rows: int,
    ) -> None:
        self.manifest = manifest
        self.record = erasure_record
        self.entries = entries
        self.read_chunks = read_chunks
        self.manifest_sha256 = manifest_sha256
        self.rows_per_file = rows_per_file
        self.rows_left = max_rows
        self.max_rows = max_rows
        request = manifest.get("request") or {}
        self.request: Mapping[str, Any] = request
        self.dry_run = bool(manifest.get("dryRun"))
        self.is_erasure = request.get("type") == "erasure" or erasure_record is not None
        self.files = [f for f in manifest.get("files") or [] if f.get("path") in entries]
        order = [name for name in FAMILY_TITLES if name != "pipelines"] + ["pipelines"]  # found through runs
        self.families = sorted(
            {str(f.get("family")) for f in self.files},
            key=lambda name: (order.index(name) if name in order else len(order), name),
        )

    # -- the page -----------------------------------------------------------------------------------------
    def title(self) -> str:
        if self.is_erasure:
            title = "Erasure of your data in Azure Machine Learning"
        elif self.request.get("wholeWorkspace"):
            title = "Export of Azure Machine Learning workspaces"
        else:
            title = "Your data in Azure Machine Learning"
        return f"Dry run: {title[0].lower()}{title[1:]}" if self.dry_run else title

    def render(self) -> Iterator[str]:
        title = self.title()
        yield (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
            '<meta name="referrer" content="no-referrer">\n'
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        )
        yield from self.intro(title)
        yield from self.contents()
        yield from self.summary()
        if self.record is not None:
            yield from self.erasure()
        if self.files:
            yield from self.records()
        yield from self.not_covered()
        yield from self.verify()
        yield "</main>\n</body>\n</html>\n"

    def intro(self, title: str) -> Iterator[str]:
        request = self.request
        subject = request.get("subject") or {}
        yield f"<header>\n<h1>{esc(title)}</h1>\n"
        if self.is_erasure and self.dry_run:
            what = (
                "This package lists what an erasure of your data would delete in Azure Machine Learning. "
                "It was a dry run: nothing was deleted."
            )
        elif self.is_erasure:
            what = (
                "This package is the record of the erasure of your data in Azure Machine Learning: what was "
                "deleted, what could not be, and why."
            )
        elif self.dry_run:
            what = (
                "This package lists what an export of your data in Azure Machine Learning would contain. It "
                "was a dry run: it names the objects but holds none of their content."
            )
        elif request.get("wholeWorkspace"):
            what = (
                "This package holds everything Azure Machine Learning keeps in the workspaces listed below."
            )
        else:
            what = (
                "This package holds a copy of the data Azure Machine Learning keeps about you: the objects "
                "you created (workspaces, experiments, runs, models and more), as they were read when this "
                "package was made."
            )
        yield f'<p class="lead">{esc(what)}</p>\n'
        scope = request.get("scope") or {}
        yield from _facts(
            (
                ("Request", request.get("id")),
                ("Reference", request.get("reference")),
                ("Kind", "erasure" if self.is_erasure else "export"),
                ("About", ", ".join(dict.fromkeys(str(v) for v in subject.values() if v))),
                ("Received", when(request.get("receivedAt"))),
                ("Due", when(request.get("dueAt"))),
                ("Package made", when(self.manifest.get("generatedAt"))),
                ("Workspaces", ", ".join(_workspace_label(w) for w in scope.get("workspaces") or [])),
                ("Resource groups", ", ".join(str(g) for g in scope.get("resourceGroups") or [])),
                ("Subscriptions", ", ".join(str(s) for s in scope.get("subscriptions") or [])),
            )
        )
        identified = _identity_lines(request.get("identity"))
        if identified:
            yield '<div class="note"><p>You were identified by:</p><ul>'
            yield "".join(f"<li>{esc(line)}</li>" for line in identified)
            yield "</ul></div>\n"
        yield (
            '<p class="note">Everything here is also in the files next to this page: <code>manifest.json</code> '
            "describes the package, and each <code>.jsonl</code> file holds one record per line (JSON Lines), "
            "which any text editor can open.</p>\n</header>\n"
        )

    def contents(self) -> Iterator[str]:
        items = [("summary", "What was found")]
        if self.record is not None:
            items.append(("erasure", "What was deleted"))
        if self.files:
            items.append(("records", "Your records"))
        items += [("not-covered", "What this package cannot contain"), ("verify", "How to check the files")]
        yield '<nav aria-label="Contents"><h2>Contents</h2><ol>'
        for anchor, label in items:
            yield f'<li><a href="#{anchor}">{esc(label)}</a></li>'
        yield "</ol></nav>\n"

    def summary(self) -> Iterator[str]:
        yield '<section id="summary">\n<h2>What was found</h2>\n'
        if self.files:
            yield (
                "<table><caption>Records per kind of object</caption><thead><tr><th>Kind</th>"
                '<th class="num">Records</th><th class="num">Files</th></tr></thead><tbody>'
            )
            for family in self.families:
                files = [f for f in self.files if f.get("family") == family]
                records = sum(int(f.get("records") or 0) for f in files)
                yield (
                    f'<tr><td><a href="#family-{esc(family)}">{esc(_title(family))}</a></td>'
                    f'<td class="num">{records}</td><td class="num">{len(files)}</td></tr>'
                )
            yield "</tbody></table>\n"
        elif self.record is not None:
            yield '<p>The objects tied to you are listed under <a href="#erasure">What was deleted</a>.</p>\n'
        else:
            yield "<p>No record in the scope of this request was tied to you.</p>\n"
        yield from self.searched()
        failed = self.manifest.get("failedTasks") or []
        if failed:
            yield (
                '<div class="note warn"><p>Some parts could not be read, so this package may be incomplete '
                "there:</p><ul>"
            )
            for item in failed:
                where = _workspace_label(item.get("workspace")) or "the whole scope"
                yield (
                    f"<li>{esc(_title(str(item.get('family'))))} in {esc(where)}: "
                    f"{esc(item.get('reason') or 'failed')}</li>"
                )
            yield "</ul></div>\n"
        pipelines = self.manifest.get("pipelineObjects") or []
        if pipelines:
            yield (
                f"<p>{len(pipelines)} pipeline object(s) were fetched because your runs point to them "
                "(see <code>pipelineObjects</code> in <code>manifest.json</code> for each one and why).</p>\n"
            )
        yield "</section>\n"

    def searched(self) -> Iterator[str]:
        families = self.manifest.get("families") or {}
        if not families:
            return
        yield (
            "<details><summary>What was searched</summary><table><thead><tr><th>Kind</th>"
            '<th class="num">Objects looked at</th><th class="num">Tied to you</th>'
            '<th class="num">Calls to Azure ML</th></tr></thead><tbody>'
        )
        for name, counts in families.items():
            yield (
                f'<tr><td>{esc(_title(str(name)))}</td><td class="num">{esc(counts.get("seen", 0))}</td>'
                f'<td class="num">{esc(counts.get("kept", 0))}</td>'
                f'<td class="num">{esc(counts.get("calls", 0))}</td></tr>'
            )
        yield "</tbody></table></details>\n"

    # -- the records --------------------------------------------------------------------------------------
    def records(self) -> Iterator[str]:
        yield (
            '<section id="records">\n<h2>Your records</h2>\n<p>Each table shows a few columns of each record; '
            '"Show the record" opens the whole record as it was exported. '
            f"At most {self.rows_per_file} records are shown per file and {self.max_rows} in all; every record "
            "is in the files of this package.</p>\n"
        )
        for family in self.families:
            files = [f for f in self.files if f.get("family") == family]
            total = sum(int(f.get("records") or 0) for f in files)
            yield f'<h3 id="family-{esc(family)}">{esc(_title(family))} <span class="muted">({total})</span></h3>\n'
            for info in files:
                yield from self.file_table(family, info)
        yield "</section>\n"

    def files_read(self) -> list[str]:
        """The paths records() may read, in its order: every file until the page's rows run out (a few more
        when an erasure's table takes some of the rows first)."""
        paths, left = [], self.max_rows
        for family in self.families:
            for info in self.files:
                if left > 0 and info.get("family") == family and int(info.get("records") or 0) > 0:
                    paths.append(str(info["path"]))
                    left -= min(self.rows_per_file, int(info.get("records") or 0))
        return paths

    def file_table(self, family: str, info: Mapping[str, Any]) -> Iterator[str]:
        entry = self.entries[info["path"]]
        count = int(info.get("records") or 0)
        parts = entry.split("/")
        where = _workspace_label(info.get("workspace"))
        experiment = parts[4] if len(parts) >= 6 and parts[3] == "experiments" else None
        heading = where + (f", experiment {experiment}" if experiment else "")
        if heading:
            yield f"<h4>{esc(heading)}</h4>\n"
        shown_max = min(self.rows_per_file, self.rows_left, count)
        extra = EXTRA_COLUMN.get(family)
        yield (
            f"<table><caption>File <code>{esc(entry)}</code>: {count} record(s)</caption><thead><tr>"
            "<th>Name</th><th>Created</th>"
            + (f"<th>{esc(extra[0])}</th>" if extra else "")
            + "<th>Tied to you by</th><th>Record</th></tr></thead><tbody>\n"
        )
        shown = 0
        if shown_max > 0:
            for line in records_of(self.read_chunks(info["path"]), shown_max):
                shown += 1
                yield self.row(line, extra, entry)
        self.rows_left -= shown
        yield "</tbody></table>\n"
        if shown < count:
            rest = count - shown
            why = (
                f"Only the first {shown} of {count} records are shown here."
                if shown
                else f"This page shows at most {self.max_rows} records, so none of these are shown here."
            )
            yield (
                f'<p class="note">{esc(why)} The other {rest} are in <code>{esc(entry)}</code> in this '
                "package.</p>\n"
            )

    def row(self, line: dict[str, Any] | None, extra: tuple[str, str] | None, entry: str) -> str:
        columns = 5 if extra else 4
        if line is None:
            return (
                f'<tr><td colspan="{columns}">This record is too large or not readable here; it is in '
                f"<code>{esc(entry)}</code>.</td></tr>\n"
            )
        record = line.get("record")
        record = record if isinstance(record, dict) else {"value": record}
        name = _first(record, NAME_FIELDS) or ""
        ident = _first(record, ID_FIELDS)
        name_cell = esc(name)
        if ident and ident != name:
            name_cell += f'<br><span class="muted"><code>{esc(ident)}</code></span>'
        text = pretty(record)
        if len(text) > MAX_RECORD_CHARS:
            text = text[:MAX_RECORD_CHARS] + f"\n... (cut here; the whole record is in {entry})"
        cells = [name_cell, esc(when(_first(record, CREATED_FIELDS)))]
        if extra:
            cells.append(esc(_first(record, (extra[1],)) or ""))
        cells.append(esc(matched_on(line.get("matchedBy"))))
        cells.append(
            "<details><summary>Show the record</summary>"
            f'<p class="muted">Read from {esc(line.get("endpoint"))}'
            + (f" in {esc(_workspace_label(line.get('workspace')))}" if line.get("workspace") else "")
            + f"</p><pre>{esc(text)}</pre></details>"
        )
        return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>\n"

    # -- erasure ------------------------------------------------------------------------------------------
    def erasure(self) -> Iterator[str]:
        record = self.record or {}
        items = record.get("items") or []
        yield '<section id="erasure">\n<h2>What was deleted</h2>\n'
        if self.dry_run:
            yield "<p>This was a dry run: the objects below would be deleted; nothing was.</p>\n"
        else:
            yield (
                "<p>Each object below was tied to you. After each deletion it was read again until Azure ML "
                "answered that it no longer exists. The full record, with the time of every step, is in "
                "<code>erasure-record.json</code>.</p>\n"
            )
        counts = record.get("counts") or {}
        if counts:
            yield (
                "<table><caption>Outcomes per kind of object</caption><thead><tr><th>Kind</th><th>Outcome</th>"
                '<th class="num">Objects</th></tr></thead><tbody>'
            )
            for family, outcomes in counts.items():
                for outcome, number in sorted(outcomes.items()):
                    yield (
                        f"<tr><td>{esc(_title(str(family)))}</td><td>{esc(OUTCOMES.get(outcome, outcome))}</td>"
                        f'<td class="num">{esc(number)}</td></tr>'
                    )
            yield "</tbody></table>\n"
        if not items:
            yield "<p>No object in the scope of this request was tied to you, so nothing was deleted.</p>\n"
        else:
            limit = min(len(items), max(self.rows_left, 0))
            yield (
                "<table><caption>Objects</caption><thead><tr><th>Kind</th><th>Name</th><th>Workspace</th>"
                "<th>Tied to you by</th><th>Outcome</th></tr></thead><tbody>\n"
            )
            for item in items[:limit]:
                ident = item.get("id")
                name_cell = esc(item.get("name") or ident)
                if ident and ident != item.get("name"):
                    name_cell += f'<br><span class="muted"><code>{esc(ident)}</code></span>'
                outcome = str(item.get("outcome") or "")
                yield (
                    f"<tr><td>{esc(_title(str(item.get('family'))))}</td><td>{name_cell}</td>"
                    f"<td>{esc(_workspace_label(item.get('workspace')))}</td>"
                    f"<td>{esc(matched_on(item.get('matchedBy')))}</td>"
                    f"<td>{esc(OUTCOMES.get(outcome, outcome))}</td></tr>\n"
                )
            self.rows_left -= limit
            yield "</tbody></table>\n"
            if limit < len(items):
                yield (
                    f'<p class="note">{len(items) - limit} more object(s) are listed in '
                    "<code>erasure-record.json</code>.</p>\n"
                )
        failed = record.get("failedTasks") or []
        if failed:
            yield '<div class="note warn"><p>Some workspaces could not be handled completely:</p><ul>'
            for item in failed:
                where = _workspace_label(item.get("workspace")) or "the whole scope"
                yield f"<li>{esc(where)}: {esc(item.get('reason') or 'failed')}</li>"
            yield "</ul></div>\n"
        not_erasable = record.get("notErasable") or []
        if not_erasable:
            yield (
                "<h3>What these APIs cannot erase</h3>\n<p>These kinds of data cannot be deleted one person at a "
                "time through the Azure Machine Learning APIs; each needs the step named here.</p>\n"
            )
            yield from _what_why_how(not_erasable)
        yield "</section>\n"

    # -- the rest -----------------------------------------------------------------------------------------
    def not_covered(self) -> Iterator[str]:
        yield (
            '<section id="not-covered">\n<h2>What this package cannot contain</h2>\n<p>Some data about you '
            "is not reachable through the Azure Machine Learning APIs this package was made with. This is "
            "what it is and how to get it:</p>\n"
        )
        yield from _what_why_how(self.manifest.get("notCovered") or [])
        yield "</section>\n"

    def verify(self) -> Iterator[str]:
        yield (
            '<section id="verify">\n<h2>How to check the files</h2>\n<p>Each file of this package has a '
            "fingerprint (its SHA-256 hash), listed in <code>manifest.json</code> (under <code>files</code>, "
            "then <code>sha256</code>) and below. If a file was changed, even by one character, its "
            "fingerprint changes. To compute a file's fingerprint, open a terminal in the folder where you "
            "unpacked this package and run:</p>\n<ul>"
            "<li>Windows (PowerShell): <code>Get-FileHash -Algorithm SHA256 &lt;file&gt;</code></li>"
            "<li>macOS: <code>shasum -a 256 &lt;file&gt;</code></li>"
            "<li>Linux: <code>sha256sum &lt;file&gt;</code></li></ul>\n"
            "<p>The result must equal the value listed for that file (letter case does not matter).</p>\n"
            '<table><caption>Files and their SHA-256</caption><thead><tr><th>File</th><th class="num">Records'
            '</th><th class="num">Bytes</th><th>SHA-256</th></tr></thead><tbody>\n'
        )
        if self.manifest_sha256:
            yield (
                f'<tr><td><code>manifest.json</code></td><td class="num"></td><td class="num"></td>'
                f"<td><code>{esc(self.manifest_sha256)}</code></td></tr>\n"
            )
        erasure = self.manifest.get("erasureRecord")
        if self.record is not None and isinstance(erasure, Mapping):
            yield (
                f'<tr><td><code>erasure-record.json</code></td><td class="num"></td>'
                f'<td class="num">{esc(erasure.get("bytes"))}</td>'
                f"<td><code>{esc(erasure.get('sha256'))}</code></td></tr>\n"
            )
        for info in self.files:
            yield (
                f"<tr><td><code>{esc(self.entries[info['path']])}</code></td>"
                f'<td class="num">{esc(info.get("records"))}</td><td class="num">{esc(info.get("bytes"))}</td>'
                f"<td><code>{esc(info.get('sha256'))}</code></td></tr>\n"
            )
        yield "</tbody></table>\n"
        if self.manifest_sha256:
            yield (
                '<p class="muted">The fingerprint of <code>manifest.json</code> is the one it had when this '
                "package was made; the manifest cannot list its own.</p>\n"
            )
        yield "</section>\n"


def _what_why_how(items: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    yield "<table><thead><tr><th>What</th><th>Why</th><th>What to do</th></tr></thead><tbody>\n"
    for item in items:
        yield (
            f"<tr><td>{esc(item.get('what'))}</td><td>{esc(item.get('why'))}</td>"
            f"<td>{esc(item.get('manual_step'))}</td></tr>\n"
        )
    yield "</tbody></table>\n"


def render_index(
    manifest: Mapping[str, Any],
    erasure_record: Mapping[str, Any] | None,
    entries: Mapping[str, str],
    read_chunks: ReadChunks,
    manifest_sha256: str | None = None,
    *,
    rows_per_file: int = ROWS_PER_FILE,
    max_rows: int = MAX_ROWS,
) -> Iterator[str]:
    """The page as str pieces. `entries` maps each file's blob path to its name in the package (files not in
    it are left out); `read_chunks(path)` gives a file's bytes in chunks (read only as far as the rows shown)."""
    return _Page(
        manifest, erasure_record, entries, read_chunks, manifest_sha256, rows_per_file, max_rows
    ).render()


def files_shown(
    manifest: Mapping[str, Any],
    entries: Mapping[str, str],
    *,
    rows_per_file: int = ROWS_PER_FILE,
    max_rows: int = MAX_ROWS,
) -> list[str]:
    """The paths of the files whose rows render_index() may read, in the order it reads them (so a caller can
    fetch them ahead)."""
    return _Page(manifest, None, entries, lambda path: (), None, rows_per_file, max_rows).files_read()
