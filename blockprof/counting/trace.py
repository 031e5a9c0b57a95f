"""The traced count: any ``nn.Module``, counted op by op on blockprof's own formulas.

The module runs once under a ``TorchDispatchMode`` on the meta device (shapes
without memory or compute), with torch's ``ModuleTracker`` saying which module
each aten op ran in, as ``torch.utils.flop_counter`` does. Every op is priced by
:func:`blockprof.counting.formulas.aten_formula`, the same arithmetic as the
closed-form layers; an op with no formula is listed by name with how often it
ran (``unknown_ops``), never dropped.

Two runs: an eval-mode forward gives ``macs`` and the elementwise work; a
train-mode forward and ``backward()`` of the sum of the outputs give
``train_flops`` from the backward ops autograd actually runs. So the input
gradient of a layer whose input needs none (a network's first conv) is not
counted, and a grouped conv's weight gradient is its true (C_in/groups)·k·k per
output value, where FlopCounterMode counts it ``groups`` times. Each backward op is
tied, through the autograd node running it, to the forward op that created the node:
it is counted in that op's module, and a backward matrix product is an input or a
weight gradient by the factor it differentiates (see :class:`_Recorder`).

A forward that needs values (``.item()``, data-dependent shapes) cannot run on
meta: it is traced on the CPU with one zero sample at batch 1, the counts are
scaled by the batch (every counted op is per sample), and the result says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from blockprof.counting.formulas import ATTENTION_OPS, DATA_MOVEMENT, PRODUCT_FACTORS, OpCost, Shape, aten_formula
from blockprof.errors import BlockprofError, one_line
from blockprof.spec import shape_text
from blockprof.units import macs_to_flops

if TYPE_CHECKING:
    import torch
    from torch import nn

#: what the numbers mean, for every output that shows them
CONVENTION = (
    "MACs = multiply-accumulates of convolutions and matrix products "
    "(conv + linear + matmul, attention's q·kᵀ and attn·v; torchvision's _ops convention); FLOPs = 2·MACs; "
    "train FLOPs = 2·(forward + input-gradient + weight-gradient MACs) "
    "of the backward ops autograd runs (no input gradient where the input needs none, e.g. a network's first conv); "
    "norms, pooling, activations and adds are elementwise work, not MACs."
)

FORWARD, TRAIN_FORWARD, BACKWARD = "forward", "train_forward", "backward"


@dataclass(frozen=True)
class TracedOp:
    """One aten op as it ran: where (the innermost module's name, ``""`` for the root's own
    code), in which pass, on which input shapes, and what it costs."""

    op: str
    module: str
    phase: str
    shapes: str
    cost: OpCost


@dataclass(frozen=True)
class ModuleInfo:
    name: str
    type: str
    depth: int
    params: int
    #: weights of the convolutions in the module's subtree (:func:`conv_weight_params`)
    params_conv: int = 0


@dataclass(frozen=True)
class Trace:
    """Every priced op of a module's forward (and training step), with its module tree.

    ``scale`` is the batch the counts were multiplied by when the forward ran on one real
    sample (``note`` says why); ``train_traced`` is False when no backward was traced.
    """

    model: str
    input_shape: tuple[int, ...]
    params: int
    params_conv: int
    modules: tuple[ModuleInfo, ...]
    ops: tuple[TracedOp, ...]
    unknown_ops: dict[str, int]
    device: str = "meta"
    scale: int = 1
    note: str | None = None
    train_traced: bool = True
    input_requires_grad: bool = False
    #: every parameter's name and shape, in definition order
    parameter_shapes: tuple[tuple[str, tuple[int, ...]], ...] = ()

    def _sum(self, phase: str, attr: str, module: str = "") -> int:
        return self.scale * sum(
            getattr(o.cost, attr) for o in self.ops if o.phase == phase and _within(o.module, module)
        )

    @property
    def macs(self) -> int:
        return self._sum(FORWARD, "macs")

    @property
    def flops(self) -> int:
        return macs_to_flops(self.macs)

    @property
    def bwd_macs(self) -> int | None:
        """All MACs of the backward ops (input and weight gradients of convs and matrix products)."""
        return self._sum(BACKWARD, "macs") if self.train_traced else None

    def _grads(self, attr: str, module: str = "") -> int | None:
        """One gradient term (``bwd_input_macs`` or ``bwd_weight_macs``) of the backward ops autograd ran."""
        return self._sum(BACKWARD, attr, module) if self.train_traced else None

    def _train_macs(self, module: str = "") -> int | None:
        """MACs of a training step: the train-mode forward (aux heads included) and its backward."""
        if not self.train_traced:
            return None
        return self._sum(TRAIN_FORWARD, "macs", module) + self._sum(BACKWARD, "macs", module)

    @property
    def train_macs(self) -> int | None:
        return self._train_macs()

    @property
    def train_flops(self) -> int | None:
        return None if self.train_macs is None else macs_to_flops(self.train_macs)

    @property
    def elements(self) -> dict[str, int]:
        """Forward output values written, by op kind (norm, pool, elementwise, ...)."""
        out: Counter[str] = Counter()
        for o in self.ops:
            if o.phase == FORWARD and o.cost.elements:
                out[o.cost.kind] += self.scale * o.cost.elements
        return dict(out)

    def totals(self) -> dict[str, Any]:
        return {"params": self.params, "params_conv": self.params_conv, **self.subtree_totals("")}

    def subtree_totals(self, module: str) -> dict[str, int | None]:
        """``macs``, ``flops``, the two gradient terms and ``train_flops`` of the ops that ran in
        ``module`` or below it (``""``: the whole model), so that parts of a model sum to its totals."""
        macs, train_macs = self._sum(FORWARD, "macs", module), self._train_macs(module)
        return {
            "macs": macs,
            "flops": macs_to_flops(macs),
            "bwd_input_macs": self._grads("bwd_input_macs", module),
            "bwd_weight_macs": self._grads("bwd_weight_macs", module),
            "train_flops": None if train_macs is None else macs_to_flops(train_macs),
        }

    def module_totals(self) -> dict[str, dict[str, int]]:
        """``{module name: {'macs', 'train_macs'}}``, each module summing the ops of its whole subtree."""
        out: dict[str, dict[str, int]] = {m.name: {"macs": 0, "train_macs": 0} for m in self.modules}
        for o in self.ops:
            if not o.cost.macs:
                continue
            key = "macs" if o.phase == FORWARD else "train_macs"
            for name in _ancestors(o.module):
                out.setdefault(name, {"macs": 0, "train_macs": 0})[key] += self.scale * o.cost.macs
        return out

    def module_rows(self, depth: int | None = None) -> list[dict[str, Any]]:
        """One row per module down to ``depth`` (the root is depth 0), in definition order:
        name, type, depth, params and the subtree's macs, flops and train_flops."""
        totals = self.module_totals()
        return [
            {
                "name": m.name,
                "type": m.type,
                "depth": m.depth,
                "params": m.params,
                "macs": totals[m.name]["macs"],
                "flops": macs_to_flops(totals[m.name]["macs"]),
                "train_flops": macs_to_flops(totals[m.name]["train_macs"]) if self.train_traced else None,
            }
            for m in self.modules
            if depth is None or m.depth <= depth
        ]


