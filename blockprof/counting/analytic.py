"""The analytic count: a block's layer table in closed form, and its totals (no torch).

Totals, all for the spec's batch:

* ``params``       every trainable scalar, BN's γ and β included; must equal
  ``sum(p.numel() for p in module.parameters())``;
* ``params_conv``  conv weights only (no bias, no BN): the classic worked examples' convention;
* ``macs``         forward multiply-accumulates of conv and linear layers; ``flops = 2·macs``;
* ``bwd_input_macs`` / ``bwd_weight_macs`` the two backward terms, kept apart so a
  tool's disagreement can be pinned on one of them;
* ``train_flops``  forward + both backward terms, in FLOPs (conv and linear only,
  as ``torch.utils.flop_counter`` counts);
* ``elements``     values written by each elementwise op kind (BN, ReLU, add, ...),
  from which each tool's own convention is rebuilt.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from blockprof.counting.formulas import Cost, Layer, cost
from blockprof.spec import BlockSpec, NetworkSpec, ResolvedSpec
from blockprof.units import macs_to_flops


@dataclass(frozen=True)
class LayerCount:
    layer: Layer
    cost: Cost


@dataclass(frozen=True)
class AnalyticCount:
    """The layer rows of a block, or of a whole network (``spec`` a NetworkSpec), and their totals."""

    spec: BlockSpec | ResolvedSpec | NetworkSpec
    rows: tuple[LayerCount, ...]
    inner_widths: dict[str, int] = field(default_factory=dict)

    @property
    def params(self) -> int:
        return sum(r.cost.params for r in self.rows)

    @property
    def params_conv(self) -> int:
        return sum(r.cost.weight_params for r in self.rows if r.layer.op == "conv2d")

    @property
    def macs(self) -> int:
        return sum(r.cost.macs for r in self.rows)

    @property
    def flops(self) -> int:
        return macs_to_flops(self.macs)

    @property
    def bwd_input_macs(self) -> int:
        return sum(r.cost.bwd_input_macs for r in self.rows)

    @property
    def bwd_weight_macs(self) -> int:
        return sum(r.cost.bwd_weight_macs for r in self.rows)

    @property
    def train_flops(self) -> int:
        return macs_to_flops(self.macs + self.bwd_input_macs + self.bwd_weight_macs)

    @property
    def elements(self) -> dict[str, int]:
        """Values written per elementwise op kind, e.g. ``{'batchnorm2d': ..., 'relu': ...}``."""
        out: Counter[str] = Counter()
        for r in self.rows:
            if r.cost.elements:
                out[r.layer.op] += r.cost.elements
        return dict(out)

    def totals(self) -> dict[str, int]:
        return {
            "params": self.params,
            "params_conv": self.params_conv,
            "macs": self.macs,
            "flops": self.flops,
            "bwd_input_macs": self.bwd_input_macs,
            "bwd_weight_macs": self.bwd_weight_macs,
            "train_flops": self.train_flops,
        }

    def layer_table(self) -> list[dict[str, object]]:
        """One dict per layer: shapes, counts and the formulas behind them."""
        return [
            {
                "layer": r.layer.name,
                "op": r.layer.op,
                "in_channels": r.layer.in_channels,
                "out_channels": r.layer.out_channels,
                "kernel": r.layer.kernel,
                "stride": r.layer.stride,
                "groups": r.layer.groups,
                "out_size": r.layer.out_size,
                "params": r.cost.params,
                "params_formula": r.cost.params_formula,
                "macs": r.cost.macs,
                "macs_formula": r.cost.macs_formula,
                "elements": r.cost.elements,
            }
            for r in self.rows
        ]


def count_layers(spec: BlockSpec | ResolvedSpec | NetworkSpec, layers: list[Layer], inner_widths: dict[str, int] | None = None) -> AnalyticCount:
    """Sum the closed-form cost of ``layers`` for ``spec.batch`` inputs."""
    return AnalyticCount(spec, tuple(LayerCount(l, cost(l, spec.batch)) for l in layers), inner_widths or {})


def analytic(spec: BlockSpec) -> AnalyticCount:
    """The closed-form count of ``spec``'s block (a registered block, not a user one)."""
    from blockprof.blocks.registry import resolve

    definition, spec = resolve(spec)
    return count_layers(spec, definition.layers(spec), definition.inner_widths(spec))
