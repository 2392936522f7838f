"""`index.html`: the page of the package a person opens first, offline, in any browser.

Self-contained (inline CSS, no script, no external address; a Content-Security-Policy forbids anything else),
in plain language: what the package is, what was found per kind of object, the records in tables (a few
useful columns and the whole record under "Show the record"), for an erasure what was deleted and what could
not be, what these APIs cannot export, and how to check the files against manifest.json.

Every value that comes from a record, the manifest or the request is HTML-escaped: records are untrusted (a
model may well be named `<script>`). The page is produced as a stream of str pieces, reading each JSON Lines
file again only as far as the rows it shows, so its memory does not grow with the size of the export.

This module is the page's skeleton: its head and CSS, the introduction, the summary, what cannot be exported
and how to check the files. The tables of rows are shared/evidence/package_html_tables.py, the escaping and
wording of values shared/evidence/package_html_text.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from shared.aml.catalog import FAMILY_TITLES
from shared.evidence.package_html_tables import MAX_ROWS, ROWS_PER_FILE, ReadChunks, Tables
from shared.evidence.package_html_text import (
    esc,
    facts,
    family_title,
    identity_lines,
    what_why_how,
    when,
    workspace_label,
)

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


class _Page:
    """The page while it streams: the request, the files in the package, and the tables of rows (which keep
    the count of rows left to show in the whole page)."""

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
        self.manifest_sha256 = manifest_sha256
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
        self.tables = Tables(self.files, self.families, entries, read_chunks, rows_per_file, max_rows)

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
            yield from self.tables.erasure(self.record, self.dry_run)
        if self.files:
            yield from self.tables.records()
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
        yield from facts(
            (
                ("Request", request.get("id")),
                ("Reference", request.get("reference")),
                ("Kind", "erasure" if self.is_erasure else "export"),
                ("About", ", ".join(dict.fromkeys(str(v) for v in subject.values() if v))),
                ("Received", when(request.get("receivedAt"))),
                ("Due", when(request.get("dueAt"))),
                ("Package made", when(self.manifest.get("generatedAt"))),
                ("Workspaces", ", ".join(workspace_label(w) for w in scope.get("workspaces") or [])),
                ("Resource groups", ", ".join(str(g) for g in scope.get("resourceGroups") or [])),
                ("Subscriptions", ", ".join(str(s) for s in scope.get("subscriptions") or [])),
            )
        )
        identified = identity_lines(request.get("identity"))
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
                    f'<tr><td><a href="#family-{esc(family)}">{esc(family_title(family))}</a></td>'
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
                where = workspace_label(item.get("workspace")) or "the whole scope"
                yield (
                    f"<li>{esc(family_title(str(item.get('family'))))} in {esc(where)}: "
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
                f'<tr><td>{esc(family_title(str(name)))}</td><td class="num">{esc(counts.get("seen", 0))}</td>'
                f'<td class="num">{esc(counts.get("kept", 0))}</td>'
                f'<td class="num">{esc(counts.get("calls", 0))}</td></tr>'
            )
        yield "</tbody></table></details>\n"

    # -- the rest -----------------------------------------------------------------------------------------
    def not_covered(self) -> Iterator[str]:
        yield (
            '<section id="not-covered">\n<h2>What this package cannot contain</h2>\n<p>Some data about you '
            "is not reachable through the Azure Machine Learning APIs this package was made with. This is "
            "what it is and how to get it:</p>\n"
        )
        yield from what_why_how(self.manifest.get("notCovered") or [])
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
    return _Page(manifest, None, entries, lambda path: (), None, rows_per_file, max_rows).tables.files_read()
