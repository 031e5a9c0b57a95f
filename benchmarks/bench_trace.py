"""Tracing speed against PyTorch's own FlopCounterMode, side by side on the same meta-device models.

Run:  python benchmarks/bench_trace.py [--repeats 5]

Both run the same forward (eval) and the same training step (train-mode forward + backward of
the output's sum) on the meta device. ``trace()`` does both in one call; FlopCounterMode is timed
for each alone and for both (what blockprof's torch adapter runs). Paths are interleaved
(model-major, then the paths in turn, repeated) after one warm-up each; medians with IQR, and the
ratio of medians trace / FCM, so the figures survive a noisy, shared machine. The models are the
self-contained ones in tests/published_models.py (no torchvision), ViT-H/14 at 518×518 among them.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from blockprof.counting.trace import trace
from tests.published_models import VisionTransformer, resnet50, vit_b_16


def vit_h_14_518() -> nn.Module:
    """torchvision's vit_h_14 at its SWAG evaluation size: 32 layers, 16 heads, width 1280, MLP 5120."""
    return VisionTransformer(image=518, patch=14, layers=32, heads=16, dim=1280, mlp_dim=5120)


def _fcm_forward(model: nn.Module, shape: tuple[int, ...]) -> int:
    model.eval()
    with FlopCounterMode(display=False) as fcm:
        model(torch.empty(shape, device="meta"))
    return fcm.get_total_flops()


def _fcm_train(model: nn.Module, shape: tuple[int, ...]) -> int:
    model.train()
    with FlopCounterMode(display=False) as fcm:
        model(torch.empty(shape, device="meta")).sum().backward()
    model.zero_grad(set_to_none=True)
    return fcm.get_total_flops()


def paths(model: nn.Module, shape: tuple[int, ...]) -> dict[str, Callable[[], object]]:
    return {
        "FCM forward": lambda: _fcm_forward(model, shape),
        "trace forward": lambda: trace(model, shape, train=False),
        "FCM forward + train step": lambda: (_fcm_forward(model, shape), _fcm_train(model, shape)),
        "trace forward + train step": lambda: trace(model, shape),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    models = {"ResNet-50 224": (resnet50, 224), "ViT-B/16 224": (vit_b_16, 224), "ViT-H/14 518": (vit_h_14_518, 518)}
    table = {}
    for name, (build, size) in models.items():
        start = time.perf_counter()
        with torch.device("meta"):
            model = build()
        print(f"{name}: built on meta in {time.perf_counter() - start:.2f} s", file=sys.stderr)
        table[name] = paths(model, (1, 3, size, size))
    samples: dict[tuple[str, str], list[float]] = {}
    for fns in table.values():
        for fn in fns.values():
            fn()  # warm-up: meta kernels' first use, imports
    for _ in range(args.repeats):
        for name, fns in table.items():
            for path, fn in fns.items():
                start = time.perf_counter()
                fn()
                samples.setdefault((name, path), []).append(time.perf_counter() - start)
    print(
        f"torch {torch.__version__}, Python {platform.python_version()}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, {args.repeats} interleaved repeats after a warm-up\n"
    )
    print("| model | path | median s | IQR s | trace / FCM |")
    print("|---|---|---:|---:|---:|")
    for name in table:
        for path in table[name]:
            s = sorted(samples[(name, path)])
            q = statistics.quantiles(s, n=4) if len(s) > 1 else [s[0], s[0], s[0]]
            ratio = ""
            if path.startswith("trace"):
                fcm = statistics.median(samples[(name, path.replace("trace", "FCM"))])
                ratio = f"{statistics.median(s) / fcm:.2f}×"
            print(f"| {name} | {path} | {statistics.median(s):.3f} | {q[2] - q[0]:.3f} | {ratio} |")


if __name__ == "__main__":
    main()
