"""The package's layers, read from its source: a module imports only its own layer and the layers below it, and no
modules import each other in a circle (function-level imports included: a deferred import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xentcompat"

# bottom to top; a module belongs to the first prefix it starts with (the longest listed)
LAYERS = (
    ("xentcompat", "xentcompat.machine", "xentcompat.reference"),  # the numbers: the float64 reference and the cases
    ("xentcompat.results",),  # records and the documents that hold them: read, checked, merged
    ("xentcompat.adapters", "xentcompat.expectations"),  # the frameworks' APIs; the causes and what they expect
    ("xentcompat.run", "xentcompat.matrix", "xentcompat.bench", "xentcompat.training"),  # measuring
    ("xentcompat.report",),  # rendering what was measured
    ("xentcompat.cli", "xentcompat.commands",  # the command line
     "xentcompat.own", "xentcompat.testing", "xentcompat.pytest_plugin"),  # checking a user's own loss
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that `name` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return {module for module in found if module in known and module != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def layer(name: str) -> int | None:
    """The index in LAYERS of the longest prefix `name` starts with; None when none does."""
    matches = [(len(prefix), index) for index, prefixes in enumerate(LAYERS) for prefix in prefixes
               if name == prefix or name.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iteratively)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_module_has_a_layer():
    assert [name for name in modules() if layer(name) is None] == []


def test_no_module_imports_a_layer_above_its_own():
    upward = sorted(f"{name} -> {target}" for name, targets in graph().items() for target in targets
                    if layer(target) > layer(name))
    assert upward == []


def test_no_modules_import_each_other_in_a_circle():
    assert circles(graph()) == []


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"a"}, "c": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"d"}}, [["a", "b", "c"]]),
])
def test_circles_finds_each_circle_once(edges, expected):
    assert circles(edges) == expected


def test_relative_imports_resolve_to_their_package(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from .sibling import x\nfrom . import other\n")
    known = {"xentcompat.report.sibling", "xentcompat.report.other"}
    assert imported("xentcompat.report.m", source, known) == known
