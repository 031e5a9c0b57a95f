"""What a sweep costs: a 1,000-cell counts-only sweep, and blockprof's overhead per timed cell.

Run:  python benchmarks/bench_sweep.py [--repeats 2] [--sample 10] [--skip-timed]   (from the repository root, blockprof installed or PYTHONPATH=.)

1. Counts only, 1,008 cells (3 blocks × 14 widths 16..1024 × 4 sizes × 6 batches),
   swept with the analytic count alone (``--tools none``), with the default
   cross-check (torch's counter), and with all three tools. The first two are
   swept whole, interleaved ``--repeats`` times (median wall time); all tools
   (fvcore runs a real batch-1 forward) are swept over every ``--sample``-th cell
   and scaled up, beside the default tools over the same cells for the ratio.
   Each run's records carry the seconds spent counting each cell (``count_s``),
   so the wall time splits into counting and bookkeeping (JSON, fsync, progress);
   the fsync of one record line is timed on its own too.
2. Timed, 9 cells (3 blocks × widths 32, 64, 128 at 28², batch 1, default timing
   settings): the seconds inside timed calls (``fwd_total_s + train_total_s``,
   from the harness) against the harness's wall time per group (warm-up,
   block-size estimation, memory probes) and the sweep's wall time (counting,
   writing, calibration lookup). Device peaks are calibrated before the clock starts.

All figures come from one process on one machine, measured side by side; on a
shared machine compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from blockprof.api import count
from blockprof.grid import Grid
from blockprof.runs import Run, load_run
from blockprof.spec import BlockSpec
from blockprof.sweep import sweep

WIDTHS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 640, 768, 1024)
COUNT_GRID = Grid(channels=WIDTHS, spatial=(56, 28, 14, 7), batch=(1, 2, 4, 8, 16, 32))
TIMED_GRID = Grid(channels=(32, 64, 128), spatial=(28,), batch=(1,), device=("cpu",))


def swept(grid: Grid, tools: tuple[str, ...], work: Path, shard: str | None = None) -> tuple[float, float, int]:
    """(wall seconds, seconds counting, cells) of one fresh sweep; shard 1/n samples every n-th cell."""
    run = work / f"run-{len(list(work.iterdir()))}"
    start = time.perf_counter()
    df = sweep(grid, run, tools=tools, shard=shard)
    wall = time.perf_counter() - start
    shutil.rmtree(run)
    return wall, float(df["count_s"].sum()), len(df)


def fsync_cost(work: Path, repeats: int = 200) -> float:
    """Median seconds to append (write, flush, fsync) one typical record."""
    record = {"cell": "0" * 16, **count(BlockSpec("bottleneck", 256), ("torch",))}
    run = Run.create(work / "fsync", {"grid": None, "settings": {}, "environment": {}})
    times = []
    with run.appender() as appender:
        for _ in range(repeats):
            start = time.perf_counter()
            appender.append(record)
            times.append(time.perf_counter() - start)
    shutil.rmtree(work / "fsync")
    return statistics.median(times)


def counts_only(work: Path, repeats: int, sample: int) -> None:
    cells = len(COUNT_GRID.cells())
    count(BlockSpec("basic", 16), ("fvcore", "thop", "torch"))  # imports and first-call set-up, off the clock
    results: dict[str, list[tuple[float, float, int]]] = {"none": [], "torch": []}
    for _ in range(repeats):
        for name, tools in (("none", ()), ("torch", ("torch",))):
            results[name].append(swept(COUNT_GRID, tools, work))
    shard = f"1/{sample}"
    sampled_default = swept(COUNT_GRID, ("torch",), work, shard)
    sampled_all = swept(COUNT_GRID, ("fvcore", "thop", "torch"), work, shard)
    append = fsync_cost(work)

    print(f"## Counts only: {cells:,} cells\n")
    print("| tools | wall (s) | per cell (ms) | counting per cell (ms) | bookkeeping per cell (ms) | × analytic only |")
    print("|---|---:|---:|---:|---:|---:|")
    base = statistics.median(w for w, _, _ in results["none"])
    for name, label in (("none", "analytic only (`--tools none`)"), ("torch", "analytic + torch (default)")):
        wall = statistics.median(w for w, _, _ in results[name])
        counting = statistics.median(c for _, c, _ in results[name])
        print(
            f"| {label} | {wall:.1f} | {wall / cells * 1e3:.1f} | {counting / cells * 1e3:.1f} | {(wall - counting) / cells * 1e3:.1f} | {wall / base:.1f} |"
        )
    for (wall, counting, n), label in (
        (sampled_default, "analytic + torch, sampled"),
        (sampled_all, "all three tools, sampled"),
    ):
        print(
            f"| {label} ({n} cells, ×{cells / n:.1f}) | {wall * cells / n:.1f} (est.) | {wall / n * 1e3:.1f} | {counting / n * 1e3:.1f} | "
            f"{(wall - counting) / n * 1e3:.1f} | {wall / n * cells / base:.1f} |"
        )
    print(
        f"\nAll three tools cost {sampled_all[0] / sampled_default[0]:.1f}× the default over the same {sampled_all[2]} cells. "
        f"One record append (write + flush + fsync): median {append * 1e3:.2f} ms of 200. "
        f"Whole sweeps: median of {repeats}, interleaved.\n"
    )


def timed(work: Path) -> None:
    from blockprof.timing.calibrate import calibrate

    calibrate("cpu", "float32", torch.get_num_threads())  # once per machine; cached
    run = work / "timed"
    start = time.perf_counter()
    df = sweep(TIMED_GRID, run, time=True)
    wall = time.perf_counter() - start
    df = load_run(run)
    cells = len(df)
    timed_calls = float((df["fwd_total_s"] + df["train_total_s"]).sum())
    groups = float(df.drop_duplicates("in_channels")["timing_group_s"].sum())
    counting = float(df["count_s"].sum())
    print(
        f"## Timed: {cells} cells ({len(TIMED_GRID.blocks)} blocks × {len(TIMED_GRID.channels)} widths at 28², batch 1; "
        f"min_run_time 0.2 s, 3 rounds, ≥10 samples; {torch.get_num_threads()} threads)\n"
    )
    print(f"| seconds per cell (mean of {cells}) | s | what |")
    print("|---|---:|---|")
    per = lambda s: s / cells
    print(f"| in timed calls | {per(timed_calls):.2f} | fwd_total_s + train_total_s: the measurement itself |")
    print(
        f"| timing harness outside timed calls | {per(groups - timed_calls):.2f} | warm-up, block-size estimation, saved-tensor probe |"
    )
    print(f"| sweep outside timing | {per(wall - groups):.3f} | counting ({per(counting):.3f}), records, progress |")
    print(f"| total | {per(wall):.2f} | |")
    print(
        f"\nOverhead against the timings: harness {(groups - timed_calls) / timed_calls:.0%}, "
        f"sweep {(wall - groups) / timed_calls:.1%} of the seconds in timed calls. "
        f"Samples per median: fwd {int(df['fwd_runs'].min())}..{int(df['fwd_runs'].max())}, "
        f"train {int(df['train_runs'].min())}..{int(df['train_runs'].max())}.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="whole counts-only sweeps per tool set (median)")
    parser.add_argument("--sample", type=int, default=10, help="all tools run on every n-th cell")
    parser.add_argument("--skip-timed", action="store_true")
    args = parser.parse_args()
    from blockprof.timing.env import cpu_model

    print(
        f"Machine: {cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}; "
        f"load average before: {os.getloadavg()[0]:.2f}\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        counts_only(work, args.repeats, args.sample)
        if not args.skip_timed:
            timed(work)
    print(f"Load average after: {os.getloadavg()[0]:.2f} (other processes share the CPUs: compare ratios, not seconds)")


if __name__ == "__main__":
    main()