def _within(module: str, ancestor: str) -> bool:
    return ancestor == "" or module == ancestor or module.startswith(ancestor + ".")


def _ancestors(module: str) -> list[str]:
    """``"layer1.0.conv1"`` → ``["", "layer1", "layer1.0", "layer1.0.conv1"]``."""
    if not module:
        return [""]
    parts = module.split(".")
    return [""] + [".".join(parts[: i + 1]) for i in range(len(parts))]


def _shape_tree(value: Any) -> Any:
    """Tensors → :class:`Shape`, recursively through lists and tuples; everything else as is."""
    import torch

    if isinstance(value, torch.Tensor):
        return Shape(value.shape)
    if isinstance(value, (list, tuple)):
        return type(value)(_shape_tree(v) for v in value) if not isinstance(value, Shape) else value
    return value


def _describe_shapes(args: Any) -> str:
    return ", ".join(shape_text(a) for a in args if isinstance(a, Shape))


@dataclass(frozen=True)
class _ForwardOp:
    """What the backward of a training-forward op needs from it: where it ran, and for a
    product, the storage of each factor (to tell which factor a backward product differentiates)."""

    op: str
    module: str
    factor_storages: tuple[int, ...]


class _Recorder:
    """The dispatch mode and the module tracker, together: records each priced op.

    Each backward op is attributed through the autograd node running it
    (``torch._C._current_autograd_node()``) to the forward op that created that node
    (matched by the node's sequence number): it takes that op's module, and a backward
    matrix product is an input or a weight gradient by which factor it differentiates
    and where autograd sends that gradient (see :func:`_gradient_term`)."""

    def __init__(self) -> None:
        from torch.utils.module_tracker import ModuleTracker

        self.tracker = ModuleTracker()
        self.ops: list[TracedOp] = []
        self.unknown: Counter[str] = Counter()
        self.phase = FORWARD
        self._names: dict[Any, str] = {}
        #: ids of the parameters the forward runs with: a gradient accumulated into one is a weight gradient
        self.parameters: set[int] = set()
        #: the priced ops of the training forward, by the sequence number of the autograd node each created
        self.forward_ops: dict[int, _ForwardOp] = {}

    def module(self) -> str:
        """The innermost module running now; the tracker names modules ``<RootClass>.<fqn>``."""
        deepest = max(self.tracker.parents, key=lambda p: (p.count("."), p != "Global"))
        return deepest.split(".", 1)[1] if "." in deepest else ""

    def dispatch(self, mode: Any, func: Any, args: tuple, kwargs: dict) -> Any:
        name = self._names.get(func)
        if name is None:
            name = self._names[func] = (
                func._overloadpacket.__name__
                if func.namespace == "aten"
                else f"{func.namespace}.{func._overloadpacket.__name__}"
            )
        if name in DATA_MOVEMENT or func.namespace == "prim":
            return func(*args, **kwargs)
        formula = aten_formula(name)
        if formula is None:
            with mode:  # a composite op: record the ops it is made of instead
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
            self.unknown[name] += 1
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        shapes = _shape_tree(args)
        cost = formula(shapes, _shape_tree(kwargs), _shape_tree(out))
        if self.phase == BACKWARD:
            module, cost = self._backward(name, args, cost)
        else:
            module = self.module()
            if self.phase == TRAIN_FORWARD:
                self._remember(name, module, args)
        self.ops.append(TracedOp(name, module, self.phase, _describe_shapes(shapes), cost))
        return out

    def _remember(self, op: str, module: str, args: tuple) -> None:
        """Key a training-forward op by the autograd node it created: the sequence number just
        taken (an op no input of which needs a gradient creates none, and is not kept)."""
        import torch

        if not any(isinstance(a, torch.Tensor) and a.requires_grad for a in _flat(args)):
            return
        storages = tuple(_storage(args[i]) for i in PRODUCT_FACTORS.get(op, ()))
        self.forward_ops[torch.autograd._get_sequence_nr() - 1] = _ForwardOp(op, module, storages)

    def _backward(self, op: str, args: tuple, cost: OpCost) -> tuple[str, OpCost]:
        """The module and the gradient split of a backward op, from the autograd node running it."""
        import torch

        node = torch._C._current_autograd_node()
        forward = self.forward_ops.get(node._sequence_nr()) if node is not None else None
        module = forward.module if forward is not None else self.module()
        if not cost.macs or cost.bwd_input_macs or cost.bwd_weight_macs:  # convolution_backward splits itself
            return module, cost
        if forward is not None and _gradient_term(args, forward, node, self.parameters) == "weight":
            return module, replace(cost, bwd_weight_macs=cost.macs)
        return module, replace(cost, bwd_input_macs=cost.macs)


