"""Counting a whole network: the analytic sum stage by stage, the module, and the tools.

``network_count`` returns one flat record (the same field names and units as a
block's record, see :data:`blockprof.records.COUNT_FIELDS`, plus ``network``,
``published_params`` and a ``stages`` list), so ``--format json`` is one object.
Every stage carries the analytic sum (with a user block: the traced one), the
module's own parameter count and torch's MACs for that stage, so a disagreement
is pinned to a stage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from blockprof import schema
from blockprof.counting.analytic import AnalyticCount, count_layers
from blockprof.counting.tools import TOOL_NAMES, ToolCount
from blockprof.errors import BlockprofError
from blockprof.networks.layout import PUBLISHED, NetworkLayout, Stage, default_spatial, layout
from blockprof.spec import NetworkSpec

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from blockprof.counting.trace import Trace

#: a network record's fields beyond a block record's, and a stage row's beyond the totals (described in the schema)
NETWORK_FIELDS = schema.NETWORK_RECORD_FIELDS
STAGE_FIELDS = schema.STAGE_RECORD_FIELDS


@dataclass(frozen=True)
class StageCount:
    stage: Stage
    count: AnalyticCount
    #: one count per block, in order (empty for the stem and the head)
    blocks: tuple[AnalyticCount, ...]


@dataclass(frozen=True)
class NetworkCount:
    """The closed-form count of a network: the whole and each stage."""

    layout: NetworkLayout
    total: AnalyticCount
    stages: tuple[StageCount, ...]

    @property
    def published_params(self) -> int | None:
        """torchvision's published parameter count, for the unswapped network."""
        return None if self.layout.swapped else PUBLISHED[self.layout.spec.network][0]

    @property
    def published_gflops(self) -> float | None:
        """torchvision's published GFLOPS (MACs), for the unswapped network at its default size and batch 1."""
        spec = self.layout.spec
        _params, gflops, size = PUBLISHED[spec.network]
        return gflops if not self.layout.swapped and spec.spatial == size and spec.batch == 1 else None


def network_spec(
    name: str | NetworkSpec, block: str | None = None, spatial: int | None = None, batch: int = 1
) -> NetworkSpec:
    """The spec; ``spatial`` None is the size torchvision evaluates the network at."""
    if isinstance(name, NetworkSpec):
        return name
    return NetworkSpec(name, block, default_spatial(name) if spatial is None else spatial, batch)


def analytic_network(
    name: str | NetworkSpec, block: str | None = None, spatial: int | None = None, batch: int = 1
) -> NetworkCount:
    """The closed-form count, stage by stage (not for a user block, which has none)."""
    lay = layout(network_spec(name, block, spatial, batch))
    if not lay.analytic:
        raise BlockprofError(
            f"{lay.spec.label}: a user block has no closed form, so neither has the network; "
            "traced_network() counts it op by op"
        )
    stages = tuple(
        StageCount(
            s,
            _data_input(count_layers(lay.spec, list(s.layers))) if i == 0 else count_layers(lay.spec, list(s.layers)),
            tuple(count_layers(b.spec, list(b.layers)) for b in s.blocks),
        )
        for i, s in enumerate(lay.stages)
    )
    return NetworkCount(lay, _data_input(count_layers(lay.spec, lay.layers)), stages)


def _data_input(count: AnalyticCount) -> AnalyticCount:
    """The network's first layer reads the data, which needs no gradient: its backward computes
    the weight gradient only, as autograd runs it (the traced count agrees exactly)."""
    first, *rest = count.rows
    if first.layer.op != "conv2d":  # every family's stem starts with a conv; a layout bug otherwise
        raise AssertionError(f"{count.spec} starts with {first.layer.op}, not a conv")
    return replace(count, rows=(replace(first, cost=replace(first.cost, bwd_input_macs=0)), *rest))


