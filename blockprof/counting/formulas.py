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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from math import prod
from typing import Any


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


# --- the arithmetic every count shares: the closed-form layers above and the traced aten ops below ---


def conv_macs(out_numel: int, in_per_group: int, kernel_numel: int) -> int:
    """MACs of a convolution: each output value sums (C_in/groups)·(kernel elements) products.
    ``out_numel`` = N·C_out·(output spatial elements). Padded positions count, as every tool counts them."""
    return out_numel * in_per_group * kernel_numel


def conv_weights(in_channels: int, out_channels: int, groups: int, kernel_numel: int) -> int:
    """Weights of a convolution (no bias): (C_in/groups)·(kernel elements)·C_out."""
    return in_channels // groups * kernel_numel * out_channels


def matmul_macs(batch: int, m: int, k: int, n: int) -> int:
    """MACs of ``batch`` products of an m×k by a k×n matrix (a linear layer is batch 1, m = N rows)."""
    return batch * m * k * n


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
    weights = conv_weights(layer.in_channels, layer.out_channels, layer.groups, k * k)
    bias = layer.out_channels if layer.bias else 0
    macs = conv_macs(layer.out_numel(n), cin_g, k * k)
    weights_formula = _dot(cin_g, k, k, layer.out_channels)
    params_formula = weights_formula + (f" + {bias}" if bias else "")
    macs_formula = _batch(n, layer.out_size, layer.out_size, cin_g, k, k, layer.out_channels)
    return Cost(weights + bias, weights, macs, macs, macs, 0, params_formula, macs_formula, weights_formula)


@register("linear")
def linear(layer: Layer, n: int) -> Cost:
    """Fully connected: params = C_in·C_out (+ C_out); MACs = N·C_in·C_out."""
    weights = layer.in_channels * layer.out_channels
    bias = layer.out_channels if layer.bias else 0
    macs = matmul_macs(1, n, layer.in_channels, layer.out_channels)
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
    "conv2d": lambda layer, n: Saved(layer.in_numel(n)),  # its input, for the weight gradient
    "linear": lambda layer, n: Saved(layer.in_numel(n)),  # its input, for the weight gradient
    "batchnorm2d": lambda layer, n: Saved(layer.in_numel(n), stats=2 * layer.out_channels),  # input + mean, inv std
    "relu": lambda layer, n: Saved(layer.out_numel(n)),  # its output (the mask)
    "relu6": lambda layer, n: Saved(layer.out_numel(n)),  # its output (hardtanh_ saves the result)
    "sigmoid": lambda layer, n: Saved(layer.out_numel(n)),  # its output: σ' = σ(1 − σ)
    # out of place (as blockprof's modules run them): the backward needs the input
    "hardswish": lambda layer, n: Saved(layer.in_numel(n)),
    "silu": lambda layer, n: Saved(layer.in_numel(n)),
    "hardsigmoid": lambda layer, n: Saved(layer.in_numel(n)),
    # the SE rescale x · gate (a per-channel gate, as every block here uses it) saves both factors
    "mul": lambda layer, n: Saved(layer.out_numel(n) + n * layer.out_channels),
    "add": lambda layer, n: Saved(0),  # the gradient passes through unchanged
    "avgpool": lambda layer, n: Saved(0),  # the global mean needs only the input's shape
    "maxpool": lambda layer, n: Saved(layer.in_numel(n), indices=layer.out_numel(n)),  # input + argmax
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


def minimum_traffic_bytes(
    in_elements: int, out_elements: int, params: int, value_bytes: int, param_bytes: int = 4, *, train: bool = False
) -> int:
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


# --- traced ops: the cost of each aten operator the tracer (blockprof.counting.trace) records ---
#
# The tracer hands every op's arguments over with each tensor replaced by its :class:`Shape`,
# so these formulas stay pure arithmetic on shapes, like the closed-form layers above, and
# share their arithmetic (conv_macs, matmul_macs). Conventions, as for the closed form:
# ``macs`` are multiply-accumulates of convolutions and matrix products (conv + linear +
# matmul, torchvision's ``_ops`` convention; attention's q·kᵀ and attn·v are matrix products);
# everything else (norms, pooling, interpolation, activations, adds) writes ``elements``
# output values and no MACs. Bias adds are not MACs.