def _flat(args: tuple) -> list[Any]:
    return [b for a in args for b in (a if isinstance(a, (list, tuple)) else (a,))]


def _storage(t: Any) -> int:
    """The identity of a tensor's storage, which its views and saved copies share (a tensor without one: itself)."""
    try:
        return t.untyped_storage()._cdata
    except (AttributeError, RuntimeError, NotImplementedError):
        return id(t)


#: autograd nodes that pass a gradient on unchanged in value (views, copies, casts): a gradient that
#: reaches a parameter through only these is that parameter's gradient
_PASS_THROUGH = frozenset(
    [
        "TBackward0",
        "ViewBackward0",
        "UnsafeViewBackward0",
        "ReshapeAliasBackward0",
        "ExpandBackward0",
        "PermuteBackward0",
        "TransposeBackward0",
        "TransposeBackward1",
        "AliasBackward0",
        "CloneBackward0",
        "ToCopyBackward0",
        "SqueezeBackward0",
        "SqueezeBackward1",
        "SqueezeBackward2",
        "UnsqueezeBackward0",
        "SliceBackward0",
        "SelectBackward0",
        "SplitBackward0",
        "SplitWithSizesBackward0",
        "UnbindBackward0",
        "AsStridedBackward0",
    ]
)


def _gradient_term(args: tuple, forward: _ForwardOp, node: Any, parameters: set[int]) -> str:
    """``"weight"`` or ``"input"``: what a backward matrix product computes, from what autograd runs.

    The backward of a product ``a·b`` computes ``grad·bᵀ`` for ``a`` and ``aᵀ·grad`` for ``b``, so the
    factor it reads (matched by storage) names the factor it differentiates: the other one. That
    factor's gradient goes along the node's edge for it; it is a weight gradient when that edge
    reaches a parameter's ``AccumulateGrad`` through views and copies only. A product in any other
    node (attention's fused backward, a custom ``autograd.Function``) is counted as an input gradient."""
    positions = PRODUCT_FACTORS.get(forward.op, ())
    if len(positions) != 2 or forward.op in ATTENTION_OPS:
        return "input"
    read = {_storage(a) for a in _flat(args) if hasattr(a, "untyped_storage")}
    others = [i for i, s in enumerate(forward.factor_storages) if s not in read]
    if len(others) != 1:  # both factors read, or neither: they share storage, so are the same kind
        others = [0, 1]
    edges = node.next_functions
    kinds = {_edge_kind(edges[positions[i]][0], parameters) for i in others if positions[i] < len(edges)}
    return "weight" if kinds == {"weight"} else "input"


