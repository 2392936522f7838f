"""The tables of rows on `index.html` (shared/evidence/package_html.py), under one budget of rows for the page:
an erasure's objects first, then the records of each export file.

A file's records are shown a few useful columns each, with the whole record under "Show the record"; the JSON
Lines file is read again only as far as the rows shown (`records_of`), so the page's memory does not grow with
the size of the export. Rows beyond the caps are counted and pointed to in the package's files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from shared.evidence.package_html_text import (
    esc,
    family_title,
    first_value,
    matched_on,
    pretty,
    what_why_how,
    when,
    workspace_label,
)

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
OUTCOMES: Final[dict[str, str]] = {
    "deleted": "Deleted, and confirmed gone",
    "purged": "Workspace permanently deleted (purged), and confirmed gone",
    "already gone": "Already gone when we asked",
    "would delete": "Would be deleted (dry run: nothing was deleted)",
    "blocked": "Kept: another person's object still uses it",
    "still visible": "Deletion sent, but it could still be read afterwards",
}


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


class Tables:
    """The page's tables of rows and how many rows are left to show in the whole page. `files` are the
    manifest's files in the package, `families` their families in the page's order."""

    def __init__(
        self,
        files: list[Mapping[str, Any]],
        families: list[str],
        entries: Mapping[str, str],
        read_chunks: ReadChunks,
        rows_per_file: int,
        max_rows: int,
    ) -> None:
        self.files = files
        self.families = families
        self.entries = entries
        self.read_chunks = read_chunks
        self.rows_per_file = rows_per_file
        self.rows_left = max_rows
        self.max_rows = max_rows

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
            yield (
                f'<h3 id="family-{esc(family)}">{esc(family_title(family))} '
                f'<span class="muted">({total})</span></h3>\n'
            )
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
        where = workspace_label(info.get("workspace"))
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
        name = first_value(record, NAME_FIELDS) or ""
        ident = first_value(record, ID_FIELDS)
        name_cell = esc(name)
        if ident and ident != name:
            name_cell += f'<br><span class="muted"><code>{esc(ident)}</code></span>'
        text = pretty(record)
        if len(text) > MAX_RECORD_CHARS:
            text = text[:MAX_RECORD_CHARS] + f"\n... (cut here; the whole record is in {entry})"
        cells = [name_cell, esc(when(first_value(record, CREATED_FIELDS)))]
        if extra:
            cells.append(esc(first_value(record, (extra[1],)) or ""))
        cells.append(esc(matched_on(line.get("matchedBy"))))
        cells.append(
            "<details><summary>Show the record</summary>"
            f'<p class="muted">Read from {esc(line.get("endpoint"))}'
            + (f" in {esc(workspace_label(line.get('workspace')))}" if line.get("workspace") else "")
            + f"</p><pre>{esc(text)}</pre></details>"
        )
        return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>\n"

    def erasure(self, record: Mapping[str, Any], dry_run: bool) -> Iterator[str]:
        """The section of an erasure: outcomes per family, the objects (as many as the rows left allow), what
        could not be handled and what these APIs cannot erase."""
        items = record.get("items") or []
        yield '<section id="erasure">\n<h2>What was deleted</h2>\n'
        if dry_run:
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
                        f"<tr><td>{esc(family_title(str(family)))}</td>"
                        f"<td>{esc(OUTCOMES.get(outcome, outcome))}</td>"
                        f'<td class="num">{esc(number)}</td></tr>'
                    )
            yield "</tbody></table>\n"
        yield from self.erased_objects(items)
        failed = record.get("failedTasks") or []
        if failed:
            yield '<div class="note warn"><p>Some workspaces could not be handled completely:</p><ul>'
            for item in failed:
                where = workspace_label(item.get("workspace")) or "the whole scope"
                yield f"<li>{esc(where)}: {esc(item.get('reason') or 'failed')}</li>"
            yield "</ul></div>\n"
        not_erasable = record.get("notErasable") or []
        if not_erasable:
            yield (
                "<h3>What these APIs cannot erase</h3>\n<p>These kinds of data cannot be deleted one person at a "
                "time through the Azure Machine Learning APIs; each needs the step named here.</p>\n"
            )
            yield from what_why_how(not_erasable)
        yield "</section>\n"

    def erased_objects(self, items: list[Mapping[str, Any]]) -> Iterator[str]:
        """An erasure's objects with their outcome, as many as the rows left allow; the rest are counted."""
        if not items:
            yield "<p>No object in the scope of this request was tied to you, so nothing was deleted.</p>\n"
            return
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
                f"<tr><td>{esc(family_title(str(item.get('family'))))}</td><td>{name_cell}</td>"
                f"<td>{esc(workspace_label(item.get('workspace')))}</td>"
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
