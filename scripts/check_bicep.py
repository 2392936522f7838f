"""Parse every Bicep file under infra/ with pycep-parser; exit 1 naming each file that does not parse.

`make lint` runs it twice: with the app's venv (pycep-parser 0.7) and with the IaC venv, whose pycep-parser is
the one checkov uses (0.5): a file that only the newer parser reads would be silently left out of the scan.
"""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

from pycep import BicepParser

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"


def bicep_files(root: Path = INFRA) -> list[Path]:
    return sorted(root.rglob("*.bicep"))


def parse_errors(files: list[Path]) -> dict[Path, str]:
    """The files that do not parse, with the parser's first line of complaint."""
    errors: dict[Path, str] = {}
    for path in files:
        try:
            BicepParser().parse(file_path=path)
        except Exception as exc:  # the parser raises lark errors of many kinds
            errors[path] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return errors


def main() -> int:
    files = bicep_files()
    errors = parse_errors(files)
    parser = f"pycep-parser {version('pycep-parser')}"
    for path in files:
        status = f"FAILED: {errors[path]}" if path in errors else "ok"
        print(f"{path.relative_to(ROOT)}: {status}")
    print(f"{len(files) - len(errors)} of {len(files)} Bicep files parse with {parser}")
    return 1 if errors or not files else 0


if __name__ == "__main__":
    sys.exit(main())
