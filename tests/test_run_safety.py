"""Run directories under abuse: two writers, kills, lost or hand-edited meta, merges that drop, Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.grid import Grid
from blockprof.runs import LOCK, META, RECORDS, Run, lock_run, merge
from blockprof.sweep import sweep
from tests.processes import start, wait_for_records

ROOT = Path(__file__).parent.parent
WIDTHS = tuple(range(8, 68, 4))  # 45 cells of ~20 ms: a sweep that lasts long enough to be caught mid-way
GRID_ARGS = ["--channels", ",".join(map(str, WIDTHS)), "--spatial", "8", "--tools", "torch"]
CELLS = {c.key for c in Grid(channels=WIDTHS, spatial=(8,)).cells()}


def keys(run: Path) -> list[str]:
    """Every cell key on a complete record line (a line cut off by a kill is not a record)."""
    out = []
    for line in (run / RECORDS).read_bytes().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line)["cell"])
    return out


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    return result.exit_code, result.stderr


# --- one writer per run ---


def test_a_second_resume_on_a_live_run_is_refused_and_every_cell_is_written_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = start("sweep", *GRID_ARGS, "-o", str(run))
    wait_for_records(run, first)
    second = start("sweep", "-o", str(run), "--resume")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2 and "Traceback" not in err, err
    assert f"{run} is being written by pid {first.pid} on" in err and "blockprof sweep" in err
    assert first.wait(timeout=120) == 0
    assert sorted(keys(run)) == sorted(CELLS)  # every cell exactly once
    assert (run / LOCK).read_bytes() == b""  # released cleanly


def test_a_sigkilled_sweep_resumes_with_every_cell_exactly_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    proc = start("sweep", *GRID_ARGS, "-o", str(run))
    wait_for_records(run, proc, 3)
    proc.kill()
    proc.wait(timeout=30)
    assert json.loads((run / LOCK).read_text())["pid"] == proc.pid  # the dead writer's lock, left behind
    code, err = invoke("sweep", "-o", str(run), "--resume")
    assert code == 0, err
    assert f"took over the lock of {run} left by pid {proc.pid}" in err
    assert sorted(keys(run)) == sorted(CELLS)
    assert len(Run.open(run).records) == 45


def test_the_lock_refuses_a_second_holder_and_is_free_again_after(tmp_path: Path) -> None:
    with lock_run(tmp_path / "run", "test"):
        code = (
            "import sys; from blockprof.runs import lock_run\n"
            f"try:\n    with lock_run({str(tmp_path / 'run')!r}): pass\nexcept Exception as e: print(e); sys.exit(2)"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
        assert (
            proc.returncode == 2
            and f"is being written by pid {os.getpid()}" in proc.stdout
            and "(test, started" in proc.stdout
        )
    with lock_run(tmp_path / "run") as notes:
        assert notes == []  # released cleanly: nothing to take over


def test_merge_takes_the_output_lock(tmp_path: Path) -> None:
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    sweep(Grid(channels=(8,), spatial=(4,)), a, tools=())
    sweep(Grid(channels=(16,), spatial=(4,)), b, tools=())
    with lock_run(out, "someone else"), pytest.raises(BlockprofError, match="is being written by pid"):
        merge([a, b], out)


# --- temporaries left by a kill in the middle of an atomic write ---


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_kill_mid_write_leaves_a_temporary_that_the_resume_removes_and_nothing_else(tmp_path: Path) -> None:
    from blockprof.io import _HOST

    run = tmp_path / "run"
    script = (
        "import os, signal\n"
        "from blockprof.grid import Grid\n"
        "from blockprof.sweep import sweep\n"
        "def die(src, dst):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"  # killed after the temporary is written, before the rename
        "os.replace = die\n"
        f"sweep(Grid(channels=(8, 16), spatial=(4,)), {str(run)!r}, tools=())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True
    )
    assert done.returncode == -9, done.stderr
    (left,) = [p.name for p in run.iterdir() if p.name.endswith(".tmp")]  # named after its writer: pid and host
    assert re.fullmatch(rf"\.meta\.json\.[0-9]+-{_HOST}\.[a-z0-9_]{{8}}\.tmp", left) and not (run / META).exists()
    live = f".report.html.{os.getpid()}-{_HOST}.abcd1234.tmp"  # a writer that still runs (this process)
    keep = [
        live,
        f".report.html.{dead_pid()}-{'0' * 8 if _HOST != '0' * 8 else '1' * 8}.abcd1234.tmp",  # another host's
        ".notes.txt.abcd1234.tmp",  # no writer named: not provably ours
        "notes.txt",
    ]
    gone = [
        f".records.jsonl.{dead_pid()}-{_HOST}.wxyz0987.tmp",  # a dead writer of this host
        f".plots.html.{dead_pid()}-{_HOST}.wxyz0987.probe",
        ".meta.json.q1w2e3r4.tmp",  # meta.json's, as blockprof wrote them before: only a lock holder writes meta.json
    ]
    for name in keep + gone:
        (run / name).write_text("x")
    code, err = invoke("sweep", "--channels", "8,16", "--spatial", "4", "--tools", "none", "-o", str(run), "--resume")
    assert code == 0, err
    assert f"removed 4 temporary file(s) left in {run} by interrupted writes" in err
    assert sorted(p.name for p in run.iterdir()) == sorted([*keep, LOCK, META, RECORDS])
    assert len(Run.open(run).records) == 6
    # readers never look at them; merge cleans its own output the same way
    for command in (["show", str(run)], ["report", str(run), "-o", str(tmp_path / "r.html")]):
        code, err = invoke(*command)
        assert code == 0 and "abcd1234" not in err, err
    other = tmp_path / "other"
    sweep(Grid(channels=(24,), spatial=(4,)), other, tools=())
    out = tmp_path / "merged"
    out.mkdir()
    (out / f".meta.json.{dead_pid()}-{_HOST}.abcd1234.tmp").write_text("x")  # a merge killed mid-write
    (out / live).write_text("x")
    code, err = invoke("merge", str(run), str(other), "-o", str(out))
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == sorted([live, LOCK, META, RECORDS])
    assert len(Run.open(out).records) == 9


# --- records: append-only ---


def test_appending_never_truncates_what_another_writer_added(tmp_path: Path) -> None:
    """The fault the second probe found: an appender opened on a stale view cut the file back."""
    run = tmp_path / "run"
    sweep(Grid(channels=(8,), spatial=(4,)), run, tools=())
    stale = Run.open(run)
    extra = b'{"cell": "feedfacefeedface", "status": "error", "error": "x"}\n'
    with open(run / RECORDS, "ab") as f:  # another process appends after we read
        f.write(extra)
    with stale.appender() as appender:
        appender.append({"cell": "0123456789abcdef", "status": "error", "error": "y"})
    assert extra in (run / RECORDS).read_bytes()


# --- meta.json lost or edited ---


def test_a_run_whose_meta_was_deleted_is_rebuilt_by_resuming_with_its_grid(tmp_path: Path) -> None:
    run = tmp_path / "run"
    sweep(Grid(channels=(8, 16, 24), spatial=(4,)), run, tools=())
    lines = (run / RECORDS).read_bytes().splitlines(keepends=True)
    (run / RECORDS).write_bytes(b"".join(lines[:5]))  # 4 cells were lost with it
    (run / META).unlink()
    code, err = invoke("show", str(run))
    assert code == 2 and "has records but no meta.json (deleted?)" in err and "--resume" in err
    code, err = invoke("sweep", "-o", str(run), "--resume")
    assert code == 2 and "has records but no meta.json" in err
    code, err = invoke("sweep", "--channels", "8,16", "--spatial", "4", "--tools", "none", "-o", str(run), "--resume")
    assert code == 2 and "are not cells of this grid" in err
    code, err = invoke(
        "sweep", "--channels", "8,16,24", "--spatial", "4", "--tools", "torch", "-o", str(run), "--resume"
    )
    assert code == 2 and "were taken with --tools none" in err
    code, err = invoke(
        "sweep", "--channels", "8,16,24", "--spatial", "4", "--tools", "none", "-o", str(run), "--resume"
    )
    assert code == 0, err
    assert "4 done now, 5 already done" in err
    assert sorted(keys(run)) == sorted(c.key for c in Grid(channels=(8, 16, 24), spatial=(4,)).cells())
    assert "rebuilt" in json.loads((run / META).read_text())


def _settings_meta(run: Path) -> dict[str, Any]:
    return json.loads((run / META).read_text())


EDITS: dict[str, Any] = {
    "grid a list": lambda m: m.update(grid=[1, 2]),
    "grid a string": lambda m: m.update(grid="basic"),
    "grid unknown key": lambda m: m["grid"].update(colour=1),
    "grid channels text": lambda m: m["grid"].update(channels="abc"),
    "grid channels nested": lambda m: m["grid"].update(channels=[[8]]),
    "grid channels negative": lambda m: m["grid"].update(channels=[-8]),
    "grid blocks number": lambda m: m["grid"].update(blocks=[3]),
    "settings null": lambda m: m.update(settings=None),
    "settings list": lambda m: m.update(settings=[]),
    "settings unknown": lambda m: m["settings"].update(speed=1),
    "tools a string": lambda m: m["settings"].update(tools="torch"),
    "tools unknown": lambda m: m["settings"].update(tools=["ptflops"]),
    "time a string": lambda m: m["settings"].update(time="yes"),
    "min_run_time inf": lambda m: m["settings"].update(time=True, min_run_time=1e309),
    "rounds text": lambda m: m["settings"].update(rounds="3"),
    "threads zero": lambda m: m["settings"].update(time=True, threads=0),
    "shard a list": lambda m: m.update(shard=[1, 2]),
    "shard out of range": lambda m: m.update(shard={"index": 5, "count": 2}),
    "shard unknown key": lambda m: m.update(shard={"i": 1}),
    "environment null": lambda m: m.update(environment=None),
    "environment a list": lambda m: m.update(environment=[]),
    "peaks a number": lambda m: m.update(peaks=3),
    "format missing": lambda m: m.pop("format"),
    "schema text": lambda m: m.update(schema_version="1"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("meta") / "run"
    sweep(Grid(channels=(8,), spatial=(4,)), run, tools=())
    return run


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_hand_edited_meta_is_one_line_on_resume_and_merge(tmp_path: Path, pristine: Path, edit: str) -> None:
    run, other = tmp_path / "run", tmp_path / "other"
    shutil.copytree(pristine, run)
    shutil.copytree(pristine, other)
    meta = _settings_meta(run)
    EDITS[edit](meta)
    (run / META).write_text(json.dumps(meta).replace("Infinity", "1e999"))
    for args in (
        ["sweep", "-o", str(run), "--resume"],
        ["merge", str(other), str(run), "-o", str(tmp_path / "m")],
        ["show", str(run)],
    ):
        code, err = invoke(*args)
        assert code in (0, 2), (edit, args, err)
        if code == 2:
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (edit, args, err)
    code, err = invoke("sweep", "-o", str(run), "--resume")
    assert code == 2, (edit, err)  # every edit above is refused on resume


# --- merge ---


def test_merge_refuses_a_run_with_itself(tmp_path: Path, pristine: Path) -> None:
    code, err = invoke("merge", str(pristine), str(pristine), "-o", str(tmp_path / "m"))
    assert code == 2 and "are the same run (given twice)" in err
    link = tmp_path / "link"
    link.symlink_to(pristine)
    code, err = invoke("merge", str(pristine), str(link), "-o", str(tmp_path / "m"))
    assert code == 2 and "are the same run" in err
    code, err = invoke("merge", str(pristine), str(tmp_path / "other"), "-o", str(pristine))
    assert code == 2 and "the same run (the output)" in err
    assert not (tmp_path / "m").exists()


def test_merge_reports_what_it_drops(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    sweep(Grid(channels=(8, 16), spatial=(4,)), a, tools=())
    sweep(Grid(channels=(16, 24), spatial=(4,)), b, tools=())
    data = (b / RECORDS).read_bytes()
    (b / RECORDS).write_bytes(
        data + data.splitlines(keepends=True)[0] + data[:30]
    )  # a duplicate and a half-written line
    code, err = invoke("merge", str(a), str(b), "-o", str(tmp_path / "m"))
    assert code == 0, err
    assert "ignored an incomplete last line (30 bytes" in err
    assert "1 cell(s) were recorded more than once" in err
    assert "3 cell(s) appeared in more than one run and were kept once" in err
    assert "9 cells" in err and len(Run.open(tmp_path / "m").records) == 9


# --- Ctrl-C ---


@pytest.mark.parametrize("presses", [1, 2, 6])
def test_ctrl_c_exits_130_however_many_times_it_is_pressed(tmp_path: Path, presses: int) -> None:
    run = tmp_path / "run"
    proc = start("sweep", *GRID_ARGS, "-o", str(run))
    wait_for_records(run, proc)
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.002)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert (
        "interrupted" in err.strip().splitlines()[-1] and "--resume" in err
    )  # (a progress line cut short may precede it)
    code, err = invoke("sweep", "-o", str(run), "--resume")
    assert code == 0 and sorted(keys(run)) == sorted(CELLS), err


def test_ctrl_c_in_any_command_exits_130(tmp_path: Path) -> None:
    proc = start(
        "compare", "--channels", "64", "--spatial", "56", "--threads", "1", "--min-run-time", "5", "--tools", "torch"
    )
    time.sleep(4)  # importing torch and counting, then timing
    proc.send_signal(signal.SIGINT)
    time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err, err
