"""The docs cannot drift: every command output in README.md and docs/ is re-run and compared,
the schema page is regenerated from the field lists, and the CLI reference sees every command."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "docs_outputs.py"


def _load_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("docs_outputs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_outputs"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


docs_outputs = _load_script()


def test_docs_outputs_are_current() -> None:
    """Every marked command, re-run now, prints what the page shows (else: run the script with --write)."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_pages_hold_marked_outputs() -> None:
    """The check above checks something: the README and the task pages carry generated outputs."""
    found = {
        p.relative_to(ROOT).as_posix(): len(list(docs_outputs.blocks(p, p.read_text(encoding="utf-8"))))
        for p in docs_outputs.pages()
    }
    assert found["README.md"] >= 1
    for page in ("compare", "explain", "networks", "sweeps", "reports", "ci-check"):
        assert found[f"docs/tasks/{page}.md"] >= 1, page


def _page(tmp_path: Path, command: str, body: str = "stale\n", opts: str = "") -> Path:
    page = tmp_path / "page.md"
    page.write_text(
        f"# A page\n\n<!-- blockprof-run{opts}: {command} -->\n```text\n{body}```\n\nAfter.\n", encoding="utf-8"
    )
    return page


def test_write_fills_a_block_and_check_then_passes(tmp_path: Path) -> None:
    page = _page(tmp_path, "blockprof blocks --channels 64")
    assert docs_outputs.main(["--write", str(page)]) == 0
    text = page.read_text(encoding="utf-8")
    assert "$ blockprof blocks --channels 64\nbasic " in text
    assert "at 64: 64→16→64" in text  # the bottleneck's inner width, computed now
    assert text.endswith("```\n\nAfter.\n")
    assert docs_outputs.main(["--check", str(page)]) == 0


def test_check_fails_on_drift_with_a_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = _page(tmp_path, "blockprof blocks --channels 64", body="$ blockprof blocks --channels 64\nbasic  made up\n")
    assert docs_outputs.main(["--check", str(page)]) == 1
    out = capsys.readouterr().out
    assert "-basic  made up" in out and "+bottleneck" in out
    assert "made up" in page.read_text(encoding="utf-8")  # --check never writes


def test_expected_failure_and_its_exit_code(tmp_path: Path) -> None:
    command = "blockprof compare --blocks bottleneck --channels 66 --no-time"
    assert docs_outputs.main(["--write", str(_page(tmp_path, command, opts=" exit=2"))]) == 0
    written = (tmp_path / "page.md").read_text(encoding="utf-8")
    assert "Error: bottleneck: out_channels 66 is not divisible by expansion 4" in written
    assert docs_outputs.main(["--write", str(_page(tmp_path, command))]) == 2  # not marked as failing: refused


TIMED = ["blockprof compare --channels 64", "blockprof explain basic --time", "blockprof calibrate"]


@pytest.mark.parametrize("command", TIMED)
def test_timed_commands_are_refused(tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert docs_outputs.main(["--write", str(_page(tmp_path, command))]) == 2
    assert "times differ on every run" in capsys.readouterr().err


def test_progress_bar_lines_are_left_out() -> None:
    assert docs_outputs.PROGRESS_BAR.search("sweep ━━━━━━━ 12/12 0:00:03 ETA 0:00:00 basic 64 @28² b1")
    assert not docs_outputs.PROGRESS_BAR.search(" ───────── 12/12")  # a table rule is kept
    assert not docs_outputs.PROGRESS_BAR.search("12 cells in runs/widths: 12 done now")


def test_cli_reference_lists_every_command() -> None:
    """mkdocs-click documents the lazy group's commands through list_commands/get_command."""
    mkdocs_click = pytest.importorskip("mkdocs_click._docs")
    from blockprof.cli import COMMANDS, cli

    lines = list(mkdocs_click.make_command_docs("blockprof", cli, depth=1, style="plain", list_subcommands=True))
    headings = {line.lstrip("#").strip() for line in lines if line.startswith("#")}
    for name in COMMANDS:
        assert name in headings, name
    assert any("--budget-params" in line for line in lines)  # options, not only names


def test_a_broken_block_does_not_stop_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "page.md"
    broken = "<!-- blockprof-run: blockprof compare --no-such-option --no-time -->\n```text\nold\n```\n"
    good = "<!-- blockprof-run: blockprof blocks --channels 64 -->\n```text\nstale\n```\n"
    page.write_text(f"{broken}\n{good}", encoding="utf-8")
    assert docs_outputs.main(["--write", str(page)]) == 2
    text = page.read_text(encoding="utf-8")
    assert "```text\nold\n```" in text and "$ blockprof blocks --channels 64\n" in text
    err = capsys.readouterr().err
    assert "exited 2, the page expects 0" in err and "No such option '--no-such-option'" in err
