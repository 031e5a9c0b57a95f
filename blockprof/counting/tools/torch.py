"""PyTorch's own counter, ``torch.utils.flop_counter.FlopCounterMode``.

Convention: FLOPs, 2 per multiply-accumulate, of matrix ops only (convolution,
mm/addmm/bmm); BatchNorm, activations, adds and pooling count 0. It counts the
backward too, which no other tool does. Runs on the meta device, so a block of
any size is counted without memory. Known bug (torch 2.13, verified by
tests/test_counts.py::test_depthwise_conv_counts_in_both_directions): the weight
gradient of a grouped or depthwise conv is counted ``groups`` times too high.
"""

from __future__ import annotations

from blockprof.counting.formulas import ELEMENTWISE_OPS
from blockprof.counting.tools import Term, ToolCount, fresh_copy
from blockprof.units import FLOPS_PER_MAC

NAME = "torch"
CONVENTION = "FlopCounterMode: FLOPs of conv and matmul only (2 per MAC), forward and backward; BN, activations, adds, pooling count 0"

CONVENTION_TERMS: dict[str, Term] = {
    "conv2d": lambda layer, cost, n: cost.macs,
    "linear": lambda layer, cost, n: cost.macs,
}

#: FlopCounterMode counts matrix ops only; every other op kind is 0 for that one reason
ZERO_REASONS: dict[str, str] = {
    op: "FlopCounterMode counts matrix ops (conv, matmul) only"
    for op in (*ELEMENTWISE_OPS, "batchnorm2d", "avgpool", "maxpool", "dropout", "stochastic_depth")
}


def _by_layer(counts: dict[str, dict]) -> dict[str, float]:
    """``{module name: FLOPs}`` for the leaf modules FlopCounterMode attributed work to.

    It names modules ``<RootClass>.conv1``; the root's class name is dropped so
    the names match ``named_modules()`` and the analytic layer names."""
    names = [n for n in counts if n != "Global" and "." in n]
    leaves = [n for n in names if not any(o.startswith(n + ".") for o in names)]
    return {n.split(".", 1)[1]: float(sum(counts[n].values())) for n in leaves}


def count(module, input_shape: tuple[int, ...], input_requires_grad: bool = True) -> ToolCount:  # type: ignore[no-untyped-def]
    """``input_requires_grad``: whether the training step computes the input's gradient (a block's
    input comes from the layer before; a network's is data, so its first layer has no input gradient)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = fresh_copy(module, "meta")
    x = torch.empty(input_shape, device="meta")
    with FlopCounterMode(display=False) as fwd:
        model(x)
    forward_flops = fwd.get_total_flops()
    model.train()
    x = torch.empty(input_shape, device="meta", requires_grad=input_requires_grad)
    with FlopCounterMode(display=False) as train:
        model(x).sum().backward()
    return ToolCount(
        tool=NAME,
        macs=forward_flops / FLOPS_PER_MAC,
        raw=forward_flops,
        raw_unit="FLOP",
        by_layer={k: v / FLOPS_PER_MAC for k, v in _by_layer(fwd.get_flop_counts()).items()},
        device="meta",
        train_flops=train.get_total_flops(),
        train_by_layer=_by_layer(train.get_flop_counts()),
    )
