"""compare with timing: the timing columns join the counts, and the terminal shows both tables."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from blockprof.api import compare
from blockprof.cli import cli

FAST = {"device": "cpu", "threads": 1, "min_run_time": 0.01}


@pytest.mark.timing
def test_compare_times_every_block() -> None:
    df = compare(channels=32, spatial=16, tools=("torch",), time=True, timing=FAST)
    assert list(df["status"]) == ["ok"] * 3
    assert (df["fwd_ms"] > 0).all() and (df["train_ms"] > 0).all()
    # a training step does ~3× a forward's work. On every row, contended or not: the fastest sample of each is the
    # one least disturbed by other jobs, where a median under load can be anything (what the contended flag says)
    fastest_fwd, fastest_train = df["fwd_samples_ms"].map(min), df["train_samples_ms"].map(min)
    assert (fastest_train > fastest_fwd).all(), df[["block", "fwd_samples_ms", "train_samples_ms", "contended"]]
    assert (df["runs"] >= 10).all() and (df["threads"] == 1).all()
    assert df.loc[df["block"] == "basic", "train_ms_rel"].item() == 1.0
    # counts are untouched by the join, and the timed FLOP rate uses them
    assert (df["fwd_gflops_per_s"] - df["flops"] / (df["fwd_ms"] * 1e-3) / 1e9).abs().max() < 1e-6 * df[
        "fwd_gflops_per_s"
    ].max()


@pytest.mark.timing
@pytest.mark.slow
def test_cli_shows_the_timing_table_and_json_fields() -> None:
    runner = CliRunner()
    args = [
        "compare",
        "--channels",
        "32",
        "--spatial",
        "16",
        "--tools",
        "torch",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--min-run-time",
        "0.01",
    ]
    table = runner.invoke(cli, args)
    assert table.exit_code == 0, table.output
    assert "fwd ms" in table.stdout and "roofline" in table.stdout and "torch.utils.benchmark" in table.stdout
    records = json.loads(runner.invoke(cli, [*args, "--format", "json"]).stdout)
    for field in (
        "device",
        "dtype",
        "threads",
        "fwd_ms",
        "fwd_iqr_ms",
        "train_ms",
        "train_iqr_ms",
        "runs",
        "fwd_gflops_per_s",
        "train_gflops_per_s",
        "roofline_fraction",
    ):
        assert all(field in r for r in records), field
    assert all(r["status"] == "ok" and r["device"] == "cpu" for r in records)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error a machine without CUDA gives")
def test_cuda_without_gpu_is_one_line() -> None:
    result = CliRunner().invoke(cli, ["compare", "--channels", "32", "--spatial", "8", "--device", "cuda"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and "cuda" in result.stderr.lower()


def test_footer_flags_stale_peaks_and_load() -> None:
    import pandas as pd

    from blockprof.render.compare import timing_footer

    df = pd.DataFrame(
        {
            "block": ["basic", "bottleneck"],
            "in_channels": [64, 64],
            "status": ["ok", "ok"],
            "error": [None, None],
            "roofline_fraction": [1.4, 0.5],
            "load_average": [5.0, 5.0],
            "threads": [2, 2],
        }
    )
    footer = timing_footer(df)
    assert "roofline above 100% for basic:" in footer and "calibrate --force" in footer
    assert "load average 5.0" in footer
    quiet = timing_footer(df.assign(roofline_fraction=[0.9, 0.5], load_average=[0.5, 0.5]))
    assert "roofline above" not in quiet and "load average" not in quiet
