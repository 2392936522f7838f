"""The package's index.html as a person sees it: extracted from a package written on Azurite and opened from
disk in headless Chromium (the Debian package `chromium`). The rendered DOM shows the title, the families'
headings and the records, and a record value that is markup shows as text without adding any element."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from shared.evidence.package_zip import write_package
from tests.integration.conftest import make_runtime, rt  # noqa: F401 - the Runtime on keyless Azurite
from tests.integration.test_package_zip import (
    HOSTILE_DESCRIPTION,
    HOSTILE_NAME,
    download,
    export_with_hostile_model,
)

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def need_chromium() -> Path:
    """The browser; without it the test fails saying how to get it, or skips when told to."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.environ.get("DSR_SKIP_BROWSER_TESTS") == "1":
        pytest.skip("DSR_SKIP_BROWSER_TESTS=1 and /usr/bin/chromium is not installed")
    pytest.fail(
        f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium), or set "
        "DSR_SKIP_BROWSER_TESTS=1 to skip the browser tests",
        pytrace=False,
    )


def browse(chromium: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    profile.mkdir()
    done = subprocess.run(  # noqa: S603 - a fixed binary and our own arguments
        [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done


class Dom(HTMLParser):
    """The elements of the rendered DOM: every tag seen, and the text of headings, cells and the title."""

    TEXT_OF = frozenset({"title", "h1", "h2", "h3", "h4", "td", "th", "summary"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.texts: dict[str, list[str]] = {}
        self._open: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "br":
            self.handle_data(" ")
        if tag in self.TEXT_OF:
            self._open.append((tag, []))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            name, parts = self._open.pop()
            self.texts.setdefault(name, []).append(" ".join("".join(parts).split()))

    def handle_data(self, data: str) -> None:
        for _, parts in self._open:
            parts.append(data)


@pytest.fixture
def unpacked(rt, tmp_path: Path) -> Path:  # noqa: F811 - the imported fixture
    """A package written on Azurite and unpacked as the person would: index.html beside the files."""
    request, manifest, manifest_bytes = export_with_hostile_model(rt)
    info = write_package(rt.storage.container, request.id, manifest, manifest_bytes, None)
    folder = tmp_path / "package"
    zipfile.ZipFile(io.BytesIO(download(rt, info["path"]))).extractall(folder)
    return folder / "index.html"


def test_chromium_shows_the_title_the_families_and_the_records(unpacked, tmp_path):
    chromium = need_chromium()
    # When a browser opens the page from disk
    dom = Dom()
    dom.feed(browse(chromium, tmp_path, "--dump-dom", unpacked.as_uri()).stdout)
    # Then it shows what the package is, per family, with the records in table cells
    assert dom.texts["title"] == ["Your data in Azure Machine Learning"]
    assert dom.texts["h1"] == ["Your data in Azure Machine Learning"]
    assert "Models (251)" in dom.texts["h3"]
    assert "Runs (3)" in dom.texts["h3"]
    assert "model-7 model-7:1" in dom.texts["td"]  # name, with its id under it
    assert "train_1" in dom.texts["td"]
    assert "your user name (UPN) as creator" in dom.texts["td"]
    assert dom.texts["summary"].count("Show the record") == 200 + 3  # the cap per file, then the runs


def test_chromium_shows_a_hostile_value_as_text_and_adds_no_element(unpacked, tmp_path):
    chromium = need_chromium()
    dom = Dom()
    dom.feed(browse(chromium, tmp_path, "--dump-dom", unpacked.as_uri()).stdout)
    # The model named `<script>...` is a cell's text, and its description is text in the record's JSON
    assert f"{HOSTILE_NAME} {HOSTILE_NAME}:1" in dom.texts["td"]
    assert any(HOSTILE_DESCRIPTION.replace('"', '\\"') in cell for cell in dom.texts["td"])
    # and neither became an element
    assert "script" not in dom.tags
    assert "img" not in dom.tags
    assert set(dom.tags) <= {
        "html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "h4", "p",
        "dl", "dt", "dd", "code", "nav", "ol", "ul", "li", "a", "section", "table", "caption", "thead",
        "tbody", "tr", "th", "td", "span", "br", "details", "summary", "pre", "div",
    }  # fmt: skip


def test_chromium_draws_the_page(unpacked, tmp_path):
    chromium = need_chromium()
    png = tmp_path / "index.png"
    browse(chromium, tmp_path, f"--screenshot={png}", "--window-size=1280,2400", unpacked.as_uri())
    assert png.stat().st_size > 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
