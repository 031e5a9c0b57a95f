"""The record: one flat, JSON-safe dict per counted block, and records → DataFrame.

The field list below is a public interface (``--format json``, CSV columns,
saved runs, baselines): add fields, never rename or drop one. Each field says
its unit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    import pandas as pd

#: field → what it holds (README's schema table is generated from this)
COUNT_FIELDS: dict[str, str] = {
    "block": "block name, or 'package.module:callable' for a user block",
    "in_channels": "input width C_in",
    "out_channels": "output width C_out",
    "stride": "stride of the block",
    "expansion": "bottleneck: out/inner width; inverted residual: t; basic: 1",
    "groups": "groups of the bottleneck's 3×3",
    "width_per_group": "torchvision's ResNeXt width_per_group, or null",
    "se": "squeeze-excitation ratio (0 = none)",
    "spatial": "input height = width",
    "batch": "batch size",
    "inner_width": "width inside the block (bottleneck inner, inverted-residual hidden), or null",
    "count_source": "'analytic' (closed form), 'trace' (user block: traced op by op) or 'tools' (a network of user blocks: torch's flop counter)",
    "params": "trainable parameters (scalars), BN included",
    "module_params": "sum(p.numel() for p in module.parameters()): the independent check of params",
    "params_conv": "conv weights only (no bias, no BN)",
    "macs": "forward multiply-accumulates of conv and linear layers",
    "flops": "2 × macs (1 MAC = 2 FLOPs)",
    "bwd_input_macs": "backward: input-gradient MACs",
    "bwd_weight_macs": "backward: weight-gradient MACs",
    "train_flops": "forward + backward FLOPs, conv and linear (2 × (macs + bwd_input_macs + bwd_weight_macs))",
    "fvcore_macs": "fvcore FlopCountAnalysis total (its 'flops' are MACs; includes BN and pooling)",
    "fvcore_agrees": "fvcore equals the analytic count under fvcore's convention",
    "fvcore_note": "what fvcore's number is made of, or why it differs",
    "thop_macs": "thop.profile total (MACs; includes BN and pooling)",
    "thop_agrees": "thop equals the analytic count under thop's convention",
    "thop_note": "what thop's number is made of, or why it differs",
    "torch_macs": "torch.utils.flop_counter forward FLOPs ÷ 2 (conv and matmul only)",
    "torch_agrees": "torch's forward equals analytic macs",
    "torch_note": "what torch's number is made of, or why it differs",
    "torch_train_flops": "torch.utils.flop_counter forward + backward FLOPs",
    "torch_train_agrees": "torch's forward + backward equals analytic train_flops",
    "torch_train_note": "why torch's training count differs, when it does",
    "status": "'ok' or 'error'",
    "error": "the one-line error of a failed cell, else null",
}


def to_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records → DataFrame with the schema's columns first, in schema order."""
    import pandas as pd

    df = pd.DataFrame.from_records(records)
    known = [c for c in COUNT_FIELDS if c in df.columns]
    return df[known + [c for c in df.columns if c not in COUNT_FIELDS]]


def describe(record: Mapping[str, Any]) -> str:
    """One line naming the cell a record is of: ``bottleneck C=256, input 32×256×56×56 (s2 t4 g32), float32 on cpu``."""

    def given(key: str) -> Any:
        value = record.get(key)
        return None if value is None or value != value else value  # None and NaN alike

    text = f"{record['block']} C={record['in_channels']}"
    if given("out_channels") is not None and record["out_channels"] != record["in_channels"]:
        text += f"→{record['out_channels']:g}"
    if given("spatial") is not None and given("batch") is not None:
        text += f", input {record['batch']:g}×{record['in_channels']}×{record['spatial']:g}×{record['spatial']:g}"
    marks = {"stride": ("s", 1), "expansion": ("t", None), "groups": ("g", 1), "width_per_group": ("w", None), "se": ("se", 0)}
    if record["block"] == "basic":
        marks.pop("expansion")  # always 1: a BasicBlock has no expansion
    extra = [f"{mark}{given(k):g}" for k, (mark, default) in marks.items() if given(k) is not None and given(k) != default]
    if extra:
        text += f" ({' '.join(extra)})"
    if given("dtype") and given("device"):
        text += f", {record['dtype']} on {record['device']}"
    return text
