"""The page's building blocks without a browser or storage: JSON Lines read across chunk boundaries only as far
as needed, values escaped, and the caps on rows."""

from __future__ import annotations

from shared.evidence import package_html_tables
from shared.evidence.package import jsonl
from shared.evidence.package_html import render_index
from shared.evidence.package_html_tables import records_of
from shared.evidence.package_html_text import esc, when


def chunked(data: bytes, size: int):
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_records_are_read_across_chunk_boundaries_and_only_as_far_as_needed():
    lines = [{"record": {"name": f"m{i}", "text": "é" * i}} for i in range(50)]
    data = jsonl(lines)
    read: list[int] = []

    def source():
        for chunk in chunked(data, 7):  # splits lines and multi-byte characters
            read.append(len(chunk))
            yield chunk

    assert list(records_of(source(), 10)) == lines[:10]
    assert sum(read) < len(jsonl(lines[:11])) + 7  # stopped right after the tenth line
    assert list(records_of(chunked(data.rstrip(b"\n"), 5), 100)) == lines  # no newline at the end


def test_a_line_too_long_or_not_json_becomes_none_without_being_held(monkeypatch):
    monkeypatch.setattr(package_html_tables, "MAX_LINE_BYTES", 100)
    data = b'{"a": 1}\n' + b"x" * 1000 + b"\n" + b"not json\n" + b'{"b": 2}\n'
    assert list(records_of(chunked(data, 64), 10)) == [{"a": 1}, None, None, {"b": 2}]


def test_values_are_escaped_as_text():
    assert esc("<script>alert('x')</script>") == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    assert esc('"><img src=x>') == "&quot;&gt;&lt;img src=x&gt;"
    assert esc("a\x00b\x1bc") == "a\ufffdb\ufffdc"
    assert esc({"k": "<b>"}) == "{&quot;k&quot;: &quot;&lt;b&gt;&quot;}"
    assert when("2024-05-01T12:00:00.123456Z") == "2024-05-01 12:00:00 UTC"


def page(records: int, rows_per_file: int, max_rows: int) -> str:
    data = {
        f"r/s/g/w{n}/models.jsonl": jsonl(
            [
                {"endpoint": "E16", "matchedBy": "createdBy.upn", "record": {"name": f"w{n}-m{i}"}}
                for i in range(records)
            ]
        )
        for n in range(3)
    }
    manifest = {
        "request": {"id": "r", "type": "export"},
        "files": [
            {"family": "models", "path": path, "records": records, "sha256": "ab" * 32} for path in data
        ],
        "notCovered": [],
    }
    entries = {path: path.removeprefix("r/") for path in data}
    return "".join(render_index(manifest, None, entries, lambda p: chunked(data[p], 1000), "cd" * 32,
                                rows_per_file=rows_per_file, max_rows=max_rows))  # fmt: skip


def test_rows_are_capped_per_file_and_in_all_and_the_rest_is_pointed_to():
    html = page(records=30, rows_per_file=20, max_rows=45)
    assert html.count("<summary>Show the record</summary>") == 20 + 20 + 5
    assert "w1-m19" in html
    assert "w1-m20" not in html
    assert (
        "Only the first 5 of 30 records are shown here. The other 25 are in <code>s/g/w2/models.jsonl</code>"
        in html
    )
    assert "w2-m4" in html
    assert "w2-m5" not in html
    assert html.count("ab" * 32) == 3
    assert "cd" * 32 in html


def test_a_file_past_the_page_cap_is_counted_not_read():
    opened: list[str] = []
    data = jsonl([{"record": {"name": "m"}}] * 3)

    def read(path: str):
        opened.append(path)
        return chunked(data, 100)

    manifest = {
        "request": {"id": "r", "type": "export"},
        "files": [{"family": "models", "path": f"r/f{i}.jsonl", "records": 3} for i in range(2)],
    }
    html = "".join(
        render_index(manifest, None, {f"r/f{i}.jsonl": f"f{i}.jsonl" for i in range(2)}, read, max_rows=3)
    )
    assert opened == ["r/f0.jsonl"]
    assert "This page shows at most 3 records, so none of these are shown here." in html
