"""Writing files: whole or not at all, one-line errors, and every command's -o over bad paths."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import blockprof.io
from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.grid import Grid
from blockprof.io import atomic_write_text, check_writable, write_output
from blockprof.runs import META, RECORDS, Run
from blockprof.sweep import sweep

OLD = "the previous, good content\n"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    return result.exit_code, result.stderr


def assert_one_line_exit_2(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert all(n in err for n in needles), err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("io") / "run"
    sweep(Grid(channels=(8,), spatial=(4,)), run, tools=())
    return run


def raise_on(errno_: int):  # type: ignore[no-untyped-def]
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError(errno_, os.strerror(errno_))

    return fail


# --- the writer itself ---


@pytest.mark.parametrize("target", ["os.replace", "os.fsync"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, code: int
) -> None:
    path = tmp_path / "out.json"
    path.write_text(OLD)
    monkeypatch.setattr(target, raise_on(code))
    with pytest.raises(BlockprofError, match=f"cannot write {path}: ") as e:
        atomic_write_text(path, "new")
    assert "\n" not in str(e.value)
    assert path.read_text() == OLD and os.listdir(tmp_path) == ["out.json"]


def test_a_write_cut_short_by_a_full_disk_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills half-way through the content: the temporary file is dropped, the old file stays."""
    path = tmp_path / "report.html"
    path.write_text(OLD)
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):  # type: ignore[no-untyped-def]
            self.f = f

        def __enter__(self):  # type: ignore[no-untyped-def]
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def write(self, data: bytes) -> int:
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    with pytest.raises(BlockprofError, match="the disk is full"):
        write_output(path, "x" * 10_000, "the report")
    assert path.read_text() == OLD and os.listdir(tmp_path) == ["report.html"]


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    path = tmp_path / "shared.csv"
    path.write_text(OLD)
    path.chmod(0o644)
    write_output(path, "new\n")
    assert path.read_text() == "new\n" and path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda tmp: tmp / "missing" / "x.csv", "its folder does not exist"),
        (lambda tmp: tmp, "it is a directory"),
        (lambda tmp: tmp / ("n" * 300 + ".csv"), "the name is too long"),
        (lambda tmp: tmp / "file.txt" / "x.csv", "a part of the path is a file"),
    ],
)
def test_check_writable_refuses_in_one_line(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "file.txt").write_text(OLD)
    with pytest.raises(BlockprofError, match=reason) as e:
        check_writable(make(tmp_path))
    assert "\n" not in str(e.value)
    assert sorted(os.listdir(tmp_path)) == ["file.txt"]  # the probe left nothing


# --- every command's output path ---

#: each command with an output option, as (args before the path, the option)
OUTPUTS = [
    (["compare", "--no-time", "--channels", "8", "--spatial", "4", "--tools", "torch"], "-o"),
    (["compare", "--no-time", "--channels", "8", "--spatial", "4", "--tools", "torch"], "--html"),
    (["network", "resnet18", "--tools", "torch"], "-o"),
    (["network", "resnet18", "--tools", "none", "--format", "json"], "-o"),
    (["network", "resnet18", "--explain"], "-o"),
    (["model", "examples.models:small_cnn", "--input", "1,3,16,16"], "-o"),
    (["model", "examples.models:small_cnn", "--input", "1,3,16,16", "--format", "json"], "-o"),
    (["show", "RUN"], "-o"),
    (["show", "RUN", "--format", "json"], "-o"),
    (["plot", "RUN", "--plots", "counts"], "-o"),
    (["report", "RUN", "--timestamp", "none"], "-o"),
    (["baseline", "save", "--channels", "8", "--spatial", "4", "--no-time", "--blocks", "basic"], "-o"),
    (
        ["check", "--channels", "8", "--spatial", "4", "--no-time", "--blocks", "basic", "--baseline", "BASELINE"],
        "--markdown",
    ),
    (
        ["check", "--channels", "8", "--spatial", "4", "--no-time", "--blocks", "basic", "--baseline", "BASELINE"],
        "--junit",
    ),
    (["sweep", "--channels", "8", "--spatial", "4", "--tools", "none"], "-o"),
    (["merge", "RUN", "RUN2"], "-o"),
]
#: the parameter names of the options that name a file or folder a command writes
OUTPUT_PARAMS = ("output", "html", "markdown", "junit", "run_dir")


