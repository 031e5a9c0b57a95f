"""Sweeps: Ctrl-C and resume, failing cells, shards, timing, and the sweep/show CLI."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import blockprof.counting.record
from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.grid import Grid
from blockprof.runs import RECORDS, load_run, merge
from blockprof.sweep import sweep
from tests.processes import start, wait_for_records

ROOT = Path(__file__).parent.parent
#: what a count is made of: equal counts mean these fields are equal
COUNT_COLUMNS = [
    "cell",
    "block",
    "in_channels",
    "out_channels",
    "stride",
    "expansion",
    "spatial",
    "batch",
    "params",
    "module_params",
    "params_conv",
    "macs",
    "flops",
    "train_flops",
    "torch_macs",
    "torch_train_flops",
    "status",
]


def lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / RECORDS).read_text().splitlines()]


@pytest.mark.slow
def test_sigint_stops_between_cells_and_resume_finishes_every_cell_exactly_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    widths = ",".join(str(c) for c in range(8, 68, 4))  # 45 cells at ~20 ms each: Ctrl-C lands mid-sweep
    args = ["sweep", "--channels", widths, "--spatial", "8", "--tools", "torch", "-o", str(run)]
    proc = start(*args)
    wait_for_records(run, proc)  # Ctrl-C lands mid-sweep
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted:" in err and f"blockprof sweep -o {run} --resume" in err and "Traceback" not in err
    saved = (run / RECORDS).read_bytes()
    assert saved.endswith(b"\n")  # stopped between cells: no half-written record
    interrupted = len(saved.splitlines())
    assert 1 <= interrupted < 45

    result = CliRunner().invoke(cli, ["sweep", "-o", str(run), "--resume"])
    assert result.exit_code == 0, result.output
    assert f"resuming: {interrupted} of 45 cells already done" in result.stderr
    assert f"{45 - interrupted} done now, {interrupted} already done (skipped)" in result.stderr
    keys = [r["cell"] for r in lines(run)]
    expected = {c.key for c in Grid(channels=tuple(range(8, 68, 4)), spatial=(8,)).cells()}
    assert len(keys) == 45 and set(keys) == expected  # every cell, exactly once


class Exploding(Exception):
    pass


def test_failing_cells_are_recorded_and_the_sweep_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_count = blockprof.counting.record.count_record

    def count(spec, tools):  # type: ignore[no-untyped-def]
        if spec.block == "inverted_residual" and spec.in_channels == 16:
            raise Exploding("the block blew up\nsecond line")
        return real_count(spec, tools)

    monkeypatch.setattr(blockprof.counting.record, "count_record", count)
    grid = Grid(channels=(8, 16, 24), spatial=(8, 12), options={"groups": [1, 3], "stride": [1, 3]})
    df = sweep(grid, tmp_path / "run", tools=())
    assert len(df) == len(grid.cells()) == 3 * 2 * 2 * (1 + 2 + 1)
    errors = df[df["status"] == "error"].set_index(["block", "in_channels", "spatial"])
    assert (df["status"] == "ok").sum() == len(df) - len(errors) > 0
    # stride 3 at spatial 8 is a valid cell now: output side (8 − 1) // 3 + 1 = 3
    assert ("basic", 8, 8) not in errors.index
    # groups 3 with inner width C/4 = 2 or 4: the bottleneck refuses it; at C = 24 (inner 6) it is fine
    grouped = df[(df["block"] == "bottleneck") & (df["groups"] == 3) & (df["spatial"] == 12)].set_index(
        ["in_channels", "stride"]
    )["error"]
    assert (
        grouped[(8, 1)]
        == "bottleneck: inner width 2 is not divisible by groups 3; use groups that divide 2 or a width that 3 divides"
    )
    assert grouped[(16, 3)].startswith("bottleneck: inner width 4") and pd.isna(grouped[(24, 1)])  # no error
    # an exception inside counting: its type and first line, nothing more
    exploded = df[df["error"].str.startswith("Exploding", na=False)]
    # stride 1 and 3, at 8 and 12
    assert set(exploded["error"]) == {"Exploding: the block blew up"} and len(exploded) == 4
    assert set(exploded["block"]) == {"inverted_residual"} and set(exploded["in_channels"]) == {16}
    assert df.attrs["sweep"]["failed"] == len(errors)


@pytest.mark.slow
def test_shards_merged_equal_the_unsharded_sweep(tmp_path: Path) -> None:
    grid = Grid(channels=(8, 16, 32, 48), spatial=(8, 4), options={"expansion": [2, 4]})
    whole = sweep(grid, tmp_path / "whole", tools=("torch",))
    for i in (1, 2, 3):
        part = sweep(grid, tmp_path / f"part{i}", tools=("torch",), shard=f"{i}/3")
        assert json.loads((tmp_path / f"part{i}" / "meta.json").read_text())["shard"] == {"index": i, "count": 3}
        assert len(part) in (len(whole) // 3, len(whole) // 3 + 1)
    result = merge([tmp_path / f"part{i}" for i in (1, 2, 3)], tmp_path / "merged")
    assert result.duplicates == 0 and result.cells == len(whole)
    merged = load_run(tmp_path / "merged")
    a = whole[COUNT_COLUMNS].sort_values("cell").reset_index(drop=True)
    b = merged[COUNT_COLUMNS].sort_values("cell").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    # the merged run is the unsharded grid: resuming it has nothing left to do
    assert json.loads((tmp_path / "merged" / "meta.json").read_text())["shard"] is None
    assert sweep(None, tmp_path / "merged", resume=True).attrs["sweep"]["done"] == 0


def test_a_missing_shard_is_filled_by_resuming_the_merge(tmp_path: Path) -> None:
    grid = Grid(channels=(8, 16), spatial=(4,))
    for i in (1, 2):
        sweep(grid, tmp_path / f"part{i}", tools=(), shard=f"{i}/3")
    merge([tmp_path / "part1", tmp_path / "part2"], tmp_path / "merged")
    df = sweep(None, tmp_path / "merged", resume=True)
    assert df.attrs["sweep"]["done"] == 2 and sorted(df["cell"]) == sorted(c.key for c in grid.cells())


def test_the_library_prints_nothing_and_reports_progress(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    seen = []
    sweep(Grid(channels=(8,), spatial=(4,)), tmp_path / "run", tools=(), progress=seen.append)
    out, err = capsys.readouterr()
    assert out == err == ""
    assert (
        [p.done for p in seen] == [0, 1, 2, 3]
        and seen[-1].total == 3
        and seen[-1].last.startswith("inverted_residual 8")
    )


def test_counts_only_sweeps_refuse_dtype_and_device_axes(tmp_path: Path) -> None:
    with pytest.raises(BlockprofError, match="counts do not depend on dtype or device"):
        sweep(Grid(channels=(8,), dtype=("float32", "bfloat16")), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_unknown_tools_fail_before_any_cell(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["sweep", "--channels", "8", "--tools", "ptflops", "-o", str(tmp_path / "run")])
    assert result.exit_code == 2 and "unknown tool(s) ptflops" in result.stderr and not (tmp_path / "run").exists()


def test_a_timed_sweep_records_timings_beside_counts(timed_run: Path) -> None:
    df = load_run(timed_run)
    assert len(df) == 6 and (df["status"] == "ok").all()
    for mode in ("fwd", "train"):
        assert (df[f"{mode}_ms"] > 0).all() and (df[f"{mode}_runs"] >= 4).all() and (df[f"{mode}_iqr_ms"] >= 0).all()
        # achieved GFLOP/s is the analytic FLOPs over the median
        flops = df["flops"] if mode == "fwd" else df["train_flops"]
        assert (df[f"{mode}_gflops_per_s"] - flops / (df[f"{mode}_ms"] * 1e-3) / 1e9).abs().max() < 1e-9
    assert set(df["timing_group"]) == {3} and df.groupby("in_channels")["timing_group_s"].nunique().eq(1).all()
    assert (df["device"] == "cpu").all() and (df["threads"] == 1).all()
    meta = json.loads((timed_run / "meta.json").read_text())
    assert meta["settings"]["time"] and meta["environment"]["threads"] == 1 and "cpu/float32" in meta["peaks"]
    assert df["peak_gflops_per_s"].iloc[0] == pytest.approx(meta["peaks"]["cpu/float32"]["flops_per_s"] / 1e9)


@pytest.mark.timing
def test_a_timing_failure_is_recorded_per_cell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import blockprof.timing.harness as harness

    def out_of_memory(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99 GB")

    monkeypatch.setattr(harness, "time_blocks", out_of_memory)
    monkeypatch.setenv("BLOCKPROF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("blockprof.sweep._peaks", lambda grid, settings: None)  # calibration is not under test here
    df = sweep(
        Grid(channels=(8,), spatial=(4,), device=("cpu",)),
        tmp_path / "run",
        tools=(),
        time=True,
        min_run_time=0.01,
        rounds=1,
        min_runs=4,
    )
    assert (df["status"] == "error").all() and (df["params"] > 0).all()  # the counts are kept
    assert df["error"].str.startswith("timing failed: RuntimeError: DefaultCPUAllocator: can't allocate memory").all()


# --- the CLI ---


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    result = CliRunner().invoke(
        cli, ["sweep", "--channels", "8,16", "--spatial", "4", "--groups", "1,3", "-o", str(run)]
    )
    assert result.exit_code == 0, result.output
    assert "8 cells in" in result.stderr and "8 done now, 0 already done (skipped), 2 failed now" in result.stderr
    assert "failed: bottleneck C=8, input 1×8×4×4 (g3), float32 on auto: bottleneck: inner width 2" in result.stderr
    return run


def test_show_json_is_the_compare_schema_with_status_per_cell(cli_run: Path) -> None:
    from blockprof.records import COUNT_FIELDS
    from blockprof.schema import MODEL_FIELDS

    result = CliRunner().invoke(cli, ["show", str(cli_run), "--format", "json"])
    records = json.loads(result.stdout)
    assert result.exit_code == 0 and len(records) == 8
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) == 6 and all(r["error"] is None and r["torch_macs"] == r["macs"] for r in ok)
    asked = {  # the default tools: torch only; block cells, so no model fields
        f for f in COUNT_FIELDS if not f.startswith(("fvcore_", "thop_")) and f not in MODEL_FIELDS
    }
    assert all(asked <= set(r) for r in ok)
    failed = [r for r in records if r["status"] == "error"]
    assert len(failed) == 2 and all("not divisible by groups 3" in r["error"] for r in failed)


def test_show_table_csv_markdown_parquet_and_pivot(cli_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    table = runner.invoke(cli, ["show", str(cli_run)])
    assert (
        table.exit_code == 0
        and "8 cells, 2 failed" in table.stdout
        and "error: bottleneck: inner width 2" in table.stdout
    )
    csv = runner.invoke(cli, ["show", str(cli_run), "--format", "csv"])
    assert csv.stdout.startswith("block,in_channels") and len(pd.read_csv(io.StringIO(csv.stdout))) == 8
    markdown = runner.invoke(cli, ["show", str(cli_run), "--format", "markdown", "--reference", "basic"])
    assert markdown.stdout.startswith("| cell") and "macs" in markdown.stdout
    parquet = tmp_path / "run.parquet"
    assert runner.invoke(cli, ["show", str(cli_run), "--format", "parquet", "-o", str(parquet)]).exit_code == 0
    assert len(pd.read_parquet(parquet)) == 8
    assert runner.invoke(cli, ["show", str(cli_run), "--format", "parquet"]).exit_code == 2
    pivot = runner.invoke(cli, ["show", str(cli_run), "--pivot", "macs", "--where", "groups=1", "--format", "csv"])
    assert pivot.exit_code == 0, pivot.output
    rows = pivot.stdout.strip().splitlines()
    assert rows[0] == "block,8,16" and rows[1].startswith("basic,") and len(rows) == 4
    ambiguous = runner.invoke(cli, ["show", str(cli_run), "--pivot", "macs"])
    assert ambiguous.exit_code == 2 and "groups vary; fix them, e.g. groups=1" in ambiguous.stderr


def test_relative_and_pivot_from_the_api(cli_run: Path) -> None:
    from blockprof.api import pivot, relative

    df = load_run(cli_run)
    rel = relative(df[df["groups"] == 1], "basic")
    basic = rel[rel["block"] == "basic"]
    assert (basic["macs_rel"] == 1).all() and (basic["params_rel"] == 1).all()
    table = pivot(df, "params", groups=1)
    assert list(table.index) == ["basic", "bottleneck", "inverted_residual"] and list(table.columns) == [8, 16]
    assert (
        table.loc["bottleneck", 16]
        == df[(df["block"] == "bottleneck") & (df["in_channels"] == 16) & (df["groups"] == 1)]["params"].item()
    )


def test_cells_that_differ_only_in_dtype_are_counted_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_count = blockprof.counting.record.count_record
    monkeypatch.setattr(
        blockprof.counting.record, "count_record", lambda spec, tools: calls.append(spec) or real_count(spec, tools)
    )
    monkeypatch.setattr("blockprof.sweep._time_group", lambda *args: None)  # the timing is not under test here
    monkeypatch.setattr("blockprof.sweep._peaks", lambda grid, settings: None)
    df = sweep(
        Grid(channels=(8,), spatial=(4,), dtype=("float32", "bfloat16"), device=("cpu",)),
        tmp_path / "run",
        tools=(),
        time=True,
    )
    assert len(df) == 6 and len(calls) == 3 == len(set(calls))
    by_dtype = df.set_index(["block", "dtype"])["macs"]
    assert all(
        by_dtype[(b, "float32")] == by_dtype[(b, "bfloat16")] for b in ("basic", "bottleneck", "inverted_residual")
    )


def test_user_blocks_that_raise_are_recorded_beside_those_that_count(tmp_path: Path) -> None:
    fixtures = "tests.user_block_fixtures"
    result = CliRunner().invoke(
        cli,
        [
            "sweep",
            "--blocks",
            "basic",
            "--block",
            f"{fixtures}:raises",
            "--block",
            f"{fixtures}:bottleneck",
            "--block",
            f"{fixtures}:CrashesInForward",
            "--channels",
            "16,32",
            "--spatial",
            "8",
            "-o",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    df = load_run(tmp_path / "run").set_index(["block", "in_channels"])
    assert len(df) == 8 and "4 failed now" in result.stderr
    assert df.loc[(f"{fixtures}:raises", 16), "error"].endswith("raised ValueError: cannot build 16 channels")
    assert (
        "its forward on a 1×32×8×8 input raised RuntimeError" in df.loc[(f"{fixtures}:CrashesInForward", 32), "error"]
    )
    # the user's bottleneck is blockprof's own behind the user-block door: same counts as the registered one
    ours = sweep(Grid(blocks=("bottleneck",), channels=(16, 32), spatial=(8,)), tmp_path / "ours", tools=())
    assert list(df.loc[f"{fixtures}:bottleneck", "macs"]) == list(ours["macs"])
    assert (df.loc[f"{fixtures}:bottleneck", "status"] == "ok").all()