class Shape(tuple[int, ...]):
    """A tensor argument of a traced op, reduced to its shape."""

    __slots__ = ()


@dataclass(frozen=True)
class OpCost:
    """What one traced op costs: its MACs (for ``convolution_backward`` split into the
    input- and weight-gradient terms), the output values it writes, and its MACs
    spelled out with the numbers in place."""

    kind: str
    macs: int = 0
    bwd_input_macs: int = 0
    bwd_weight_macs: int = 0
    elements: int = 0
    formula: str = ""


#: the op kinds, in the order tables list them
OP_KINDS = ("conv", "matmul", "attention", "norm", "pool", "interpolate", "elementwise")

OpFormula = Callable[[Sequence[Any], dict[str, Any], Any], OpCost]
_ATEN: dict[str, OpFormula] = {}

#: ops that move or allocate data but do no arithmetic (views, copies, concatenation, factories,
#: shape queries): known, and counted as nothing
DATA_MOVEMENT = frozenset(
    [
        "view",
        "_unsafe_view",
        "reshape",
        "_reshape_alias",
        "t",
        "transpose",
        "permute",
        "expand",
        "expand_as",
        "squeeze",
        "unsqueeze",
        "select",
        "slice",
        "detach",
        "alias",
        "as_strided",
        "clone",
        "contiguous",
        "copy_",
        "_to_copy",
        "to",
        "cat",
        "stack",
        "split",
        "split_with_sizes",
        "chunk",
        "unbind",
        "flatten",
        "unflatten",
        "narrow",
        "empty",
        "empty_like",
        "empty_strided",
        "zeros",
        "zeros_like",
        "ones",
        "ones_like",
        "full",
        "full_like",
        "new_empty",
        "new_empty_strided",
        "new_zeros",
        "new_ones",
        "new_full",
        "arange",
        "lift_fresh",
        "fill_",
        "zero_",
        "select_backward",
        "slice_backward",
        "constant_pad_nd",
        "roll",
        "index",
        "index_select",
        "gather",
        "masked_fill",
        "masked_fill_",
        "repeat",
        "_unsafe_index",
        "resize_",
        "size",
        "sym_size",
        "stride",
        "sym_stride",
        "numel",
        "sym_numel",
        "dim",
        "is_contiguous",
        "sym_is_contiguous",
        "storage_offset",
        "sym_storage_offset",
        "is_strides_like_format",
        "is_non_overlapping_and_dense",
        "_local_scalar_dense",
        "as_strided_",
        "index_put",
        "index_put_",
        "scalar_tensor",
    ]
)


def register_aten(*ops: str) -> Callable[[OpFormula], OpFormula]:
    """Register the cost of the aten ops ``ops`` (overload packet names, e.g. ``"convolution"``);
    refuses a second formula for the same op."""

    def deco(fn: OpFormula) -> OpFormula:
        for op in ops:
            if op in _ATEN or op in DATA_MOVEMENT:
                raise RuntimeError(f"a cost formula for aten op {op!r} is already registered")
            _ATEN[op] = fn
        return fn

    return deco


def aten_formula(op: str) -> OpFormula | None:
    """The cost formula of aten op ``op``, or None if it has none (data movement, or unknown)."""
    return _ATEN.get(op)


def known_aten_ops() -> frozenset[str]:
    return frozenset(_ATEN) | DATA_MOVEMENT


def _first_shape(out: Any) -> Shape:
    """The first tensor of an op's output (ops such as max_pool2d_with_indices return several)."""
    if isinstance(out, Shape):
        return out
    if isinstance(out, (tuple, list)):
        for o in out:
            if isinstance(o, Shape):
                return o
    return Shape(())


#: convolution as the dispatcher may name it (input and weight its first two arguments)
CONVOLUTION_OPS = ("convolution", "_convolution", "convolution_overrideable", "cudnn_convolution", "mkldnn_convolution")


