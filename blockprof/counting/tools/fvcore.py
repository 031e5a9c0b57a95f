"""fvcore's ``FlopCountAnalysis`` (what detectron2 reports).

Convention: its "flops" are MACs ("one fused multiply-add as one flop"): conv
and linear MACs (no bias), BatchNorm 2 per value in eval mode (its handler:
input values × 2 with an affine), adaptive average pool 1 per input value;
ReLU is ignored silently, and hardtanh (ReLU6), sigmoid, add, mul and max-pool
are skipped and listed as unsupported. It traces with ``torch.jit``, which fails
on meta tensors, so it needs real memory: blockprof runs it at batch 1 and
multiplies by the batch (exact: every op here is per sample), and skips it,
saying so, when even one sample would be too large.
"""

from __future__ import annotations

import warnings

from blockprof.counting.tools import Term, ToolCount, fresh_copy
from blockprof.errors import BlockprofError

NAME = "fvcore"
CONVENTION = (
    "FlopCountAnalysis: 'flops' are MACs of conv and linear, BatchNorm 2 per value, adaptive avg-pool 1 per input value; "
    "ReLU, ReLU6, sigmoid, add, mul skipped"
)

#: largest single-sample forward fvcore is asked to trace (real memory, real compute)
MAX_MACS_PER_SAMPLE = 20 * 10**9
MAX_INPUT_VALUES = 64 * 2**20

CONVENTION_TERMS: dict[str, Term] = {
    "conv2d": lambda layer, cost, n: cost.macs,
    "linear": lambda layer, cost, n: cost.macs,
    "batchnorm2d": lambda layer, cost, n: 2 * cost.elements,
    "avgpool": lambda layer, cost, n: layer.in_numel(n),
}

#: why fvcore's number has nothing for each op kind it does not count (shown per layer by reconcile)
ZERO_REASONS: dict[str, str] = {
    "relu": "in fvcore's ignored ops: 0 by design",
    "dropout": "in fvcore's ignored ops (and the identity in eval)",
    "stochastic_depth": "the identity in eval: no op is traced",
    **{
        op: f"fvcore has no handler for aten::{aten}: it lists it as unsupported and counts 0"
        for op, aten in (
            ("relu6", "hardtanh_"), ("hardswish", "hardswish"), ("silu", "silu"), ("hardsigmoid", "hardsigmoid"),
            ("sigmoid", "sigmoid"), ("add", "add"), ("mul", "mul"), ("maxpool", "max_pool2d"),
        )
    },
}  # fmt: skip


def count(module, input_shape: tuple[int, ...], macs_hint: float | None = None) -> ToolCount:  # type: ignore[no-untyped-def]
    """Count at batch 1 and scale; ``macs_hint`` (forward MACs of the full batch,
    from the analytic count or torch's) guards against a forward too big to run."""
    import logging

    import torch

    with warnings.catch_warnings():  # fvcore uses torch.jit.script at import: deprecated, noise
        warnings.simplefilter("ignore", DeprecationWarning)
        from fvcore.nn import FlopCountAnalysis

    batch, sample = input_shape[0], (1, *input_shape[1:])
    values = 1
    for d in sample:
        values *= d
    if values > MAX_INPUT_VALUES or (macs_hint is not None and macs_hint / batch > MAX_MACS_PER_SAMPLE):
        raise BlockprofError(
            f"fvcore skipped: it traces real tensors (torch.jit fails on meta) and one sample of {sample} "
            f"needs {values:,} input values and {(macs_hint or 0) / batch / 1e9:.1f} GMACs, over its limit "
            f"({MAX_INPUT_VALUES:,} values, {MAX_MACS_PER_SAMPLE / 1e9:g} GMACs)"
        )
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    model = fresh_copy(module)
    analysis = FlopCountAnalysis(model, torch.zeros(sample))
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    with warnings.catch_warnings():  # likewise its torch.jit tracing
        warnings.simplefilter("ignore", DeprecationWarning)
        total = analysis.total()
    by_module = analysis.by_module()
    leaves = [n for n in by_module if n and not any(o.startswith(n + ".") for o in by_module if o)]
    return ToolCount(
        tool=NAME,
        macs=float(total * batch),
        raw=float(total * batch),
        raw_unit="MAC",
        by_layer={n: float(by_module[n] * batch) for n in leaves},
        skipped=dict(analysis.unsupported_ops()),
        device="cpu",
        scaled_from_batch=batch if batch != 1 else None,
    )
