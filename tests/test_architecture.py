"""blockprof imports downward only: no cycle, and no module imports a layer above its own.

The import graph is read from the source with ``ast`` (nothing is imported): every
``import`` and ``from ... import``, at module level and inside functions alike, since
a function-level import is still a dependency (it only runs later). Imports under
``if TYPE_CHECKING:`` are left out: they are annotations, not dependencies.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "blockprof"

#: the layers, lowest first: a module may import its own layer and the layers below it.
#: A name stands for the module and everything under it; the longest name that matches wins.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("blockprof.errors", "blockprof.units", "blockprof.schema", "blockprof.io"),
    ("blockprof.spec",),
    ("blockprof.counting.formulas", "blockprof.counting.tools"),  # shape arithmetic; the tools' adapters
    ("blockprof.blocks",),
    ("blockprof.counting",),  # analytic, reconcile, record: a spec counted
    ("blockprof.timing",),
    ("blockprof.records", "blockprof.grid", "blockprof.runs"),
    ("blockprof.networks", "blockprof.sweep", "blockprof.regress", "blockprof.budget", "blockprof.models"),
    ("blockprof.render",),
    ("blockprof.api",),  # the facade
    ("blockprof.commands", "blockprof.cli", "blockprof.__main__"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """The blockprof modules ``path`` imports (``from pkg import sub`` is the submodule ``pkg.sub``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _is_type_checking(node.test)
        for stmt in node.body
        for n in ast.walk(stmt)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m == "blockprof" or m.startswith("blockprof.")}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, modules) - {name} for name, path in modules.items()}


def _layer(module: str) -> int:
    if module == "blockprof":
        # the package itself imports nothing of blockprof when imported (its API attributes
        # load lazily, see test_the_package_imports_nothing): importing it for __version__
        # is free at any layer
        return 0
    best: tuple[int, int] | None = None  # (length of the matching name, layer)
    for index, names in enumerate(LAYERS):
        for prefix in names:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_architecture.py")
    return best[1]


def test_the_graph_is_read() -> None:
    """The reader finds imports of each kind (else the tests below would pass on an empty graph)."""
    graph = _graph()
    assert "blockprof.counting.record" in graph["blockprof.api"]  # module level
    assert "blockprof.blocks.user" in graph["blockprof.blocks.registry"]  # module level, a submodule
    assert "blockprof.counting.tools" in graph["blockprof.blocks.user"]  # inside a function
    assert "blockprof.blocks.registry" in graph["blockprof.counting.analytic"]  # inside a function
    assert "blockprof.networks.count" not in graph["blockprof.render.explain"]  # under TYPE_CHECKING only
    assert len(graph) > 60


def test_the_package_imports_nothing() -> None:
    """``import blockprof`` stays free (so lower layers may read ``__version__``)."""
    assert _graph()["blockprof"] == set()


def test_every_module_has_a_layer() -> None:
    for module in _graph():
        _layer(module)


def test_every_layer_name_is_a_module() -> None:
    """A name left behind by a move or a deletion is an error too: the order stays true."""
    modules = _modules()
    stale = [
        name for names in LAYERS for name in names if not any(m == name or m.startswith(name + ".") for m in modules)
    ]
    assert not stale, f"LAYERS names no module: {stale}"


def test_no_import_points_upward() -> None:
    graph = _graph()
    upward = sorted(
        f"{m} (layer {_layer(m)}) imports {i} (layer {_layer(i)})"
        for m, imports in graph.items()
        for i in imports
        if _layer(i) > _layer(m)
    )
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def test_importing_the_package_loads_no_layer() -> None:
    code = "import sys, blockprof; print(sorted(m for m in sys.modules if m.startswith('blockprof.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PACKAGE.parent)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from blockprof.spec import BlockSpec\n", {"blockprof.spec"}),
        ("def f():\n    from blockprof.api import count\n", {"blockprof.api"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from blockprof.api import count\n", set()),
        ("from blockprof import schema\n", {"blockprof.schema"}),
        ("import torch\n", set()),
    ],
)
def test_the_reader_on_small_sources(tmp_path: Path, source: str, expected: set[str]) -> None:
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    assert _imports(path, "blockprof.m", _modules()) == expected
