"""``explain``: the analytic count written out as the sums it is, numbers in place.

Pure presentation over :class:`~blockprof.counting.analytic.AnalyticCount`:
every figure here comes from :mod:`blockprof.counting.formulas`, so the text a
learner reads is the arithmetic the counter did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from blockprof.counting.analytic import AnalyticCount, LayerCount
from blockprof.spec import NetworkSpec
from blockprof.units import grouped

if TYPE_CHECKING:
    from blockprof.counting.trace import Trace
    from blockprof.networks.count import NetworkCount, TracedNetwork
    from blockprof.spec import BlockSpec, ResolvedSpec


def _sum_line(label: str, terms: list[str], total: int) -> str:
    return f"  {label}: {' + '.join(terms)} = {grouped(total)}"


def _table(rows: list[LayerCount], formula: str, value: str) -> list[str]:
    width = max((len(r.layer.name) for r in rows), default=0)
    fwidth = max((len(getattr(r.cost, formula)) for r in rows), default=0)
    return [
        f"  {r.layer.name:<{width}}  {getattr(r.cost, formula):<{fwidth}} = {grouped(getattr(r.cost, value)):>15}"
        for r in rows
    ]


def explain_text(count: AnalyticCount) -> str:
    """The derivation of params, MACs, FLOPs and the training step for one block."""
    s = count.spec
    if isinstance(s, NetworkSpec):
        raise TypeError("explain_text explains a block; explain_network_text explains a network")
    rows = list(count.rows)
    convs = [r for r in rows if r.layer.op in ("conv2d", "linear")]
    norms = [r for r in rows if r.layer.op == "batchnorm2d"]
    inner = ", ".join(f"{k} width {v}" for k, v in count.inner_widths.items())
    n, out = s.batch, s.output_spatial
    lines = [
        f"{s.label}{f' ({inner})' if inner else ''}",
        f"input {n}×{s.in_channels}×{s.spatial}×{s.spatial} → output {n}×{s.out_channels}×{out}×{out}",
        "",
        "Parameters. A conv holds (C_in/groups)·k·k·C_out weights (+ C_out if it has a bias):",
        *_table(convs, "params_formula", "params"),
    ]
    weight_rows = [r for r in convs if r.layer.op == "conv2d"]
    lines.append(_sum_line("conv weights", [r.cost.weights_formula for r in weight_rows], count.params_conv))
    if norms:
        lines.append(
            _sum_line(
                "BatchNorm γ and β (2 per channel)",
                [r.cost.params_formula for r in norms],
                sum(r.cost.params for r in norms),
            )
        )
    biases = count.params - count.params_conv - sum(r.cost.params for r in norms)
    if biases:
        lines.append(f"  biases: {grouped(biases)}")
    lines.append(f"  all trainable parameters: {grouped(count.params)}")
    lines += [
        "",
        "MACs (multiply-accumulates). A conv does N·H_out·W_out·(C_in/groups)·k·k·C_out:",
        *_table(convs, "macs_formula", "macs"),
        _sum_line("total", [grouped(r.cost.macs) for r in convs], count.macs) + " MACs",
        f"  = {grouped(count.flops)} FLOPs (1 MAC = 2 FLOPs)",
        "",
        "Training step (forward + backward, conv and linear layers):",
        f"  input gradients  {grouped(count.bwd_input_macs)} MACs (a transposed conv per layer, same MACs as forward)",
        f"  weight gradients {grouped(count.bwd_weight_macs)} MACs (input ⋆ output-gradient per layer, same MACs as forward)",
        f"  train_flops = 2·({grouped(count.macs)} + {grouped(count.bwd_input_macs)} + {grouped(count.bwd_weight_macs)}) = {grouped(count.train_flops)} FLOPs",
    ]
    if count.elements:
        lines += ["", "Elementwise work, not in the MACs (values written; tools count these differently):"]
        lines += [f"  {op:<12} {grouped(v):>15}" for op, v in count.elements.items()]
    return "\n".join(lines)


def explain_network_text(count: NetworkCount) -> str:
    """A network's params and MACs stage by stage: the stem's and head's layers with
    their formulas, one line per block, and each stage's sum, so every total is the
    sum of the lines above it."""
    lay, spec = count.layout, count.layout.spec
    n, s = spec.batch, spec.spatial
    lines = [
        f"{spec.label} (torchvision's layout{', ResNet v1.5: stride on the 3×3' if lay.block == 'bottleneck' else ''}), "
        f"input {n}×3×{s}×{s} → output {n}×1000",
        "params: trainable scalars (BN's γ and β included); MACs: multiply-accumulates of conv and linear layers (1 MAC = 2 FLOPs)",
    ]
    for sc in count.stages:
        stage = sc.stage
        lines += [
            "",
            f"{stage.name} [{', '.join(stage.modules) if len(stage.modules) < 4 else stage.modules[0] + ' … ' + stage.modules[-1]}]: "
            f"{stage.description} → {stage.out_channels}×{stage.out_size}×{stage.out_size}",
        ]
        if sc.blocks:
            width = max(len(b.name) for b in stage.blocks)
            lines += [
                f"  {b.name:<{width}}  {b.spec.label:<34} {grouped(c.params):>12} params {grouped(c.macs):>15} MACs"
                for b, c in zip(stage.blocks, sc.blocks, strict=False)
            ]
            params_terms, macs_terms = [grouped(c.params) for c in sc.blocks], [grouped(c.macs) for c in sc.blocks]
        else:
            rows = [r for r in sc.count.rows if r.cost.params or r.cost.macs]
            width = max(len(r.layer.name) for r in rows)
            lines += [
                f"  {r.layer.name:<{width}}  {r.cost.params_formula + ' = ' + grouped(r.cost.params):<34} params"
                + (f"   {r.cost.macs_formula} = {grouped(r.cost.macs)} MACs" if r.cost.macs else "")
                for r in rows
            ]
            params_terms, macs_terms = (
                [grouped(r.cost.params) for r in rows],
                [grouped(r.cost.macs) for r in rows if r.cost.macs],
            )
        lines.append(f"  {stage.name} params: {_sum(params_terms, sc.count.params)}")
        lines.append(f"  {stage.name} MACs:   {_sum(macs_terms, sc.count.macs)}")
    total = count.total
    published = count.published_params
    lines += [
        "",
        _sum_line("params", [grouped(sc.count.params) for sc in count.stages], total.params)
        + (f" (torchvision publishes {grouped(published)})" if published is not None else ""),
        _sum_line("MACs", [grouped(sc.count.macs) for sc in count.stages], total.macs)
        + f" = {grouped(total.flops)} FLOPs",
        f"  training step: train_flops = 2·({grouped(total.macs)} forward + {grouped(total.bwd_input_macs)} input-gradient"
        f" + {grouped(total.bwd_weight_macs)} weight-gradient MACs) = {grouped(total.train_flops)} FLOPs",
    ]
    first = next(c.stage.blocks[0].spec for c in count.stages if c.blocks)
    lines.append(f"One block's own derivation: {_explain_command(first)}")
    return "\n".join(lines)


def explain_traced_network_text(network: TracedNetwork) -> str:
    """A network with a user block, derived from its trace as ``explain`` derives a user block:
    stage by stage, every convolution and matrix product of the forward with its formula, numbers
    in place, each block's parameters, and each stage's sums; then the training step from the
    backward ops autograd ran. Every total is the sum of the lines above it."""
    from blockprof.counting.trace import FORWARD

    lay, trace = network.layout, network.trace
    spec, scale = lay.spec, trace.scale
    infos = {m.name: m for m in trace.modules}
    n, s = spec.batch, spec.spatial
    lines = [
        f"{spec.label} (a user block: no closed form, so the network was traced op by op, "
        "every aten op priced by blockprof's formulas)",
        f"input {n}×3×{s}×{s} → output {n}×1000",
        "params: trainable scalars (module.parameters()); MACs: each convolution and matrix product "
        "(conv: N·H_out·W_out·(C_in/groups)·k·k·C_out; matmul: m·k·n; 1 MAC = 2 FLOPs)",
    ]
    if trace.note:
        lines.append(f"note: {trace.note}")
    stage_totals = network.stage_totals()
    for stage, totals in zip(lay.stages, stage_totals, strict=True):
        lines += [
            "",
            f"{stage.name} [{', '.join(stage.modules)}]: {stage.description} → {stage.out_channels}×{stage.out_size}×{stage.out_size}",
        ]
        products = [
            o
            for o in trace.ops
            if o.phase == FORWARD and o.cost.macs and any(_owned(o.module, m) for m in stage.modules)
        ]
        mwidth = max((len(o.module) for o in products), default=0)
        fwidth = max((len(o.cost.formula) for o in products), default=0)
        lines += [
            f"  {o.module:<{mwidth}}  {o.op:<12} {o.cost.formula:<{fwidth}} = {grouped(scale * o.cost.macs):>15}"
            for o in products
        ]
        parts = [b.name for b in stage.blocks] or [m for m in stage.modules if infos[m].params]
        lines.append(
            f"  {stage.name} params: " + _sum([f"{grouped(infos[p].params)} ({p})" for p in parts], totals["params"])
        )
        lines.append(f"  {stage.name} MACs:   {_sum([grouped(scale * o.cost.macs) for o in products], totals['macs'])}")
    total = trace.totals()
    lines += [
        "",
        _sum_line("params", [grouped(t["params"]) for t in stage_totals], total["params"]),
        _sum_line("MACs", [grouped(t["macs"]) for t in stage_totals], total["macs"])
        + f" = {grouped(total['flops'])} FLOPs",
    ]
    if total["train_flops"] is not None:
        lines.append(
            f"  training step (the backward ops autograd ran; the first conv's input is data, so it has no input gradient): "
            f"train_flops = 2·({grouped(total['macs'])} forward + {grouped(total['bwd_input_macs'])} input-gradient"
            f" + {grouped(total['bwd_weight_macs'])} weight-gradient MACs) = {grouped(total['train_flops'])} FLOPs"
        )
    if trace.unknown_ops:
        lines.append(
            f"Ops with no formula (not counted): {', '.join(f'{op}×{k}' for op, k in trace.unknown_ops.items())}"
        )
    first = next(c.blocks[0].spec for c in lay.stages if c.blocks)
    lines.append(f"One block's own derivation: {_explain_command(first)}")
    return "\n".join(lines)


def _owned(module: str, top: str) -> bool:
    return module == top or module.startswith(top + ".")


def _explain_command(spec: ResolvedSpec) -> str:
    """The ``blockprof explain`` command line that derives ``spec``'s block: every option the
    block takes whose value is not the block's own default."""
    from blockprof.blocks.registry import defaults_of, get

    accepts, defaults = get(spec.block).accepts, defaults_of(spec.block)
    parts = [f"blockprof explain {spec.block} --channels {spec.in_channels}"]
    if spec.out_channels != spec.in_channels:
        parts.append(f"--out-channels {spec.out_channels}")
    if spec.stride != 1:
        parts.append(f"--stride {spec.stride}")
    for field in ("expansion", "groups", "width_per_group", "se", "kernel", "activation", "se_style"):
        value = getattr(spec, field)
        if field in accepts and value is not None and value != defaults.get(field):
            parts.append(
                f"--{field.replace('_', '-')} {value:g}"
                if isinstance(value, float)
                else f"--{field.replace('_', '-')} {value}"
            )
    parts.append(f"--spatial {spec.spatial}")
    return " ".join(parts)


