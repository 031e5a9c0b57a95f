"""Counting speed per network, all 43 at once, and the equal-budget width search (median of repeats).

Run:  python benchmarks/bench_networks.py [--repeats 5] [--networks resnet50,efficientnet_b0]

Each path is timed side by side in one run, interleaved (network-major, then the
paths in turn, repeated), and reported as a median with its IQR and as a ratio
to the analytic path, so the figures survive a noisy, shared machine. Uses
torch.utils.benchmark's Measurement for the statistics.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch
from torch.utils.benchmark import Measurement

from blockprof.budget import widest_within
from blockprof.counting.tools import adapter
from blockprof.networks import analytic_network, build_network, default_spatial, names, network_count

#: one network of each family and block kind, timed path by path (all 43 with --networks all)
ONE_PER_FAMILY = (
    "resnet50",
    "resnext50_32x4d",
    "regnet_y_400mf",
    "mobilenet_v2",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "efficientnet_v2_s",
    "mnasnet1_0",
)
#: the networks small enough to also time fvcore (a real CPU forward) and network_count() with every tool
REAL_FORWARD = ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2")


def paths(name: str) -> dict[str, Callable[[], object]]:
    """Each way to count ``name`` at its default size: analytic, then the tools (meta device where they can)."""
    size = default_spatial(name)
    shape = (1, 3, size, size)
    with torch.device("meta"):
        meta = build_network(name)
    out: dict[str, Callable[[], object]] = {
        "analytic": lambda: analytic_network(name),
        "torch (meta)": lambda: adapter("torch").count(meta, shape),
        "thop (meta)": lambda: adapter("thop").count(meta, shape),
    }
    if name in REAL_FORWARD:
        real = build_network(name)
        out["fvcore (cpu)"] = lambda: adapter("fvcore").count(real, shape)
        out["network_count() all"] = lambda: network_count(name)
    return out


def all_analytic() -> None:
    """Every network counted in closed form, at its default size, in this one process."""
    for name in names():
        analytic_network(name)


def budget_paths() -> dict[str, Callable[[], object]]:
    return {
        f"{block}, {what}": (lambda block=block, kw=kw: widest_within(block, **kw))  # type: ignore[misc]
        for block in ("basic", "bottleneck", "inverted_residual")
        for what, kw in (("params ≤ 1,180,672", {"budget_params": 1_180_672}), ("MACs ≤ 1e9", {"budget_macs": 10**9}))
    }


def run(table: dict[str, dict[str, Callable[[], object]]], repeats: int) -> dict[tuple[str, str], list[float]]:
    for fn in (f for p in table.values() for f in p.values()):
        fn()  # warm-up: imports, first traces
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(repeats):
        for group, fns in table.items():
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                samples.setdefault((group, name), []).append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--networks", default=",".join(ONE_PER_FAMILY), help="comma-separated network names (all: every one of the 43)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    all_analytic()
    cold = time.perf_counter() - start
    whole = Measurement(1, run({"all": {"all": all_analytic}}, args.repeats)[("all", "all")], "", "")
    print(
        f"# all {len(names())} networks analytically, one process: first pass {cold:.2f} s (after imports), "
        f"then median {whole.median:.2f} s (IQR {whole.iqr:.2f} s, {len(whole.times)} runs)\n"
    )
    table = {name: paths(name) for name in (names() if args.networks == "all" else args.networks.split(","))}
    samples = run(table, args.repeats)
    print(f"# network counting speed, 1×3×H×W at each network's default size; {args.repeats} interleaved repeats")
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads\n"
    )
    print("| network | path | median ms | IQR ms | runs | × analytic |")
    print("|---|---|---:|---:|---:|---:|")
    for network, fns in table.items():
        base = Measurement(1, samples[(network, "analytic")], "", "").median
        for name in fns:
            m = Measurement(1, samples[(network, name)], "", "")
            print(
                f"| {network} | {name} | {m.median * 1e3:.2f} | {m.iqr * 1e3:.2f} | {len(m.times)} | {m.median / base:,.1f}× |"
            )
    budget = run({"budget": budget_paths()}, args.repeats)
    print("\n| widest_within (spatial 56) | median ms | IQR ms | runs |")
    print("|---|---:|---:|---:|")
    for (_, name), times in budget.items():
        m = Measurement(1, times, "", "")
        print(f"| {name} | {m.median * 1e3:.2f} | {m.iqr * 1e3:.2f} | {len(m.times)} |")


if __name__ == "__main__":
    main()
