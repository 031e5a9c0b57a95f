"""thop's ``profile`` (the MIT-licensed ``thop`` package; the AGPL fork
``ultralytics-thop`` imports under the same name and is never required).

Convention: MACs from forward hooks on leaf modules: conv and linear MACs (no
bias term), BatchNorm 4 per value in eval mode (normalise 2, affine 2),
adaptive average pool (H·W + 1) per output value; ReLU/ReLU6 count 0 by
registration, modules it does not know (Sigmoid) count 0 silently, and
functional ops (``x + identity``, ``x * scale``) are invisible to hooks. thop
adds ``total_ops``/``total_params`` buffers and hooks to the model, so it always
counts a copy. Runs on the meta device.
"""

from __future__ import annotations

from blockprof.counting.tools import Term, ToolCount, fresh_copy

NAME = "thop"
CONVENTION = "profile(): MACs of conv and linear, BatchNorm 4 per value, adaptive avg-pool H·W+1 per output; activations, adds and multiplies 0"

CONVENTION_TERMS: dict[str, Term] = {
    "conv2d": lambda layer, cost, n: cost.macs,
    "linear": lambda layer, cost, n: cost.macs,
    "batchnorm2d": lambda layer, cost, n: 4 * cost.elements,
    "avgpool": lambda layer, cost, n: (layer.in_size * layer.in_size + 1) * cost.elements,
}

#: why thop's number has nothing for each op kind it does not count (shown per layer by reconcile)
ZERO_REASONS: dict[str, str] = {
    "relu": "thop's rule for nn.ReLU is zero_ops",
    "relu6": "thop's rule for nn.ReLU6 is zero_ops",
    "dropout": "thop's rule for nn.Dropout is zero_ops",
    "maxpool": "thop's rule for nn.MaxPool2d is zero_ops",
    "hardswish": "thop has no rule for nn.Hardswish and counts an unknown module 0, silently",
    "silu": "thop has no rule for nn.SiLU and counts an unknown module 0, silently",
    "hardsigmoid": "thop has no rule for nn.Hardsigmoid and counts an unknown module 0, silently",
    "sigmoid": "thop has no rule for nn.Sigmoid and counts an unknown module 0, silently",
    "stochastic_depth": "thop has no rule for stochastic depth (and it is the identity in eval)",
    "add": "a functional op (x + shortcut): invisible to thop's module hooks",
    "mul": "a functional op (the SE rescale x · gate): invisible to thop's module hooks",
}


def _leaves(info: dict, prefix: str = "") -> dict[str, float]:
    """Flatten thop's ``ret_layer_info`` tree to ``{module name: MACs}`` for leaf modules."""
    out: dict[str, float] = {}
    for name, (ops, _params, children) in info.items():
        full = f"{prefix}{name}"
        out.update(_leaves(children, full + ".") if children else {full: float(ops)})
    return out


def count(module, input_shape: tuple[int, ...]) -> ToolCount:  # type: ignore[no-untyped-def]
    import logging

    import thop
    import torch

    model = fresh_copy(module, "meta")
    logging.getLogger("thop").setLevel(logging.ERROR)
    x = torch.empty(input_shape, device="meta")
    macs, _params, info = thop.profile(model, inputs=(x,), verbose=False, ret_layer_info=True)
    return ToolCount(
        tool=NAME, macs=float(macs), raw=float(macs), raw_unit="MAC", by_layer=_leaves(info), device="meta"
    )
