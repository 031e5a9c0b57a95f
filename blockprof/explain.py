"""``explain``: the analytic count written out as the sums it is, numbers in place.

Pure presentation over :class:`~blockprof.counting.analytic.AnalyticCount`:
every figure here comes from :mod:`blockprof.counting.formulas`, so the text a
learner reads is the arithmetic the counter did.
"""

from __future__ import annotations

from blockprof.counting.analytic import AnalyticCount, LayerCount
from blockprof.units import grouped


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
        lines.append(_sum_line("BatchNorm γ and β (2 per channel)", [r.cost.params_formula for r in norms], sum(r.cost.params for r in norms)))
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