def build_network(name: str | NetworkSpec, block: str | None = None, spatial: int | None = None) -> nn.Module:
    """The network as a torch module (CPU, float32, train mode; build it under
    ``torch.device('meta')`` to count without memory)."""
    return build_layout(layout(network_spec(name, block, spatial)))


def build_layout(lay: NetworkLayout) -> nn.Module:
    """The torch module of ``lay``: its family's stem and head around the blocks, each
    block built by its definition; residual branches with stochastic depth get the real
    module (train mode drops them, eval mode is the identity)."""
    from blockprof.blocks.nn import StochasticDepth
    from blockprof.blocks.registry import get
    from blockprof.networks import nn as nets

    stages = []
    for s in (s for s in lay.stages if s.blocks):
        modules = []
        for b in s.blocks:
            module = get(b.spec.block).module(b.spec)
            if b.drop_path:
                module.drop_path = StochasticDepth(b.drop_path)
            modules.append(module)
        stages.append(modules)
    features = [s for s in lay.stages if s.blocks][-1].out_channels
    config = dict(lay.config)
    if lay.family == "resnet":
        return nets.ResNet(stages, features)
    if lay.family == "regnet":
        return nets.RegNet(stages, features)
    if lay.family == "mobilenet_v2":
        return nets.MobileNetV2([m for blocks in stages for m in blocks], features)
    if lay.family == "mobilenet_v3":
        return nets.MobileNetV3([m for blocks in stages for m in blocks], features, **config)
    if lay.family == "efficientnet":
        return nets.EfficientNet(stages, features, **config)
    return nets.MNASNet(stages, features, **config)


@dataclass(frozen=True)
class TracedNetwork:
    """A network counted op by op by the tracer (the way a network of user blocks is counted)."""

    layout: NetworkLayout
    trace: Trace

    def stage_totals(self) -> list[dict[str, Any]]:
        """Each stage's totals (the fields of :meth:`Trace.totals`) from the ops that ran in its
        modules; every op with MACs runs in some stage's module, so the stages sum to the total."""
        infos = {m.name: m for m in self.trace.modules}
        rows = []
        for stage in self.layout.stages:
            row: dict[str, Any] = {
                "params": sum(infos[m].params for m in stage.modules),
                "params_conv": sum(infos[m].params_conv for m in stage.modules),
            }
            for part in (self.trace.subtree_totals(m) for m in stage.modules):
                for key, value in part.items():
                    row[key] = None if value is None else row.get(key, 0) + value
            rows.append(row)
        return rows


def traced_network(
    name: str | NetworkSpec, block: str | None = None, spatial: int | None = None, batch: int = 1
) -> TracedNetwork:
    """The network traced op by op on the meta device: any block, a user block included. Its input is
    data, so it needs no gradient: the stem's first conv has no input-gradient term."""
    lay = layout(network_spec(name, block, spatial, batch))
    return _trace_layout(lay, _meta_module(lay))


def _meta_module(lay: NetworkLayout) -> nn.Module:
    import torch

    with torch.device("meta"):
        return build_layout(lay)


def _trace_layout(lay: NetworkLayout, module: nn.Module) -> TracedNetwork:
    import torch

    from blockprof.counting.trace import trace

    def real() -> nn.Module:
        with torch.device("cpu"):
            return build_layout(lay)

    spec = lay.spec
    return TracedNetwork(lay, trace(module, spec.input_shape, name=spec.label, input_requires_grad=False, real=real))