def _edge_kind(fn: Any, parameters: set[int]) -> str:
    while fn is not None:
        if hasattr(fn, "variable"):
            return "weight" if id(fn.variable) in parameters else "input"
        if fn.name() not in _PASS_THROUGH:
            return "input"
        fn = fn.next_functions[0][0] if fn.next_functions else None
    return "input"


def _mode(recorder: _Recorder) -> Any:
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            return recorder.dispatch(self, func, args, kwargs or {})

    return _Mode()


def _outputs(out: Any) -> list[torch.Tensor]:
    import torch
    from torch.utils._pytree import tree_leaves

    return [t for t in tree_leaves(out) if isinstance(t, torch.Tensor) and t.requires_grad]


def _call(module: nn.Module, state: dict[str, torch.Tensor] | None, x: torch.Tensor) -> Any:
    from torch.func import functional_call

    return module(x) if state is None else functional_call(module, state, (x,))


def _run(
    module: nn.Module,
    state: dict[str, torch.Tensor] | None,
    shape: tuple[int, ...],
    device: str,
    train: bool,
    input_requires_grad: bool,
) -> tuple[_Recorder, bool]:
    """Trace an eval forward, then (``train``) a train-mode forward and backward. Returns the
    recorder and whether a backward was traced (an output with no gradient path has none)."""
    import torch

    recorder = _Recorder()
    recorder.parameters = {id(p) for p in (state.values() if state is not None else module.parameters())}
    modes = {m: m.training for m in module.modules()}
    try:
        module.eval()
        with recorder.tracker, _mode(recorder):
            _call(module, state, torch.zeros(shape, device=device))
            if not train:
                return recorder, False
            module.train()
            recorder.phase = TRAIN_FORWARD
            out = _call(module, state, torch.zeros(shape, device=device, requires_grad=input_requires_grad))
            outputs = _outputs(out)
            if not outputs:
                return recorder, False
            recorder.phase = BACKWARD
            sum(t.sum() for t in outputs).backward()  # type: ignore[union-attr]
        return recorder, True
    finally:
        for m, was in modes.items():
            m.train(was)


