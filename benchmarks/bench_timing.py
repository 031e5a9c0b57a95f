"""Timing harness: fidelity, overhead, stability, device peaks and roofline (issue 3).

Run:  PYTHONPATH=. python benchmarks/bench_timing.py [--invocations 5] [--pairs 5] [--channels 256] [--threads N]

Everything is measured side by side in one run:

1. fidelity: for each block and step (fwd, train), ``--pairs`` back-to-back pairs of
   blockprof's median and a direct ``torch.utils.benchmark.Timer`` median of the same
   step written out here (``blocked_autorange(min_run_time=2)``, same threads), the
   order alternating; the ratio blockprof / direct of each pair, so that both halves
   of a pair see the same machine load;
2. overhead: blockprof against a direct Timer on ``nn.Identity`` (per call), and the
   wall time of a whole ``time_module`` call against the seconds it timed;
3. stability: the coefficient of variation (std / mean) of each median over
   ``--invocations`` separate processes, blockprof's (default budget) beside a direct
   Timer's in the same processes;
4. the CPU's measured peaks (fresh, not cached) and each block's GFLOP/s, intensity
   and roofline fraction at ``--channels``; the per-layer breakdown of the inverted
   residual; the wall time of timing the three blocks with the default budget (what
   ``blockprof compare`` pays).

Prints Markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BLOCKS = ("basic", "bottleneck", "inverted_residual")
ROOT = Path(__file__).resolve().parent.parent


def direct_timer(spec: object, mode: str, threads: int) -> object:
    """A Timer of ``spec``'s fwd or train step written out directly (no blockprof harness), and its context."""
    import contextlib

    import torch
    from torch.utils.benchmark import Timer

    from blockprof.blocks import build

    if mode == "fwd":
        model, x = build(spec).eval(), torch.randn(spec.input_shape)
        return Timer("model(x)", globals={"model": model, "x": x}, num_threads=threads), torch.inference_mode
    model, xg = build(spec).train(), torch.randn(spec.input_shape, requires_grad=True)
    stmt = "model.zero_grad(set_to_none=True); xg.grad = None; model(xg).mean().backward()"
    return Timer(stmt, globals={"model": model, "xg": xg}, num_threads=threads), contextlib.nullcontext


def direct_median(spec: object, mode: str, threads: int, min_run_time: float) -> float:
    timer, context = direct_timer(spec, mode, threads)
    with context():
        timer.timeit(2)  # warm-up, as blockprof's harness warms up
        return timer.blocked_autorange(min_run_time=min_run_time).median


def direct_medians(channels: int, threads: int) -> dict[str, float]:
    """Each block's fwd and train step timed directly with torch.utils.benchmark."""
    from blockprof.spec import BlockSpec

    return {
        f"{b} {m}": direct_median(BlockSpec(b, channels), m, threads, 1.0) for b in BLOCKS for m in ("fwd", "train")
    }


def fidelity(channels: int, threads: int, pairs: int) -> list[str]:
    """Back-to-back pairs (blockprof, direct), alternating order: the ratio of each pair."""
    from torch.utils.benchmark import Measurement

    from blockprof.spec import BlockSpec
    from blockprof.timing.harness import time_blocks

    lines = [
        "| block step | blockprof median ms (median of pairs) | direct median ms | blockprof ÷ direct per pair: median [min, max] | pairs |",
        "|---|---:|---:|---|---:|",
    ]
    for block in BLOCKS:
        spec = BlockSpec(block, channels)
        for mode in ("fwd", "train"):
            ours, theirs = [], []
            for i in range(pairs):

                def mine(spec: BlockSpec = spec, mode: str = mode, ours: list[float] = ours) -> None:
                    (t,) = time_blocks([spec], modes=(mode,), device="cpu", threads=threads)
                    ours.append(t.measurement(mode).median)

                def direct(spec: BlockSpec = spec, mode: str = mode, theirs: list[float] = theirs) -> None:
                    theirs.append(direct_median(spec, mode, threads, 2.0))

                for step in (mine, direct) if i % 2 == 0 else (direct, mine):
                    step()
            ratios = [a / b for a, b in zip(ours, theirs, strict=False)]
            r = Measurement(1, ratios, "", "")
            lines.append(
                f"| {block} {mode} | {statistics.median(ours) * 1e3:.2f} | {statistics.median(theirs) * 1e3:.2f} | "
                f"{r.median:.3f} [{min(ratios):.3f}, {max(ratios):.3f}] | {pairs} |"
            )
    return lines


