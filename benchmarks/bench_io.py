"""What durability costs: an atomic write (temp file, fsync, rename, fsync of the folder)
against a plain ``write_text``, for a run's meta.json and for a report-sized file; a run's
lock taken and released; one record appended and fsync'd.

Run:  python benchmarks/bench_io.py [--repeats 50]   (from the repository root, PYTHONPATH=.)
Figures are medians of interleaved repeats, so load on the machine hits both sides alike.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from blockprof.io import atomic_write_text
from blockprof.runs import RecordAppender, lock_run

META = '{"format": "blockprof-run", "schema_version": 1, "grid": {"channels": [8, 16]}}\n' * 40  # ~3 kB
REPORT = "<p>" + "x" * (4_600_000 - 8) + "</p>\n"  # the size of a report with plotly inlined
RECORD = {
    "cell": "0" * 16,
    "block": "bottleneck",
    "params": 70400,
    "macs": 218103808,
    "status": "ok",
    **{f"f{i}": i for i in range(60)},
}


def median_ms(cases: dict[str, Callable[[], None]], repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, call in cases.items():  # interleaved
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    repeats = parser.parse_args().repeats
    with tempfile.TemporaryDirectory(dir=".") as work:
        root = Path(work)
        appender = RecordAppender(root / "records.jsonl")

        def lock() -> None:
            with lock_run(root / "run"):
                pass

        figures = median_ms(
            {
                "meta.json, plain": lambda: (root / "plain.json").write_text(META, encoding="utf-8"),
                "meta.json, atomic": lambda: atomic_write_text(root / "atomic.json", META),
                "4.6 MB report, plain": lambda: (root / "plain.html").write_text(REPORT, encoding="utf-8"),
                "4.6 MB report, atomic": lambda: atomic_write_text(root / "atomic.html", REPORT),
                "run lock, take and release": lock,
                "one record, append + fsync": lambda: appender.append(RECORD),
            },
            repeats,
        )
        appender.close()
    for name, ms in figures.items():
        print(f"{name:<30} {ms:8.3f} ms")
    print(
        f"atomic/plain: meta {figures['meta.json, atomic'] / figures['meta.json, plain']:.1f}×, "
        f"report {figures['4.6 MB report, atomic'] / figures['4.6 MB report, plain']:.1f}×"
    )


if __name__ == "__main__":
    main()
