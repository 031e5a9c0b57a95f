"""What a report costs as a run grows: build time and file size (median of interleaved repeats).

Run:  python benchmarks/bench_report.py [--repeats 5]   (from the repository root, blockprof installed or PYTHONPATH=.)

The records are the committed example run's 18 (reports/example-run), repeated
k times with each copy at a width of its own, so the tables, figures and summary
grow as a real sweep's would; the numbers in them are copies, only the cost of
rendering is measured. Sizes are interleaved (size-major within each repeat) and
reported as a median with its IQR and as a ratio to the 18-record build, with the
file's bytes split into plotly.js (fixed) and the rest (what the records add).
"""

from __future__ import annotations

import argparse
import platform
import time

import pandas as pd
from torch.utils.benchmark import Measurement
from torch.utils.benchmark.utils.common import TaskSpec

from blockprof.render.report.html import build_report, plotly_js
from blockprof.runs import Run

EXAMPLE_RUN = "reports/example-run"


def scaled(df: pd.DataFrame, copies: int) -> pd.DataFrame:
    """``copies`` × the records, copy i at widths × (i + 1) so no two cells share a point."""
    parts = []
    for i in range(copies):
        part = df.copy()
        for column in ("in_channels", "out_channels"):
            part[column] = part[column] * (i + 1)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--copies", default="1,10,100")
    args = parser.parse_args()
    run = Run.open(EXAMPLE_RUN)
    meta = dict(run.meta)
    frames = {int(k): scaled(run.frame(), int(k)) for k in args.copies.split(",")}
    build_report(frames[min(frames)], meta=meta, timestamp=None)  # warm-up: imports, template compile
    times: dict[int, list[float]] = {k: [] for k in frames}
    sizes: dict[int, int] = {}
    for _ in range(args.repeats):
        for k, df in frames.items():
            start = time.perf_counter()
            html = build_report(df, meta=meta, timestamp=None)
            times[k].append(time.perf_counter() - start)
            sizes[k] = len(html.encode())
    js = len(plotly_js().encode())
    stats = {k: Measurement(1, v, TaskSpec("build_report", "")) for k, v in times.items()}
    base = stats[min(frames)].median
    print(
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; plotly.js is {js:,} bytes of every file"
    )
    print()
    print("| records | build median s | IQR s | runs | × 18 records | file bytes | beyond plotly.js |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for k, m in stats.items():
        print(
            f"| {18 * k:,} | {m.median:.2f} | {m.iqr:.2f} | {len(times[k])} | {m.median / base:.1f}× | {sizes[k]:,} | {sizes[k] - js:,} |"
        )


if __name__ == "__main__":
    main()