def worker(channels: int, threads: int, first: str) -> None:
    """One invocation: blockprof's medians and the direct ones, in the order given; JSON on stdout."""
    from blockprof.spec import BlockSpec
    from blockprof.timing.harness import time_blocks

    result: dict[str, object] = {"threads": threads}

    def ours() -> None:
        start = time.perf_counter()
        timings = time_blocks([BlockSpec(b, channels) for b in BLOCKS], device="cpu", threads=threads)
        result["wall_s"] = time.perf_counter() - start
        result["blockprof"] = {f"{t.spec.block} {m}": getattr(t, m).median for t in timings for m in ("fwd", "train")}
        result["runs"] = {f"{t.spec.block} {m}": getattr(t, m).runs for t in timings for m in ("fwd", "train")}
        result["noisy"] = {f"{t.spec.block} {m}": getattr(t, m).noisy for t in timings for m in ("fwd", "train")}

    def theirs() -> None:
        result["direct"] = direct_medians(channels, threads)

    for step in (ours, theirs) if first == "blockprof" else (theirs, ours):
        step()
    print(json.dumps(result))


def overhead(threads: int) -> list[str]:
    import torch
    from torch import nn
    from torch.utils.benchmark import Timer

    from blockprof.timing.harness import time_module

    x = torch.randn(1, 256, 56, 56)
    lines = ["| path | fwd median µs | IQR µs | runs |", "|---|---:|---:|---:|"]
    samples: dict[str, list[float]] = {"blockprof": [], "direct": []}
    walls, timed = [], []
    for _ in range(5):  # interleaved
        start = time.perf_counter()
        t = time_module(nn.Identity(), x.shape, modes=("fwd",), device="cpu", threads=threads)
        walls.append(time.perf_counter() - start)
        timed.append(t.fwd.total_s)
        samples["blockprof"].append(t.fwd.median)
        with torch.inference_mode():
            samples["direct"].append(
                Timer("model(x)", globals={"model": nn.Identity(), "x": x}, num_threads=threads)
                .blocked_autorange(min_run_time=0.2)
                .median
            )
    from torch.utils.benchmark import Measurement

    for name, values in samples.items():
        m = Measurement(1, values, "", "")
        lines.append(f"| {name} | {m.median * 1e6:.3f} | {m.iqr * 1e6:.3f} | {len(values)} (medians) |")
    extra = (statistics.median(samples["blockprof"]) - statistics.median(samples["direct"])) * 1e6
    lines.append("")
    lines.append(f"Per-call overhead of the harness on nn.Identity: {extra:+.3f} µs (blockprof − direct).")
    lines.append(
        f"Wall time of one time_module(nn.Identity, fwd) call: median {statistics.median(walls):.2f} s, of which "
        f"{statistics.median(timed):.2f} s in timed calls (the rest: warm-up, block-size estimates, bookkeeping)."
    )
    return lines


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invocations", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--channels", type=int, default=256)
    parser.add_argument(
        "--threads", type=int, default=None, help="Threads for every measurement (default: torch's default)."
    )
    parser.add_argument("--worker", choices=("blockprof", "direct"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    threads = args.threads or torch.get_num_threads()
    if args.worker:
        worker(args.channels, threads, args.worker)
        return

    import pandas as pd

    from blockprof.spec import BlockSpec
    from blockprof.timing.calibrate import calibrate
    from blockprof.timing.env import cpu_count, cpu_model
    from blockprof.timing.harness import time_blocks
    from blockprof.timing.layers import layer_times
    from blockprof.timing.records import timing_frame

    print(f"# blockprof timing benchmark — {args.channels} channels, input 1×C×56×56")
    print(
        f"# {cpu_model()}, {cpu_count()} logical CPUs, torch {torch.__version__}, {threads} threads (torch's default: {torch.get_num_threads()}); "
        f"load average at start {os.getloadavg()[0]:.2f} (the machine is shared)\n"
    )

    runs = []
    for i in range(args.invocations):
        first = "blockprof" if i % 2 == 0 else "direct"
        out = subprocess.run(
            [sys.executable, __file__, "--worker", first, "--channels", str(args.channels), "--threads", str(threads)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = list(runs[0]["blockprof"])

    print("## 1. Fidelity: blockprof against a direct torch.utils.benchmark Timer, back-to-back pairs\n")
    print("\n".join(fidelity(args.channels, threads, args.pairs)) + "\n")

    print("## 2. Harness overhead on a trivial module (nn.Identity, 1×256×56×56 input)\n")
    print("\n".join(overhead(threads)) + "\n")

    print(f"## 3. Stability over {args.invocations} separate processes\n")
    print(
        "| block step | blockprof median ms, per process | CV blockprof | direct Timer median ms, same processes | CV direct |"
    )
    print("|---|---|---:|---|---:|")
    for key in keys:
        ours = [r["blockprof"][key] for r in runs]
        theirs = [r["direct"][key] for r in runs]
        print(
            f"| {key} | {', '.join(f'{v * 1e3:.2f}' for v in ours)} | {100 * cv(ours):.1f}% | "
            f"{', '.join(f'{v * 1e3:.2f}' for v in theirs)} | {100 * cv(theirs):.1f}% |"
        )
    print(
        f"\nblockprof runs per measurement: {min(n for r in runs for n in r['runs'].values())} to "
        f"{max(n for r in runs for n in r['runs'].values())}; noisy flags raised: "
        f"{sum(v for r in runs for v in r['noisy'].values())} of {len(runs) * len(keys)}"
    )
    walls = [r["wall_s"] for r in runs]
    print(
        f"Wall time of time_blocks(3 blocks, fwd + train, default budget): {', '.join(f'{w:.1f}' for w in walls)} s "
        f"(median {statistics.median(walls):.1f} s)\n"
    )

    print("## 4. Device peaks (measured now) and roofline at this width\n")
    peaks = calibrate("cpu", "float32", threads=threads, force=True)
    print(
        f"compute {peaks.flops_per_s / 1e9:.1f} GFLOP/s, median {peaks.flops_median_per_s / 1e9:.1f} (fp32 {peaks.flops_kernel}, "
        f"IQR {100 * peaks.flops_rel_iqr:.1f}%, {peaks.flops_runs} runs); bandwidth {peaks.bytes_per_s / 1e9:.1f} GB/s, median "
        f"{peaks.bytes_median_per_s / 1e9:.1f} ({peaks.copy_bytes >> 20} MiB copy, IQR {100 * peaks.bytes_rel_iqr:.1f}%, {peaks.bytes_runs} runs); "
        f"ridge {peaks.ridge_intensity:.1f} FLOP/byte; the faster of "
        + ", ".join(f"{name} {rate / 1e9:.1f}" for name, rate in peaks.kernel_flops_per_s.items())
        + " GFLOP/s\n"
    )
    df = timing_frame(
        time_blocks([BlockSpec(b, args.channels) for b in BLOCKS], device="cpu", threads=threads, min_run_time=1.0),
        peaks,
    )
    print(
        "| block | fwd ms (IQR) | runs | fwd GFLOP/s | fwd FLOP/byte | bound | fwd roofline | train ms (IQR) | train GFLOP/s | train roofline |"
    )
    print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    for _, r in df.iterrows():
        flag = " ⚠" if r["noisy"] else ""
        print(
            f"| {r['block']} | {r['fwd_ms']:.2f} ({r['fwd_iqr_ms']:.2f}){flag} | {r['runs']} | {r['fwd_gflops_per_s']:.1f} | {r['fwd_intensity']:.1f} | "
            f"{r['fwd_bound']} | {100 * r['fwd_roofline_fraction']:.1f}% | {r['train_ms']:.2f} ({r['train_iqr_ms']:.2f}) | "
            f"{r['train_gflops_per_s']:.1f} | {100 * r['train_roofline_fraction']:.1f}% |"
        )

    print(f"\n## Where the inverted residual's forward goes ({args.channels} channels, t=6)\n")
    layers = layer_times(BlockSpec("inverted_residual", args.channels), device="cpu", threads=threads)
    pd.set_option("display.width", 200)
    print("| layer | op | ms (IQR) | runs | share of time | share of MACs |")
    print("|---|---|---:|---:|---:|---:|")
    for _, r in layers.iterrows():
        macs = "-" if pd.isna(r["macs_share"]) else f"{100 * r['macs_share']:.1f}%"
        print(
            f"| {r['layer']} | {r['op']} | {r['ms']:.2f} ({r['iqr_ms']:.2f}) | {r['runs']} | {100 * r['time_share']:.1f}% | {macs} |"
        )
    print(f"\nthe same forward without the profiler: {layers.attrs['whole_ms_timer']:.2f} ms (torch.utils.benchmark)")
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
