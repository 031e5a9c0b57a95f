"""Figures nobody here wrote: torchvision's published ``num_params`` and ``_ops`` (GFLOPS = conv +
linear + matmul MACs in G, rounded to 3 decimals, at the weights' evaluation size), kept as data.
The models are the self-contained re-implementations in tests/published_models.py (torchvision is
not imported); benchmarks/published_torchvision.py checks all of torchvision's models where it imports."""

from __future__ import annotations

import pytest
import torch

from blockprof.counting.trace import trace
from tests import published_models

#: name → (num_params, _ops) from torchvision 0.29's weights metadata (IMAGENET1K_V1, 224×224)
PUBLISHED = {
    "resnet50": (25_557_032, 4.089),
    "mobilenet_v2": (3_504_872, 0.301),
    "vit_b_16": (86_567_656, 17.564),
    "densenet121": (7_978_856, 2.834),
    "convnext_tiny": (28_589_128, 4.456),
    "mobilenet_v3_large": (5_483_032, 0.217),
    "efficientnet_b0": (5_288_548, 0.386),
    "swin_t": (28_288_354, 4.491),
}
#: models too large to re-implement faithfully here; benchmarks/published_torchvision.py checks them
NOT_REIMPLEMENTED = {
    "swin_t": "shifted-window attention with relative position bias: checked with torchvision itself (RESULTS.md)"
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_traced_counts_equal_torchvision_published_figures(name: str) -> None:
    if name in NOT_REIMPLEMENTED:
        pytest.skip(NOT_REIMPLEMENTED[name])
    params, gflops = PUBLISHED[name]
    with torch.device("meta"):
        model = getattr(published_models, name)()
    t = trace(model, (1, 3, 224, 224), train=False)
    assert t.params == params
    assert round(t.macs / 1e9, 3) == gflops
    assert t.unknown_ops == {}
