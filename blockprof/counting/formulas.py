"""Closed-form cost of one layer, one function per op (pure; no torch).

Every count in blockprof comes from here: the analytic totals, ``explain``'s
derivations, the tool-convention models in :mod:`blockprof.counting.tools` and
the network counts. Like ``torch.utils.flop_counter``, each op registers one
function; adding an op is one function.

A :class:`Layer` is a shape description; :func:`cost` turns it into a
:class:`Cost` for a batch of ``n`` inputs. MACs are multiply-accumulates of conv
and linear layers; elementwise work (BatchNorm, activations, adds, pooling) is
kept apart as ``elements``, the number of output values the op writes, so that
each tool's convention can be rebuilt from it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

@dataclass(frozen=True)
class Layer:
    """One op in a block, described by shapes only.

    ``in_size``/``out_size`` are the spatial side (square maps); for ``linear``
    both are 1. ``kernel``/``stride``/``groups``/``bias`` matter for conv and
    linear only.
    """

    name: str
    op: str
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    bias: bool = False

    def in_numel(self, n: int) -> int:
        return n * self.in_channels * self.in_size * self.in_size

    def out_numel(self, n: int) -> int:
        return n * self.out_channels * self.out_size * self.out_size


@dataclass(frozen=True)
class Cost:
    """What one layer costs for a batch: parameters, forward MACs, the two
    backward MAC terms, and the elementwise values written.

    ``params_formula``/``macs_formula`` spell the arithmetic with the numbers in
    it (``"256·1·1·64"``) so that ``explain`` shows exactly what was summed.
    """

    params: int
    weight_params: int
    macs: int
    bwd_input_macs: int
    bwd_weight_macs: int
    elements: int
    params_formula: str
    macs_formula: str
    weights_formula: str = "0"


_REGISTRY: dict[str, Callable[[Layer, int], Cost]] = {}


def register(op: str) -> Callable[[Callable[[Layer, int], Cost]], Callable[[Layer, int], Cost]]:
    """Register the cost function of ``op``; refuses a second one for the same op."""

    def deco(fn: Callable[[Layer, int], Cost]) -> Callable[[Layer, int], Cost]:
        if op in _REGISTRY:
            raise RuntimeError(f"a cost formula for {op!r} is already registered")
        _REGISTRY[op] = fn
        return fn

    return deco


def cost(layer: Layer, n: int = 1) -> Cost:
    """The cost of ``layer`` for a batch of ``n``."""
    try:
        fn = _REGISTRY[layer.op]
    except KeyError:
        raise KeyError(f"no cost formula for op {layer.op!r}; known: {sorted(_REGISTRY)}") from None
    return fn(layer, n)


def conv_output_size(size: int, kernel: int, stride: int) -> int:
    """Output side of a conv with 'same' padding ``kernel // 2``."""
    pad = kernel // 2
    return (size + 2 * pad - kernel) // stride + 1


def _dot(*factors: int) -> str:
    return "·".join(str(f) for f in factors)


def _batch(n: int, *factors: int) -> str:
    return _dot(n, *factors) if n != 1 else _dot(*factors)


@register("conv2d")
def conv2d(layer: Layer, n: int) -> Cost:
    """k×k conv: each output value is (C_in/g)·k·k multiply-accumulates.

    params = (C_in/g)·k·k·C_out (+ C_out bias);
    MACs   = N·H_out·W_out·(C_in/g)·k·k·C_out.
    Backward: the input gradient is a transposed conv and the weight gradient a
    correlation of input and output gradient, each the same MACs as forward.
    """
    cin_g = layer.in_channels // layer.groups
    k = layer.kernel
    weights = cin_g * k * k * layer.out_channels
    bias = layer.out_channels if layer.bias else 0
    macs = n * layer.out_size * layer.out_size * weights
    weights_formula = _dot(cin_g, k, k, layer.out_channels)
    params_formula = weights_formula + (f" + {bias}" if bias else "")
    macs_formula = _batch(n, layer.out_size, layer.out_size, cin_g, k, k, layer.out_channels)
    return Cost(weights + bias, weights, macs, macs, macs, 0, params_formula, macs_formula, weights_formula)


@register("linear")
def linear(layer: Layer, n: int) -> Cost:
    """Fully connected: params = C_in·C_out (+ C_out); MACs = N·C_in·C_out."""
    weights = layer.in_channels * layer.out_channels
    bias = layer.out_channels if layer.bias else 0
    macs = n * weights
    weights_formula = _dot(layer.in_channels, layer.out_channels)
    params_formula = weights_formula + (f" + {bias}" if bias else "")
    macs_formula = _batch(n, layer.in_channels, layer.out_channels)
    return Cost(weights + bias, weights, macs, macs, macs, 0, params_formula, macs_formula, weights_formula)


@register("batchnorm2d")
def batchnorm2d(layer: Layer, n: int) -> Cost:
    """BatchNorm: a scale γ and shift β per channel (2·C params); running mean
    and variance are buffers, not parameters. In eval mode it is one affine
    map per value."""
    c = layer.out_channels
    return Cost(2 * c, 0, 0, 0, 0, layer.out_numel(n), f"2·{c}", "0")


def _elementwise(layer: Layer, n: int) -> Cost:
    return Cost(0, 0, 0, 0, 0, layer.out_numel(n), "0", "0")


