"""Counting speed per block: the analytic path and each tool (median of repeats).

Run:  python benchmarks/bench_counting.py [--repeats 7]

Each path is timed side by side in one run, interleaved (block-major, then the
paths in turn, repeated), and reported as a median with its IQR and as a ratio
to the analytic path, so the figures survive a noisy, shared machine. Uses
torch.utils.benchmark's Measurement for the statistics.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch.utils.benchmark import Measurement

from blockprof.api import analytic_count, build_meta, count
from blockprof.blocks import build, resolve
from blockprof.counting.tools import adapter
from blockprof.spec import BlockSpec


def paths(spec: BlockSpec) -> dict[str, object]:
    definition, spec = resolve(spec)
    real = build(spec)
    return {
        "analytic": lambda: analytic_count(spec),
        "torch (meta)": lambda: adapter("torch").count(build_meta(definition, spec), spec.input_shape),
        "thop (meta)": lambda: adapter("thop").count(build_meta(definition, spec), spec.input_shape),
        "fvcore (cpu)": lambda: adapter("fvcore").count(real, spec.input_shape),
        "count() all": lambda: count(spec),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--channels", type=int, default=256)
    args = parser.parse_args()
    specs = [BlockSpec(b, args.channels) for b in ("basic", "bottleneck", "inverted_residual")]
    samples: dict[tuple[str, str], list[float]] = {}
    table = {s.block: paths(s) for s in specs}
    for fn in (f for p in table.values() for f in p.values()):
        fn()  # warm-up: imports, first traces
    for _ in range(args.repeats):
        for block, fns in table.items():
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                samples.setdefault((block, name), []).append(time.perf_counter() - start)
    print(f"# counting speed, {args.channels} channels, 1×C×56×56; {args.repeats} interleaved repeats")
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    print("| block | path | median ms | IQR ms | runs | × analytic |")
    print("|---|---|---:|---:|---:|---:|")
    for block in table:
        base = Measurement(1, samples[(block, "analytic")], "", "").median
        for name in table[block]:
            m = Measurement(1, samples[(block, name)], "", "")
            print(
                f"| {block} | {name} | {m.median * 1e3:.2f} | {m.iqr * 1e3:.2f} | {len(m.times)} | {m.median / base:,.0f}× |"
            )
    start = time.perf_counter()
    count(BlockSpec("basic", 4096, spatial=224, batch=64))
    print(
        f"\n4096-wide BasicBlock at 64×4096×224×224, count() with all tools: {time.perf_counter() - start:.2f} s (fvcore skipped: needs real memory)"
    )


if __name__ == "__main__":
    main()
