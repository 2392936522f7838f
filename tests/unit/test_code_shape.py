"""The product's code stays small enough to read: no module of shared/, dsr_cli/ or function_app.py over 500 lines, no
function over 80 lines. Data tables (the route table, the endpoint catalog) are module-level values, not
functions, so they are not limited here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULES = [
    *sorted((ROOT / "shared").rglob("*.py")),
    *sorted((ROOT / "dsr_cli").glob("*.py")),
    ROOT / "function_app.py",
]
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def long_functions(source: str) -> list[tuple[str, int]]:
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]


def test_no_module_is_over_500_lines():
    assert len(MODULES) > 30
    over = {
        str(p.relative_to(ROOT)): n
        for p in MODULES
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert over == {}


def test_no_function_is_over_80_lines():
    over = {str(p.relative_to(ROOT)): found for p in MODULES if (found := long_functions(p.read_text()))}
    assert over == {}


def test_the_measure_counts_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(85))
    assert long_functions(f"def f():\n{body}\n") == [("f", 86)]
