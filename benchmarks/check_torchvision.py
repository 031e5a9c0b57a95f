"""Check blockprof's 43 network counts against torchvision's own modules (needs torchvision; not a test).

Run:  python benchmarks/check_torchvision.py [--sizes default,57,225]

For each network and input side: torchvision's published ``num_params`` and ``_ops`` (default size
only), its module's ``parameters()``, and FlopCounterMode on its forward (meta device, so no memory),
against blockprof's closed form. torchvision's registry wheel may need the CPU shim first: put the
directory holding ``tvshim.py`` on PYTHONPATH (its import makes ``import torchvision`` work).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib

import torch
from torch.utils.flop_counter import FlopCounterMode

from blockprof.networks import PUBLISHED, analytic_network, names


def torchvision_module(name: str) -> torch.nn.Module:
    """torchvision's model on the meta device. RegNet's width generator computes with tensors, so
    it runs on the CPU inside the meta-device context."""
    with contextlib.suppress(ImportError):
        importlib.import_module("tvshim")
    from torchvision import models
    from torchvision.models import regnet

    original = regnet.BlockParams.from_init_params.__func__  # type: ignore[attr-defined]

    def on_cpu(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        with torch.device("cpu"):
            return original(cls, *args, **kwargs)

    regnet.BlockParams.from_init_params = classmethod(on_cpu)  # type: ignore[method-assign, assignment]
    try:
        with torch.device("meta"):
            return models.get_model(name).eval()
    finally:
        regnet.BlockParams.from_init_params = classmethod(original)  # type: ignore[method-assign, assignment]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="default,57,225")
    parser.add_argument("--networks", default=",".join(names()))
    args = parser.parse_args()
    failures = 0
    print(
        "| network | input | torchvision params | blockprof params "
        "| torchvision MACs (FlopCounterMode / 2) | blockprof MACs | equal |"
    )
    print("|---|---:|---:|---:|---:|---:|:---:|")
    for name in args.networks.split(","):
        module = torchvision_module(name)
        module_params = sum(p.numel() for p in module.parameters())
        for size_arg in args.sizes.split(","):
            size = PUBLISHED[name][2] if size_arg == "default" else int(size_arg)
            with FlopCounterMode(display=False) as counter:
                module(torch.empty(1, 3, size, size, device="meta"))
            tv_macs = counter.get_total_flops() // 2
            total = analytic_network(name, spatial=size).total
            equal = total.params == module_params and total.macs == tv_macs
            if size_arg == "default":
                equal = equal and module_params == PUBLISHED[name][0] and round(tv_macs / 1e9, 3) == PUBLISHED[name][1]
            failures += not equal
            print(
                f"| {name} | {size}² | {module_params:,} | {total.params:,} | {tv_macs:,} | {total.macs:,} "
                f"| {'✓' if equal else '✗'} |"
            )
    print(f"\n{failures} disagreement(s)")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
