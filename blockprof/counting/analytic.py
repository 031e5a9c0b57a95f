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
from typing import TYPE_CHECKING

from blockprof.counting.formulas import Cost, Layer, cost
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec, NetworkSpec, ResolvedSpec
from blockprof.units import macs_to_flops

if TYPE_CHECKING:
    from blockprof.blocks.registry import BlockDef


@dataclass(frozen=True)
class LayerCount:
    layer: Layer
    cost: Cost


@dataclass(frozen=True)
class AnalyticCount:
    """The layer rows of a block, or of a whole network (``spec`` a NetworkSpec), and their totals."""

    spec: ResolvedSpec | BlockSpec | NetworkSpec
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


def count_layers(
    spec: ResolvedSpec | BlockSpec | NetworkSpec, layers: list[Layer], inner_widths: dict[str, int] | None = None
) -> AnalyticCount:
    """Sum the closed-form cost of ``layers`` for ``spec.batch`` inputs."""
    return AnalyticCount(
        spec, tuple(LayerCount(layer, cost(layer, spec.batch)) for layer in layers), inner_widths or {}
    )


def closed_form(spec: BlockSpec | ResolvedSpec) -> tuple[BlockDef, ResolvedSpec, AnalyticCount | None]:
    """Resolve ``spec``, then count its layers in closed form (``None`` for a user block, which has none):
    the one place a spec becomes an analytic count."""
    from blockprof.blocks.registry import resolve

    definition, resolved = resolve(spec)
    if not definition.analytic:
        return definition, resolved, None
    return definition, resolved, count_layers(resolved, definition.layers(resolved), definition.inner_widths(resolved))


def analytic(spec: BlockSpec | ResolvedSpec) -> AnalyticCount:
    """The closed-form count of ``spec``'s block (a registered block, not a user one)."""
    _, resolved, count = closed_form(spec)
    if count is None:
        raise BlockprofError(f"{resolved.block} is a user block: it has no closed-form count; count() traces it")
    return count