def _meta_state(module: nn.Module) -> dict[str, torch.Tensor] | None:
    """Meta stand-ins for a module's parameters and buffers (None if it is on meta already):
    the module is called with them through ``functional_call`` and never changed or copied."""
    import torch

    tensors = {
        **dict(module.named_parameters(remove_duplicate=False)),
        **dict(module.named_buffers(remove_duplicate=False)),
    }
    if all(t.is_meta for t in tensors.values()):
        return None
    return {n: torch.empty_like(t, device="meta").requires_grad_(t.requires_grad) for n, t in tensors.items()}


def _needs_values(error: BaseException) -> bool:
    """Whether a forward failed on meta because it reads values (not because it is wrong)."""
    text = str(error).lower()
    return (
        isinstance(error, NotImplementedError) or "meta" in text or "data-dependent" in text or "data dependent" in text
    )


def modules_of(module: nn.Module) -> tuple[ModuleInfo, ...]:
    return tuple(
        ModuleInfo(
            name,
            type(m).__name__,
            0 if not name else name.count(".") + 1,
            sum(p.numel() for p in m.parameters()),
            conv_weight_params(m),
        )
        for name, m in module.named_modules()
    )


def conv_weight_params(module: nn.Module) -> int:
    """Weights of every convolution (no bias, no norm): the classic worked examples' convention."""
    from torch.nn.modules.conv import _ConvNd

    return sum(m.weight.numel() for m in module.modules() if isinstance(m, _ConvNd))


def trace(
    module: nn.Module,
    input_shape: tuple[int, ...],
    *,
    name: str | None = None,
    train: bool = True,
    input_requires_grad: bool = False,
    real: Callable[[], nn.Module] | None = None,
) -> Trace:
    """Trace ``module`` (left as handed in) on an input of ``input_shape``.

    ``input_requires_grad``: whether the training step computes the input's gradient (True
    for a block inside a network, False for a whole network, whose input is data).
    ``real`` builds a module with real weights for the fallback when the forward needs
    values and ``module`` lives on meta (default: ``module`` itself, or an empty copy).
    """
    import torch

    shape = tuple(input_shape)
    label = name or type(module).__name__
    try:
        recorder, traced_train = _run(module, _meta_state(module), shape, "meta", train, input_requires_grad)
        device, scale, note = "meta", 1, None
    except Exception as e:
        if not _needs_values(e):
            raise BlockprofError(f"{label}: its forward on a {shape_text(shape)} input raised {one_line(e)}") from None
        sample = (1, *shape[1:])
        try:
            with torch.device("cpu"):
                cpu = real() if real is not None else _cpu_copy(module)
            recorder, traced_train = _run(cpu, None, sample, "cpu", train, input_requires_grad)
        except Exception as e2:
            raise BlockprofError(
                f"{label}: its forward on a {shape_text(sample)} input raised {one_line(e2)}"
            ) from None
        device, scale = "cpu", shape[0]
        note = f"the forward needs values ({one_line(e)}), so it was traced on the CPU with one zero sample" + (
            f" and the counts multiplied by the batch {shape[0]}" if shape[0] != 1 else ""
        )
    return Trace(
        model=label,
        input_shape=shape,
        params=sum(p.numel() for p in module.parameters()),
        params_conv=conv_weight_params(module),
        modules=modules_of(module),
        ops=tuple(recorder.ops),
        unknown_ops=dict(sorted(recorder.unknown.items())),
        device=device,
        scale=scale,
        note=note,
        train_traced=traced_train,
        input_requires_grad=input_requires_grad,
        parameter_shapes=tuple((n, tuple(p.shape)) for n, p in module.named_parameters()),
    )


def _cpu_copy(module: nn.Module) -> nn.Module:
    """A CPU copy with values to read: the module itself is never moved."""
    import copy

    clone = copy.deepcopy(module)
    if any(t.is_meta for t in (*clone.parameters(), *clone.buffers())):
        clone = clone.to_empty(device="cpu")
        for t in (*clone.parameters(), *clone.buffers()):
            t.data.zero_()
    return clone
