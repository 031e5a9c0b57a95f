"""The 43-row table of torchvision's published figures beside blockprof's closed-form counts.

Run:  python benchmarks/published_table.py   (markdown on stdout; no torchvision needed)

Published: ``*_Weights.DEFAULT.meta`` (``num_params``, ``_ops`` = GFLOPS, which are conv + linear
MACs in G rounded to 3 decimals) at the crop size the weights are evaluated at.
"""

from __future__ import annotations

import time

from blockprof.networks import PUBLISHED, analytic_network, names
from blockprof.units import grouped


def main() -> None:
    print(
        "| network | input | published params | blockprof params | published GFLOPS | blockprof MACs "
        "| MACs in G (3 dp) | equal |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|:---:|")
    start = time.perf_counter()
    rows = [(name, analytic_network(name)) for name in names()]
    elapsed = time.perf_counter() - start
    for name, count in rows:
        params, gflops, size = PUBLISHED[name]
        total = count.total
        equal = total.params == params and round(total.macs / 1e9, 3) == gflops
        print(
            f"| {name} | {size}² | {grouped(params)} | {grouped(total.params)} | {gflops:g} | {grouped(total.macs)} | "
            f"{total.macs / 1e9:.3f} | {'✓' if equal else '✗'} |"
        )
    print(f"\n{len(rows)} networks counted in closed form in {elapsed:.2f} s (one process, after imports)")


if __name__ == "__main__":
    main()
