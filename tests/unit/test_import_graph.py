"""The domain package's rooms stay a one-way street (docs/architecture.md, "The rooms of shared/").

`shared/` is cut into rooms, lowest first: core, aml, storage, runtime, evidence, tasks, lifecycle, edge.
A module may import its own room and the rooms below it, never above; no module imports function_app,
devtools or dsr_cli; no two modules import each other, directly or round a circle; and no module imports
a product module inside a function (the way a circle is usually hidden).
"""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
ROOMS = ["core", "aml", "storage", "runtime", "evidence", "tasks", "lifecycle", "edge"]
OUTSIDE = ("function_app", "devtools", "dsr_cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(SHARED.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SHARED.rglob("*.py"))}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "shared"


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in the file (TYPE_CHECKING ones left out)."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Import | ast.ImportFrom) or _under_type_checking(node, parents):
            continue
        in_function = False
        up: ast.AST = node
        while up in parents:
            up = parents[up]
            if isinstance(up, ast.FunctionDef | ast.AsyncFunctionDef):
                in_function = True
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            # `from shared.x import y` imports the module shared.x.y when y is one, else a name of shared.x
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        found += [(t, node.lineno, in_function) for t in targets]
    return found


GRAPH = {
    name: {t for t, _, _ in imports(path) if t in MODULES and t != name} for name, path in MODULES.items()
}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_lives_in_a_room():
    loose = [m for m in MODULES if room(m) not in ROOMS and m != "shared"]
    assert loose == []
    assert set(ROOMS) - {"runtime"} <= {room(m) for m in MODULES}


def test_no_import_cycle_in_shared():
    assert cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_circle():
    # the checker itself: a three-module circle and a self-contained pair are both reported
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert cycles(graph) == [["a", "b", "c"], ["d", "e"]]


def test_rooms_import_only_their_own_and_lower_rooms():
    upward = [
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        for t in targets
        if room(m) in ROOMS and room(t) in ROOMS and ROOMS.index(room(t)) > ROOMS.index(room(m))
    ]
    assert upward == []


def test_aml_and_storage_stand_side_by_side():
    # the two infrastructure rooms know nothing of each other (runtime joins them)
    across = [
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        for t in targets
        if (room(m), room(t)) == ("storage", "aml")
    ]
    assert across == []


def test_no_module_reaches_outside_the_package():
    outside = [
        f"{m}:{line} imports {t}"
        for m, path in MODULES.items()
        for t, line, _ in imports(path)
        if t.split(".")[0] in OUTSIDE
    ]
    assert outside == []


def test_no_product_import_inside_a_function():
    hidden = [
        f"{m}:{line} imports {t}"
        for m, path in MODULES.items()
        for t, line, in_function in imports(path)
        if in_function and t.startswith("shared")
    ]
    assert hidden == []
