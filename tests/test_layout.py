"""The layout follows the data flow: the import graph between evtxdoc's packages (and its
top-level modules) has no cycle, and no module grows past ~450 lines without saying why."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "evtxdoc"
# Modules allowed over the bound (lines as `ruff format` writes them), each with its reason.
# None today: the last three (synth/scenario.py, parse/normalize.py, synth/writer.py) were split.
OVER_BOUND: set[str] = set()
MAX_LINES = 450


def _node(path: Path) -> str:
    """A package (`correlate`) or a top-level module (`pipeline`)."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        source = _node(path)
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "evtxdoc" and len(parts) > 1:
                    target = parts[1]
                    known = (PACKAGE / target).is_dir() or (PACKAGE / f"{target}.py").exists()
                    if known and target != source:
                        graph[source].add(target)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_import_graph_between_packages_has_no_cycle() -> None:
    graph = _graph()
    assert graph["pipeline"] >= {"correlate", "rules", "bundle"}  # the graph is real
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_modules_stay_small_and_package_faces_are_faces() -> None:
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text("utf-8").splitlines())
        for p in PACKAGE.rglob("*.py")
    }
    assert sizes, "no modules found"
    over = {name for name, lines in sizes.items() if lines > MAX_LINES}
    assert over <= OVER_BOUND, sorted(over - OVER_BOUND)
    assert sizes["correlate/__init__.py"] < 40


def _module_graph() -> dict[str, set[str]]:
    """Module → the evtxdoc modules it imports at run time (`TYPE_CHECKING` imports left out)."""
    modules = {
        ".".join(p.relative_to(PACKAGE).with_suffix("").parts): p for p in PACKAGE.rglob("*.py")
    }
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        tree = ast.parse(path.read_text("utf-8"))
        typing_only = {
            id(child)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only or not isinstance(node, ast.ImportFrom | ast.Import):
                continue
            found = (
                [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for full in found:
                target = full.removeprefix("evtxdoc.")
                if full.startswith("evtxdoc.") and target != name and target in modules:
                    graph[name].add(target)
    return graph


def test_no_two_modules_import_each_other_even_inside_a_package() -> None:
    graph = _module_graph()
    assert "synth.device_story" in graph["synth.scenario"]  # the graph is real
    faces = {name for name in graph if "." not in name or name.endswith("__init__")}
    inner = {name: targets - faces for name, targets in graph.items() if name not in faces}
    assert _cycle(inner) is None, " → ".join(_cycle(inner) or [])