#: activations (the block's own and the squeeze-excitation's) and the residual ops: no parameters, no MACs;
#: each writes one value per output element. hardswish x·relu6(x+3)/6, hardsigmoid relu6(x+3)/6 and
#: silu x·σ(x) cost a few FLOPs per value in the kernels, which no MAC count includes (as torchvision's).
ELEMENTWISE_OPS = ("relu", "relu6", "hardswish", "silu", "sigmoid", "hardsigmoid", "add", "mul")
for _op in ELEMENTWISE_OPS:
    register(_op)(_elementwise)


@register("avgpool")
def avgpool(layer: Layer, n: int) -> Cost:
    """Global average pool: reads every input value, writes N·C values."""
    return _elementwise(layer, n)


@register("maxpool")
def maxpool(layer: Layer, n: int) -> Cost:
    """k×k max-pool: no parameters, no MACs; writes N·C·H_out·W_out values.
    ResNet's stem pool is k=3, s=2, padding 1, so its side is :func:`conv_output_size`'s."""
    return _elementwise(layer, n)


@register("dropout")
def dropout(layer: Layer, n: int) -> Cost:
    """Dropout before a classifier: no parameters, no MACs; in training it writes
    N·C masked values, at inference it is the identity."""
    return _elementwise(layer, n)


@register("stochastic_depth")
def stochastic_depth(layer: Layer, n: int) -> Cost:
    """Stochastic depth on a residual branch (EfficientNet's, "row" mode): in training it
    zeroes a whole sample's branch with probability p and scales the rest by 1/(1−p),
    writing N·C·H·W values; at inference it is the identity. No parameters, no MACs."""
    return _elementwise(layer, n)


# --- memory: what autograd keeps for backward, and the least traffic a block needs ---


@dataclass(frozen=True)
class Saved:
    """Elements one op keeps from its forward for its backward, by storage kind.

    ``values`` are activations, held in the compute dtype; ``stats`` are float32
    per-channel statistics (BatchNorm's batch mean and inverse std); ``indices``
    are int64 (max-pool's argmax). Parameters and buffers are not activations and
    are never counted here.
    """

    values: int
    stats: int = 0
    indices: int = 0

    def nbytes(self, value_bytes: int) -> int:
        return self.values * value_bytes + self.stats * 4 + self.indices * 8


#: which tensors each op saves, as autograd's derivatives do (checked against
#: ``torch.autograd.graph.saved_tensors_hooks`` in the tests)
_SAVED: dict[str, Callable[[Layer, int], Saved]] = {
    "conv2d": lambda l, n: Saved(l.in_numel(n)),  # its input, for the weight gradient
    "linear": lambda l, n: Saved(l.in_numel(n)),  # its input, for the weight gradient
    "batchnorm2d": lambda l, n: Saved(l.in_numel(n), stats=2 * l.out_channels),  # input + mean, inv std
    "relu": lambda l, n: Saved(l.out_numel(n)),  # its output (the mask)
    "relu6": lambda l, n: Saved(l.out_numel(n)),  # its output (hardtanh_ saves the result)
    "sigmoid": lambda l, n: Saved(l.out_numel(n)),  # its output: σ' = σ(1 − σ)
    # out of place (as blockprof's modules run them): the backward needs the input
    "hardswish": lambda l, n: Saved(l.in_numel(n)),
    "silu": lambda l, n: Saved(l.in_numel(n)),
    "hardsigmoid": lambda l, n: Saved(l.in_numel(n)),
    # the SE rescale x · gate (a per-channel gate, as every block here uses it) saves both factors
    "mul": lambda l, n: Saved(l.out_numel(n) + n * l.out_channels),
    "add": lambda l, n: Saved(0),  # the gradient passes through unchanged
    "avgpool": lambda l, n: Saved(0),  # the global mean needs only the input's shape
    "maxpool": lambda l, n: Saved(l.in_numel(n), indices=l.out_numel(n)),  # input + argmax
}


def saved_for_backward(layer: Layer, n: int = 1) -> Saved:
    """What ``layer`` keeps for backward for a batch of ``n`` (train mode).

    Each op counts the tensors it saves itself, so a tensor that two ops save
    (an in-place ReLU's output, which the next conv saves as its input) counts
    twice: the block total is the sum autograd's pack hooks see, an upper bound
    on the distinct storage. Under autocast the conv weights' half-precision
    copies, which conv also saves, are not counted.
    """
    try:
        return _SAVED[layer.op](layer, n)
    except KeyError:
        raise KeyError(f"no saved-for-backward rule for op {layer.op!r}; known: {sorted(_SAVED)}") from None


def minimum_traffic_bytes(in_elements: int, out_elements: int, params: int, value_bytes: int, param_bytes: int = 4, *, train: bool = False) -> int:
    """The least memory traffic of one block call: its input read once, its output
    written once, each parameter read once. A training step moves each of these
    twice (the output gradient read and the input gradient written; each
    parameter read and its gradient written), so ``train`` doubles it.
    Intermediate activations and saved tensors are not counted: a perfectly
    fused block would keep them on chip.
    """
    once = (in_elements + out_elements) * value_bytes + params * param_bytes
    return 2 * once if train else once


def roofline_attainable(intensity: float, peak_flops: float, peak_bandwidth: float) -> float:
    """Williams et al.'s roofline: the most FLOP/s a kernel of arithmetic intensity
    ``intensity`` (FLOPs per byte moved) can reach, ``min(peak_flops, intensity · peak_bandwidth)``.
    Below the ridge point ``peak_flops / peak_bandwidth`` a kernel is memory-bound."""
    return min(peak_flops, intensity * peak_bandwidth)