def test_every_output_option_of_every_command_is_in_the_list() -> None:
    """A new command, or a new output option, cannot escape the bad-path test below."""
    import click

    from blockprof.cli import cli

    ctx = click.Context(cli)

    def outputs(command: click.Command, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
        if isinstance(command, click.Group):
            return [
                o for name in command.list_commands(ctx) for o in outputs(command.get_command(ctx, name), (*path, name))
            ]
        return [(path, p.opts[0]) for p in command.params if p.name in OUTPUT_PARAMS]

    listed = {(tuple(a for a in args if not a.startswith("-") and a.isidentifier())[:2], o) for args, o in OUTPUTS}
    missing = [(p, o) for p, o in outputs(cli, ()) if not any(p == lp[: len(p)] and o == lo for lp, lo in listed)]
    assert missing == []


#: commands documented to make the output's folders
MAKE_FOLDERS = ("report", "sweep", "merge")
BAD_PATHS = {
    "missing directory": lambda tmp: tmp / "missing" / "out.txt",
    "a directory": lambda tmp: tmp / "adir",
    "a name too long": lambda tmp: tmp / ("n" * 300),
    "a file in the path": lambda tmp: tmp / "keep.txt" / "out.txt",
}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("baseline") / "baseline.json"
    code, err = invoke(
        "baseline", "save", "--channels", "8", "--spatial", "4", "--no-time", "--blocks", "basic", "-o", str(path)
    )
    assert code == 0, err
    return path


def _args(args: list[str], option: str, path: Path, run_dir: Path, baseline: Path, tmp: Path) -> list[str]:
    second = tmp / "run2"
    if "RUN2" in args and not second.exists():
        import shutil

        shutil.copytree(run_dir, second)
    names = {"RUN": str(run_dir), "RUN2": str(second), "BASELINE": str(baseline)}
    return [names.get(a, a) for a in args] + [option, str(path)]


@pytest.mark.parametrize("bad", sorted(BAD_PATHS))
@pytest.mark.parametrize(("args", "option"), OUTPUTS, ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else v)
def test_every_output_option_refuses_a_bad_path_in_one_line(
    tmp_path: Path, run_dir: Path, baseline: Path, args: list[str], option: str, bad: str
) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "keep.txt").write_text(OLD)
    before = sorted(os.listdir(tmp_path))
    path = BAD_PATHS[bad](tmp_path)
    if bad == "a directory" and args[0] in ("sweep", "merge"):
        path = tmp_path / "keep.txt"  # a run directory's bad path is a file
    code, err = invoke(*_args(args, option, path, run_dir, baseline, tmp_path))
    if bad == "missing directory" and args[0] in MAKE_FOLDERS:
        assert code == 0 and path.exists(), err
        return
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (bad, err)
    assert str(path)[:60] in err, err  # refused for the path, not for something else
    assert (tmp_path / "keep.txt").read_text() == OLD
    assert sorted(os.listdir(tmp_path)) == [*before, *(["run2"] if args[0] == "merge" else [])]


@pytest.mark.parametrize(("args", "option"), OUTPUTS, ids=lambda v: " ".join(v[:2]) if isinstance(v, list) else v)
@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_every_output_option_on_a_read_only_or_full_disk_keeps_the_old_file(
    tmp_path: Path,
    run_dir: Path,
    baseline: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    option: str,
    code: int,
) -> None:
    """The fault is injected where files are created (a read-only file system refuses the
    temporary file; a full disk too): one line, exit 2, the previous file intact."""
    target = tmp_path / ("out" if args[0] in ("sweep", "merge") else "out.txt")
    if args[0] in ("sweep", "merge"):
        target.mkdir()
        (target / "keep.txt").write_text(OLD)
        old = target / "keep.txt"
    else:
        target.write_text(OLD)
        old = target
    argv = _args(args, option, target, run_dir, baseline, tmp_path)
    monkeypatch.setattr(blockprof.io.tempfile, "mkstemp", raise_on(code))
    monkeypatch.setattr(os, "open", raise_on(code)) if args[0] in ("sweep", "merge") else None
    exit_code, err = invoke(*argv)
    assert_one_line_exit_2(exit_code, err, str(target))
    assert old.read_text() == OLD


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_is_one_line(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "t.csv").write_text(OLD)
    ro.chmod(0o555)
    try:
        code, err = invoke(
            "compare", "--no-time", "--channels", "8", "--spatial", "4", "--tools", "torch", "-o", str(ro / "t.csv")
        )
        assert_one_line_exit_2(code, err, "Permission denied")
        assert (ro / "t.csv").read_text() == OLD
    finally:
        ro.chmod(0o755)


