"""A new user's first hour (issue 12): no silence, no traceback, no confident wrong number.

Each test replays one case: what is refused before any work (memory, dtype, GPU,
contradicting options), what the output streams show and when, exit codes, and
tables that fit the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import blockprof
from blockprof.cli import cli
from blockprof.render.tables import PRIORITY, render
from blockprof.spec import BlockSpec

NO_GPU = not __import__("torch").cuda.is_available()


def invoke(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


# --- refused before any work, in one line, exit 2 ---


@pytest.mark.parametrize(
    "args",
    [
        ("compare", "--device", "cuda", "--channels", "8", "--spatial", "8"),
        ("sweep", "--device", "cuda", "--channels", "8", "--spatial", "8", "-o", "RUN"),
        ("explain", "basic", "--time", "--device", "cuda"),
        ("calibrate", "--device", "cuda"),
        ("model", "never.imported:model", "--time", "--device", "cuda"),
    ],
)
@pytest.mark.skipif(not NO_GPU, reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_refused(args: tuple[str, ...], tmp_path: Path) -> None:
    result = invoke(*(str(tmp_path / "run") if a == "RUN" else a for a in args))
    assert result.exit_code == 2 and "no CUDA GPU is available" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, flag",
    [
        (("compare", "--no-time", "--device", "cpu"), "--device only applies when timing"),
        (
            ("compare", "--no-time", "--threads", "2", "--dtype", "bfloat16"),
            "--dtype, --threads only apply when timing",
        ),
        (("sweep", "--channels", "8", "--threads", "2", "-o", "RUN"), "--threads only applies when timing; add --time"),
        (("explain", "basic", "--threads", "2"), "--threads only applies when timing; add --time"),
        (("model", "never.imported:model", "--device", "cpu"), "--device only applies when timing; add --time"),
    ],
)
def test_timing_options_without_timing_are_refused(args: tuple[str, ...], flag: str, tmp_path: Path) -> None:
    result = invoke(*(str(tmp_path / "run") if a == "RUN" else a for a in args))
    assert result.exit_code == 2 and flag in result.output and len(result.output.strip().splitlines()) == 1


def test_an_emulated_dtype_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from blockprof.timing import env

    monkeypatch.setattr(env, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    result = invoke("compare", "--channels", "8", "--spatial", "8", "--device", "cpu", "--dtype", "float16")
    assert result.exit_code == 2 and "float16 on this CPU" in result.output and "--allow-slow-dtype" in result.output
    assert env.slow_dtype("cpu", "bfloat16", frozenset({"avx512_bf16"})) is None
    assert env.slow_dtype("cpu", "float16", frozenset({"amx_fp16"})) is None
    assert env.slow_dtype("cpu", "float16", frozenset({"fphp", "asimdhp"})) is None  # Arm
    assert "emulated" in env.slow_dtype("cpu", "bfloat16", frozenset({"avx2"}))  # type: ignore[operator]
    assert (
        env.slow_dtype("cuda", "float16", frozenset()) is None and env.slow_dtype("cpu", "float32", frozenset()) is None
    )


def test_a_timing_too_large_for_memory_is_refused_with_a_size_that_fits() -> None:
    result = invoke("compare", "--channels", "8192", "--spatial", "224", "--batch", "64", "--tools", "none")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "one 64×8192×224×224 input alone is 105GB" in result.output  # 64·8192·224²·4 bytes
    assert "try --channels" in result.output and result.stdout.count("params") == 0  # refused before the counts table


def test_the_memory_estimate_follows_the_analytic_sizes() -> None:
    from blockprof.timing.memory import check_fits, estimate

    spec = BlockSpec("basic", 64, spatial=28, batch=2)
    one = estimate([spec], ("fwd",))
    assert one is not None and one.inputs == 2 * 64 * 28 * 28 * 4 and one.saved == 0
    both = estimate([spec, spec], ("fwd", "train"))
    assert (
        both is not None and both.inputs == 4 * one.inputs and both.saved > 0
    )  # every cell's input is resident; one runs at a time
    check_fits([spec], free=10 * both.total)
    with pytest.raises(blockprof.BlockprofError, match=r"timing needs about .* try --spatial 28 --batch 1"):
        check_fits([spec], free=int(both.total * 0.9))
    assert estimate([BlockSpec("tests.user_block_fixtures:bottleneck", 8)]) is None  # no closed form: not estimated


def test_the_calibration_matmul_is_sized_to_answer_ctrl_c() -> None:
    from blockprof.timing.calibrate import MATMUL_N, describe_calibration, matmul_side
    from blockprof.timing.harness import conditions

    cond = conditions("cpu", threads=1)
    assert matmul_side(cond, limit=0.0) == 256  # one call may not take long: the smallest side
    assert 256 <= matmul_side(cond, limit=1e9) == MATMUL_N["cpu"]
    assert "about 10 s" in describe_calibration("cpu", "float32", 1) and "Ctrl-C" in describe_calibration(
        "cpu", "float32", 1
    )


# --- output streams ---


def test_compare_prints_counts_before_timing_and_progress_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdout gets the counts table first; stderr (not a terminal here) one line per timed step."""
    import sys

    import blockprof.api

    shown_before_timing: list[str] = []
    real = blockprof.api.add_timings

    def add_timings(df: pd.DataFrame, **kwargs: object) -> pd.DataFrame:
        sys.stdout.flush()
        shown_before_timing.append(sys.stdout.buffer.getvalue().decode())  # type: ignore[attr-defined]
        return real(df, **kwargs)

    monkeypatch.setattr(blockprof.api, "add_timings", add_timings)
    result = invoke(
        "compare", "--channels", "8", "--spatial", "8", "--tools", "torch", "--threads", "1", "--min-run-time", "0.01"
    )
    assert result.exit_code == 0, result.output
    assert "bottleneck" in shown_before_timing[0] and "timing —" not in shown_before_timing[0]
    steps = [line for line in result.stderr.splitlines() if line.startswith("timing 3 blocks ")]
    assert len(steps) == 18 and steps[0].startswith("timing 3 blocks 1/18: ") and "left)" in steps[0]
    assert "timing 3 blocks: done in" in result.stderr
    assert result.stdout.index("blockprof compare") < result.stdout.index("timing —")