@register_aten(*CONVOLUTION_OPS)
def aten_convolution(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> OpCost:
    """``convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)``.

    The weight is (C_out, C_in/groups, *k), or (C_in, C_out/groups, *k) when transposed, so
    its second dimension is the per-group fan-in and groups are exact. A transposed conv is
    the input gradient of a conv: every *input* value meets (C_out/groups)·k products.
    """
    x, w, transposed = args[0], args[1], bool(args[6])
    return _conv_cost(x, w, _first_shape(out), transposed)


def _conv_cost(x: Shape, w: Shape, out: Shape, transposed: bool) -> OpCost:
    per_group, kernel = w[1], tuple(w[2:])
    src = x if transposed else out  # the tensor whose every value is one (C/groups)·k dot product
    macs = conv_macs(prod(src), per_group, prod(kernel))
    # N·H·W·(C_in/g)·k·k·C_out as the closed form writes it; transposed: N·H_in·W_in·C_in·(C_out/g)·k·k
    factors = (*src[2:], per_group, *kernel, src[1]) if not transposed else (*src[2:], src[1], per_group, *kernel)
    return OpCost("conv", macs, formula=_batch(src[0], *factors))


@register_aten("convolution_backward")
def aten_convolution_backward(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> OpCost:
    """``convolution_backward(grad_out, input, weight, ..., transposed, output_padding, groups, output_mask)``:
    the input gradient (a transposed conv) and the weight gradient (input ⋆ grad_out) each cost the
    forward's MACs; ``output_mask`` says which autograd asked for (no input gradient where the input
    needs none, e.g. a network's first conv)."""
    grad_out, x, w, transposed, mask = args[0], args[1], args[2], bool(args[7]), args[10]
    fwd = _conv_cost(x, w, grad_out, transposed)
    dx = fwd.macs if mask[0] else 0
    dw = fwd.macs if mask[1] else 0
    terms = "+".join(t for t, on in (("dx", mask[0]), ("dw", mask[1])) if on) or "0"
    return OpCost("conv", dx + dw, bwd_input_macs=dx, bwd_weight_macs=dw, formula=f"{terms}: {fwd.formula}")


@register_aten("mm", "addmm")
def aten_mm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> OpCost:
    """``mm(a, b)`` / ``addmm(bias, a, b)``: an m×k by k×n product (a linear layer on 2-D input)."""
    a, b = (args[0], args[1]) if len(args) == 2 or not isinstance(args[2], Shape) else (args[1], args[2])
    m, k, n = a[0], a[1], b[1]
    return OpCost("matmul", matmul_macs(1, m, k, n), formula=_dot(m, k, n))


@register_aten("bmm", "baddbmm")
def aten_bmm(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> OpCost:
    """``bmm(a, b)`` / ``baddbmm(c, a, b)``: a batch of m×k by k×n products."""
    a, b = (args[0], args[1]) if len(args) == 2 or not isinstance(args[2], Shape) else (args[1], args[2])
    batch, m, k, n = a[0], a[1], a[2], b[2]
    return OpCost("matmul", matmul_macs(batch, m, k, n), formula=_dot(batch, m, k, n))


@register_aten("matmul", "linear")
def aten_matmul(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> OpCost:
    """``matmul(a, b)`` / ``linear(x, W)``: composite ops that PyTorch normally decomposes into
    mm/bmm before a dispatch mode sees them; priced alike if they do arrive: every output
    value is a dot product over the last dimension of ``a``."""
    a = args[0]
    o = _first_shape(out)
    k = a[-1]
    return OpCost("matmul", matmul_macs(1, prod(o), k, 1), formula=_dot(prod(o), k))


def _attention_macs(q: Shape, k: Shape, v: Shape) -> tuple[int, str]:
    """q·kᵀ and attn·v: (B·H) products of Lq×E by E×Lk, then Lq×Lk by Lk×Ev."""
    bh, lq, e, lk, ev = prod(q[:-2]), q[-2], q[-1], k[-2], v[-1]
    macs = matmul_macs(bh, lq, e, lk) + matmul_macs(bh, lq, lk, ev)
    return macs, f"{_dot(bh, lq, e, lk)} + {_dot(bh, lq, lk, ev)}"


#: fused scaled-dot-product attention, as CPU and CUDA kernels run it (q, k, v its first three arguments)
ATTENTION_OPS = (
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "scaled_dot_product_attention",
)


@register_aten(*ATTENTION_OPS)
def aten_sdpa(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> OpCost:
    """Fused scaled-dot-product attention: its two matrix products (the softmax is not MACs).
    On the meta device and in the math path PyTorch runs it as bmm/softmax ops instead."""
    macs, formula = _attention_macs(args[0], args[1], args[2])
    return OpCost("attention", macs, formula=formula)


@register_aten(
    "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention_backward",
)
def aten_sdpa_backward(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> OpCost:
    """The gradients of q, k, v and of the attention matrix: four products, twice the forward's MACs."""
    macs, formula = _attention_macs(args[1], args[2], args[3])
    return OpCost("attention", 2 * macs, formula=f"2·({formula})")


#: the argument positions of the factors of each matrix-product op: its backward computes the
#: gradient of each factor that needs one, each costing the forward's MACs (attention's three
#: factors q, k, v take part in two products, so its backward is twice its forward)
PRODUCT_FACTORS: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(CONVOLUTION_OPS, (0, 1)),
    "mm": (0, 1),
    "bmm": (0, 1),
    "matmul": (0, 1),
    "linear": (0, 1),
    "addmm": (1, 2),
    "baddbmm": (1, 2),
    **dict.fromkeys(ATTENTION_OPS, (0, 1, 2)),
}


def _elements(kind: str) -> OpFormula:
    """An op that does no MACs, costed by the output values it writes."""

    def fn(args: Sequence[Any], kwargs: dict[str, Any], out: Any) -> OpCost:
        shape = _first_shape(out)
        return OpCost(kind, elements=prod(shape), formula=_dot(*shape) if shape else "1")

    fn.__doc__ = f"{kind}: no MACs; ``elements`` = the output values it writes."
    return fn


_NORM_OPS = """native_batch_norm _native_batch_norm_legit _native_batch_norm_legit_no_training
    _native_batch_norm_legit_functional native_layer_norm native_group_norm native_batch_norm_backward
    native_layer_norm_backward native_group_norm_backward cudnn_batch_norm cudnn_batch_norm_backward
    miopen_batch_norm _batch_norm_with_update _batch_norm_no_update batch_norm_backward"""
_POOL_OPS = """max_pool2d max_pool2d_with_indices max_pool3d_with_indices avg_pool2d avg_pool3d adaptive_avg_pool2d
    _adaptive_avg_pool2d adaptive_avg_pool3d _adaptive_avg_pool3d adaptive_max_pool2d max_pool2d_with_indices_backward
    avg_pool2d_backward _adaptive_avg_pool2d_backward adaptive_max_pool2d_backward mean sum amax max min"""
_INTERPOLATE_OPS = """upsample_nearest1d upsample_nearest2d upsample_nearest3d upsample_linear1d upsample_bilinear2d
    upsample_bicubic2d upsample_trilinear3d _upsample_bilinear2d_aa _upsample_bicubic2d_aa _upsample_nearest_exact2d
    upsample_nearest2d_backward upsample_bilinear2d_backward upsample_bicubic2d_backward grid_sampler_2d"""
_ELEMENTWISE_OPS = """add sub rsub mul div neg abs exp log sqrt rsqrt pow reciprocal clamp clamp_min clamp_max
    relu gelu silu sigmoid tanh hardtanh hardswish hardsigmoid leaky_relu elu mish softplus erf sign
    threshold_backward gelu_backward silu_backward sigmoid_backward tanh_backward hardtanh_backward
    hardswish_backward hardsigmoid_backward leaky_relu_backward elu_backward mish_backward softplus_backward
    _softmax _safe_softmax _log_softmax _softmax_backward_data _log_softmax_backward_data
    native_dropout native_dropout_backward bernoulli where addcmul addcdiv lerp maximum minimum
    eq ne lt le gt ge logical_not cumsum bitwise_and bitwise_or"""

_KINDS = (
    ("norm", _NORM_OPS),
    ("pool", _POOL_OPS),
    ("interpolate", _INTERPOLATE_OPS),
    ("elementwise", _ELEMENTWISE_OPS),
)
for _kind, _names in _KINDS:
    _fn = _elements(_kind)
    for _name in _names.split():
        register_aten(_name)(_fn)
        if _kind == "elementwise":
            register_aten(_name + "_")(_fn)  # the in-place form writes as many values