def network_count(
    name: str | NetworkSpec,
    block: str | None = None,
    spatial: int | None = None,
    batch: int = 1,
    tools: Iterable[str] = TOOL_NAMES,
) -> dict[str, Any]:
    """One record for the network: totals, torchvision's published parameter count,
    each tool's count and agreement, and ``stages``, a list of per-stage rows.

    With a user block there is no closed form: the network is traced op by op
    (:func:`traced_network`, ``count_source`` 'trace'), and each tool is reconciled
    with the trace."""
    from blockprof.counting.record import count_module, tool_fields, traced_tool_fields

    spec = network_spec(name, block, spatial, batch)
    lay = layout(spec)
    module = _meta_module(lay)
    record: dict[str, Any] = {
        "network": spec.network,
        "block": lay.block,
        "swapped": lay.swapped,
        "spatial": spec.spatial,
        "batch": spec.batch,
    }
    if lay.analytic:
        analytic = analytic_network(spec)
        counts = count_module(module, spec.input_shape, tools, macs_hint=analytic.total.macs, input_requires_grad=False)
        published = {"published_params": analytic.published_params, "published_gflops": analytic.published_gflops}
        totals, stage_totals = analytic.total.totals(), [s.count.totals() for s in analytic.stages]
        tool_results = tool_fields(analytic.total, counts)
    else:
        traced = _trace_layout(lay, module)
        counts = count_module(module, spec.input_shape, tools, macs_hint=traced.trace.macs, input_requires_grad=False)
        published = {"published_params": None, "published_gflops": None}
        totals, stage_totals = traced.trace.totals(), traced.stage_totals()
        tool_results = traced_tool_fields(traced.trace, counts)
    record.update(count_source="analytic" if lay.analytic else "trace", **published)
    record["module_params"] = sum(p.numel() for p in module.parameters())
    record.update(totals)
    record.update(tool_results)
    torch_count = counts.get("torch")
    record["stages"] = stage_rows(
        lay, stage_totals, module, torch_count if isinstance(torch_count, ToolCount) else None
    )
    return record


def stage_rows(
    lay: NetworkLayout, stage_totals: list[dict[str, Any]], module: nn.Module, torch_count: ToolCount | None
) -> list[dict[str, Any]]:
    """Per stage: what it is, its output, its counts (closed form or traced), and the module's
    and torch's own counts of the same stage (the independent checks)."""
    module_params = dict.fromkeys((s.name for s in lay.stages), 0)
    for name, p in module.named_parameters():
        module_params[_owner(lay, name)] += p.numel()
    torch_macs: dict[str, float] | None = None
    if torch_count is not None:
        torch_macs = dict.fromkeys(module_params, 0.0)
        for name, macs in torch_count.by_layer.items():
            torch_macs[_owner(lay, name)] += macs
    rows = []
    for stage, totals in zip(lay.stages, stage_totals, strict=True):
        row: dict[str, Any] = {
            "stage": stage.name,
            "modules": _span(stage.modules),
            "layout": stage.description,
            "output": f"{stage.out_channels}×{stage.out_size}×{stage.out_size}",
            **totals,
            "module_params": module_params[stage.name],
            "torch_macs": None if torch_macs is None else _whole(torch_macs[stage.name]),
        }
        rows.append(row)
    return rows


def stage_frame(record: dict[str, Any]) -> pd.DataFrame:
    """The record's stages and a ``total`` row as a DataFrame (the table and CSV views)."""
    import pandas as pd

    df = pd.DataFrame.from_records(record["stages"])
    total = {c: record.get(c) for c in df.columns if c not in ("modules", "layout", "output")}
    total["stage"] = "total"
    total["torch_macs"] = None if record.get("torch_macs") is None else _whole(record["torch_macs"])
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


def _whole(n: float) -> int | float:
    return int(n) if float(n).is_integer() else n


def _owner(lay: NetworkLayout, module_name: str) -> str:
    stage = lay.stage_of(module_name)
    if stage is None:  # a bug in the layout's module lists, not bad input
        raise AssertionError(f"module {module_name!r} belongs to no stage of {lay.spec.network}'s layout")
    return stage


def _span(modules: tuple[str, ...]) -> str:
    """``('features.2', 'features.3')`` → ``'features.2–3'``."""
    if len(modules) > 1 and all(m.startswith("features.") and m[9:].isdigit() for m in modules):
        return f"features.{modules[0][9:]}–{modules[-1][9:]}"
    return ", ".join(modules)
