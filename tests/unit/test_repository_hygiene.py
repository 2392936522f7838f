"""The repository tracks only what people write: no virtualenv, node_modules, caches or build output.

A tracked virtualenv breaks `make test` on any machine whose Python lives elsewhere (its links point at one
machine's interpreter) and `make install` would rewrite tracked files; see .gitignore.
"""

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A path segment that only a command makes: installed environments, caches, build output.
GENERATED = re.compile(
    r"(^|/)(\.venv|venv|node_modules|\.local|__pycache__|\.pytest_cache|\.mypy_cache|\.ruff_cache|\.schemathesis"
    r"|\.python_packages|[^/]+\.egg-info|build|dist)(/|$)|\.pyc$"
)


def tracked_files() -> list[str]:
    git = shutil.which("git")
    assert git, "git is needed to list the tracked files"
    out = subprocess.run(  # noqa: S603 (git, fixed arguments)
        [git, "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    )
    return [p for p in out.stdout.decode().split("\0") if p]


def test_no_generated_or_installed_tree_is_tracked() -> None:
    files = tracked_files()
    assert len(files) > 50, "git ls-files listed almost nothing: is this a checkout?"
    generated = [p for p in files if GENERATED.search(p)]
    assert generated == [], f"{len(generated)} generated files are tracked, e.g. {generated[:5]}"


def test_the_pattern_recognises_what_a_command_leaves() -> None:
    # Given paths a venv, npm, pytest or a wheel build leaves, and paths of the project itself
    made = [
        ".venv/bin/python",
        ".venv",  # a link to a virtualenv is tracked as one file
        "node_modules",
        "node_modules/azurite/x.js",
        "shared/__pycache__/a.pyc",
        ".local/iac-venv/x",
        "dsr.egg-info/PKG-INFO",
        ".mypy_cache/3.11/x.json",
        ".schemathesis/default/cache/entries.jsonl",
    ]
    written = [
        "shared/storage/store.py",
        "docs/build-and-deploy.md",
        "infra/main.bicep",
        "devtools/amlsim/state.py",
    ]
    # Then only the first kind is flagged
    assert [p for p in made if GENERATED.search(p)] == made
    assert [p for p in written if GENERATED.search(p)] == []