def _sum(terms: list[str], total: int) -> str:
    return f"{' + '.join(terms)} = {grouped(total)}" if len(terms) > 1 else grouped(total)


def explain_traced_text(spec: BlockSpec | ResolvedSpec, trace: Trace) -> str:
    """A block with no closed form, derived from its trace: each parameter tensor, then each
    product op of the forward with its formula, numbers in place, then the training step from
    the backward autograd ran. The formulas are :mod:`blockprof.counting.formulas`' own."""
    from blockprof.counting.trace import FORWARD

    n, out = spec.batch, spec.output_spatial
    lines = [
        f"{spec.label} (no closed form: counted by tracing its forward, every aten op priced by blockprof's formulas)",
        f"input {n}×{spec.in_channels}×{spec.spatial}×{spec.spatial} → output {n}×{spec.out_channels}×{out}×{out}",
    ]
    if trace.note:
        lines.append(f"note: {trace.note}")
    shapes = [(name, shape) for name, shape in trace.parameter_shapes]
    width = max((len(name) for name, _ in shapes), default=0)
    lines += ["", "Parameters (each tensor's shape, multiplied out):"]
    lines += [f"  {name:<{width}}  {'·'.join(map(str, s)) or '1':<18} = {grouped(_prod(s)):>12}" for name, s in shapes]
    lines.append(f"  all trainable parameters: {grouped(trace.params)} (conv weights {grouped(trace.params_conv)})")
    products = [o for o in trace.ops if o.phase == FORWARD and o.cost.macs]
    mwidth = max((len(o.module or "(root)") for o in products), default=0)
    fwidth = max((len(o.cost.formula) for o in products), default=0)
    lines += [
        "",
        "MACs: each convolution and matrix product of the forward "
        "(conv: N·H_out·W_out·(C_in/groups)·k·k·C_out; matmul: m·k·n):",
    ]
    lines += [
        f"  {o.module or '(root)':<{mwidth}}  {o.op:<12} {o.cost.formula:<{fwidth}} = {grouped(trace.scale * o.cost.macs):>15}"
        for o in products
    ]
    lines += [
        _sum_line("total", [grouped(trace.scale * o.cost.macs) for o in products], trace.macs) + " MACs",
        f"  = {grouped(trace.flops)} FLOPs (1 MAC = 2 FLOPs)",
    ]
    totals = trace.totals()
    if trace.train_flops is not None:
        lines += [
            "",
            "Training step (the backward ops autograd ran; a product's backward costs its forward "
            "for each factor that needs a gradient):",
            f"  input gradients  {grouped(totals['bwd_input_macs'])} MACs",
            f"  weight gradients {grouped(totals['bwd_weight_macs'])} MACs",
            f"  train_flops = 2·({grouped(trace.macs)} + {grouped(totals['bwd_input_macs'])} + "
            f"{grouped(totals['bwd_weight_macs'])}) = {grouped(trace.train_flops)} FLOPs",
        ]
    if trace.elements:
        lines += ["", "Elementwise work, not in the MACs (values written):"]
        lines += [f"  {kind:<12} {grouped(v):>15}" for kind, v in trace.elements.items()]
    if trace.unknown_ops:
        unknown = ", ".join(f"{op}×{k}" for op, k in trace.unknown_ops.items())
        lines += ["", f"Ops with no formula (not counted): {unknown}"]
    return "\n".join(lines)


def _prod(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out
