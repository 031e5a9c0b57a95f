"""The benchmarks and scripts are not run by the suite (they take minutes), so a rename in blockprof could leave
them broken unseen: every name they import from blockprof, at module level or inside a function, must exist."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")])


def blockprof_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from blockprof... import name`` in the file, wherever it stands."""
    return [
        (node.module, alias.name)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "blockprof"
        for alias in node.names
    ]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_blockprof_name_a_script_imports_exists(path: Path) -> None:
    missing = []
    for module, name in blockprof_imports(path):
        imported = importlib.import_module(module)
        if not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")  # a submodule
            except ModuleNotFoundError:
                missing.append(f"{module}.{name}")
    assert not missing, f"{path.name} imports names blockprof no longer has: {', '.join(missing)}"


def test_the_check_sees_a_missing_name(tmp_path: Path) -> None:
    script = tmp_path / "old.py"
    script.write_text("def main():\n    from blockprof.regress import compare\n", encoding="utf-8")
    assert blockprof_imports(script) == [("blockprof.regress", "compare")]
    with pytest.raises(AssertionError, match=r"blockprof\.regress\.compare"):
        test_every_blockprof_name_a_script_imports_exists(script)
