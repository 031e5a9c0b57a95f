"""Does the contention flag fire when it should? The same small timing, side by side:

* as found: the machine with whatever other work it has (the load of the day);
* hogged: the same, with one busy-looping process per logical CPU.

For each condition: the load average before and after, the share of CPU time
the whole machine left idle while timing (/proc/stat), each row's CPU/wall
ratio of the timed code, how many rows are flagged contended, and the median
times. Run: python benchmarks/bench_contention.py [--threads 1,2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from blockprof.spec import BlockSpec
from blockprof.timing.harness import time_blocks
from blockprof.timing.records import timing_frame

SPECS = [BlockSpec(b, 64, spatial=28) for b in ("basic", "bottleneck", "inverted_residual")]


def idle_ticks() -> tuple[int, int]:
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])  # idle + iowait, total


def measure(threads: int) -> dict[str, object]:
    before = idle_ticks()
    load = os.getloadavg()[0]
    df = timing_frame(time_blocks(SPECS, device="cpu", threads=threads, min_run_time=0.3))
    after = idle_ticks()
    return {
        "load": (load, os.getloadavg()[0]),
        "idle": (after[0] - before[0]) / max(1, after[1] - before[1]),
        "ratios": list(df["cpu_wall_ratio"]),
        "contended": int(df["contended"].sum()),
        "fwd_ms": list(df["fwd_ms"]),
        "train_ms": list(df["train_ms"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="1,2")
    threads = [int(t) for t in parser.parse_args().threads.split(",")]
    print(f"{os.cpu_count()} logical CPUs; blocks: {', '.join(s.label for s in SPECS)} at 28², batch 1")
    results = {}
    for n in threads:
        results[("as found", n)] = measure(n)
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
        try:
            time.sleep(1.0)  # let the scheduler spread them
            results[("hogged", n)] = measure(n)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    print(
        f"{'condition':10} {'threads':>7} {'load before→after':>18} {'idle CPU':>8} {'CPU/wall per block':>22} "
        f"{'flagged':>7}  fwd ms"
    )
    for (condition, n), r in results.items():
        ratios = " ".join(f"{x:.2f}" for x in r["ratios"])  # type: ignore[attr-defined]
        fwd = " ".join(f"{x:.3g}" for x in r["fwd_ms"])  # type: ignore[attr-defined]
        load = "{:.1f}→{:.1f}".format(*r["load"])  # type: ignore[str-format]
        print(f"{condition:10} {n:>7} {load:>18} {r['idle']:>8.0%} {ratios:>22} {r['contended']:>4} of 3  {fwd}")
    for n in threads:
        found, hogged = results[("as found", n)], results[("hogged", n)]
        slower = [h / f for h, f in zip(hogged["fwd_ms"], found["fwd_ms"], strict=True)]  # type: ignore[call-overload]
        print(f"threads {n}: hogged / as-found forward median: {' '.join(f'{s:.2f}×' for s in slower)}")


if __name__ == "__main__":
    main()