# --- a full disk in the middle of a report, a meta and a sweep ---


def test_a_report_onto_a_full_disk_keeps_the_previous_report(
    tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "report.html"
    code, err = invoke("report", str(run_dir), "-o", str(path), "--timestamp", "none")
    assert code == 0, err
    good = path.read_bytes()
    monkeypatch.setattr(os, "fsync", raise_on(errno.ENOSPC))
    code, err = invoke("report", str(run_dir), "-o", str(path), "--title", "new", "--timestamp", "none")
    assert_one_line_exit_2(code, err, f"cannot write the report to {path}: No space left on device; the disk is full")
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["report.html"]


def test_a_meta_rewrite_onto_a_full_disk_keeps_the_previous_meta(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    sweep(Grid(channels=(8,), spatial=(4,)), run, tools=())
    good = (run / META).read_bytes()
    opened = Run.open(run)
    monkeypatch.setattr(os, "replace", raise_on(errno.ENOSPC))
    with pytest.raises(BlockprofError, match="cannot write the run's metadata"):
        opened.write_meta(note="x" * 100_000)
    assert (run / META).read_bytes() == good and sorted(os.listdir(run)) == [".lock", META, RECORDS]


def test_a_sweep_onto_a_full_disk_stops_in_one_line_and_resume_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    real_fsync, calls = os.fsync, []

    def fsync(fd: int) -> None:  # the disk fills at the 4th record
        if os.readlink(f"/proc/self/fd/{fd}").endswith(RECORDS):
            calls.append(fd)
        if len(calls) == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    code, err = invoke("sweep", "--channels", "8,16,24", "--spatial", "4", "--tools", "none", "-o", str(run))
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]  # after the progress bar's line
    assert (
        last.startswith(f"Error: cannot append a record to {run / RECORDS}: No space left on device; the disk is full")
        and "--resume" in last
    )
    monkeypatch.setattr(os, "fsync", real_fsync)
    code, err = invoke("sweep", "-o", str(run), "--resume")
    assert code == 0, err
    keys = [json.loads(line)["cell"] for line in (run / RECORDS).read_text().splitlines() if line.endswith("}")]
    assert sorted(set(keys)) == sorted(c.key for c in Grid(channels=(8, 16, 24), spatial=(4,)).cells())
    assert len(Run.open(run).records) == 9


@pytest.mark.parametrize("moment", ["write", "fsync", "replace"])
def test_a_kill_at_any_moment_of_a_write_leaves_the_old_file_or_the_new(tmp_path: Path, moment: str) -> None:
    """SIGKILL in the middle of writing the content, after it before the fsync, or at the rename."""
    import subprocess
    import sys

    path = tmp_path / "report.html"
    path.write_text(OLD)
    script = (
        "import os, signal\n"
        "from blockprof.io import write_output\n"
        "die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"if {moment!r} == 'write':\n"
        "    real = os.fdopen\n"
        "    class Half:\n"
        "        def __init__(self, f): self.f = f\n"
        "        def __enter__(self): return self\n"
        "        def __exit__(self, *e): pass\n"
        "        def write(self, data): self.f.write(data[: len(data) // 2]); self.f.flush(); die()\n"
        "    os.fdopen = lambda fd, mode: Half(real(fd, mode))\n"
        f"else:\n    setattr(os, {moment!r}, die)\n"
        f"write_output({str(path)!r}, 'new ' * 100_000)\n"
    )
    root = Path(__file__).parent.parent
    done = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True
    )
    assert done.returncode == -9, done.stderr
    assert path.read_text() == OLD  # never a cut-off mix; the orphaned temporary is hidden (a dot file)
    assert [p for p in os.listdir(tmp_path) if not p.startswith(".")] == ["report.html"]