def test_the_first_calibration_says_what_it_does(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from blockprof.timing import calibrate as calibration_fn  # the function (issue 12: a submodule shadowed it)

    assert callable(calibration_fn) and calibration_fn.__module__ == "blockprof.timing.calibrate"
    monkeypatch.setenv("BLOCKPROF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(__import__("sys").modules["blockprof.timing.calibrate"].MATMUL_N, "cpu", 256)
    monkeypatch.setitem(__import__("sys").modules["blockprof.timing.calibrate"].COPY_BYTES, "cpu", 2**20)
    result = invoke("calibrate", "--device", "cpu", "--threads", "1")
    assert result.exit_code == 0 and result.stderr.startswith(
        "calibrating: cpu float32 peaks at 1 threads, once per machine"
    )
    assert (tmp_path / "cache" / "peaks.json").is_file()
    assert (
        "calibrating" not in invoke("calibrate", "--device", "cpu", "--threads", "1").stderr
    )  # cached: nothing to say


def test_blockprof_runs_is_reachable_lazily() -> None:
    import subprocess
    import sys

    code = (
        "import sys, blockprof; assert 'blockprof.runs' not in sys.modules; "
        "assert blockprof.runs.run_environment is sys.modules['blockprof.runs'].run_environment; "
        "assert 'torch' not in sys.modules"
    )
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env={"PYTHONPATH": str(root)})


def test_the_suite_caches_privately(private_cache: Path) -> None:
    """conftest's session fixture points the cache at a temporary directory (and fails the
    session if the user's own cache changes meanwhile)."""
    import os

    from blockprof.timing.calibrate import CACHE_ENV, cache_path

    assert cache_path().parent == private_cache == Path(os.environ[CACHE_ENV])
    assert Path.home() not in private_cache.parents


# --- exit codes ---


def test_a_sweep_whose_every_cell_failed_exits_1(tmp_path: Path) -> None:
    fixtures = "tests.user_block_fixtures"
    result = invoke(
        "sweep", "--blocks", f"{fixtures}:raises", "--channels", "8", "--spatial", "8", "-o", str(tmp_path / "run")
    )
    assert result.exit_code == 1 and "every cell of" in result.stderr and "failed" in result.stderr
    plotted = invoke("plot", str(tmp_path / "run"), "-o", str(tmp_path / "p.html"))
    assert plotted.exit_code == 2 and "every one of the 1 cells" in plotted.output and "--time" not in plotted.output


def test_tools_none_is_accepted_wherever_tools_is(tmp_path: Path) -> None:
    compared = invoke(
        "compare", "--channels", "8", "--spatial", "8", "--tools", "none", "--no-time", "--format", "json"
    )
    assert compared.exit_code == 0, compared.output
    assert not any(k.endswith("_agrees") for k in json.loads(compared.stdout)[0])
    network = invoke("network", "resnet18", "--tools", "none", "--format", "json")
    assert network.exit_code == 0, network.output
    swept = invoke("sweep", "--channels", "8", "--spatial", "8", "--tools", "none", "-o", str(tmp_path / "run"))
    assert swept.exit_code == 0, swept.output
    mixed = invoke("compare", "--tools", "none,torch", "--no-time")
    assert mixed.exit_code == 2 and "'none' means no tool" in mixed.output


# --- tables that fit ---


def test_a_narrow_terminal_drops_the_least_important_columns_and_says_so() -> None:
    df = pd.DataFrame(
        {"block": ["inverted_residual"], "params": [1_180_672], "MACs": ["3.7G"], "inner": [1536], "note": ["x" * 30]}
    )
    df.attrs[PRIORITY] = ["block", "params", "MACs", "note", "inner"]
    wide = render(df, "table", width=200)
    assert "left out" not in wide and "1,180,672" in wide
    narrow = render(df, "table", width=44)
    assert "(left out to fit 44 columns: inner, note;" in narrow
    assert "inverted_residual" in narrow and "1,180,672" in narrow  # the name and the number whole
    assert max(len(line) for line in narrow.splitlines()[:-1]) <= 44


def test_log_axes_are_labelled_with_full_values() -> None:
    from blockprof.render.plots import _log_ticks

    ticks, labels = _log_ticks([12, 480])  # type: ignore[misc]
    assert labels == ["10", "20", "50", "100", "200", "500"] and ticks[1] == 20
    assert _log_ticks([3e3, 2e9])[1] == ["10k", "100k", "1M", "10M", "100M", "1G"]  # type: ignore[index]  # powers of ten only
    assert _log_ticks([]) is None


def test_plots_state_the_conditions_and_label_points_with_their_width(timed_run: Path) -> None:
    from blockprof.render import plots
    from blockprof.runs import load_run

    df = load_run(timed_run)
    for figure in (plots.roofline(df), plots.cost_latency(df)):
        subtitle = figure.layout.title.subtitle.text
        assert all(part in subtitle for part in ("input 8²", "batch 2", "1 thread", "float32", "cpu"))
        points = [t for t in figure.data if t.mode == "markers+text"]
        assert points and all(set(t.text) <= {"8", "16"} for t in points)
    assert all(axis.ticktext is not None for axis in (plots.latency(df).layout.yaxis,))
