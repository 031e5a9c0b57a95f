"""The Python API under the CLI: count, compare, explain. Returns records and DataFrames; never prints.

    >>> import blockprof
    >>> df = blockprof.compare(channels=256)           # one row per block
    >>> rec = blockprof.count(blockprof.BlockSpec("bottleneck", 256))
    >>> print(blockprof.explain("bottleneck", 256))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from blockprof import schema
from blockprof.blocks.registry import BlockDef, resolve
from blockprof.counting.analytic import AnalyticCount, count_layers
from blockprof.counting.reconcile import reconcile, reconcile_train
from blockprof.counting.tools import TOOL_NAMES, ToolCount, adapter
from blockprof.errors import BlockprofError
from blockprof.grid import DEFAULT_BLOCKS, Grid
from blockprof.records import to_frame
from blockprof.spec import BlockSpec
from blockprof.units import macs_to_flops

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from blockprof.counting.trace import Trace
    from blockprof.models import ModelCount


#: a training step: the forward and two backward terms (input and weight gradient), each the forward's MACs
PASSES_PER_TRAINING_STEP = 3


def build_meta(definition: BlockDef, spec: BlockSpec) -> nn.Module:
    """Build on the meta device: shapes without memory, so any width counts in seconds."""
    import torch

    with torch.device("meta"):
        return definition.module(spec)


def count_module(module: nn.Module, input_shape: tuple[int, ...], tools: Iterable[str] = TOOL_NAMES, macs_hint: float | None = None) -> dict[str, ToolCount | str]:
    """Each tool's count of ``module`` (left exactly as handed in: tools count a copy).

    A tool that cannot count it gives a one-line reason instead of a ToolCount.
    """
    results: dict[str, ToolCount | str] = {}
    for name in _ordered(tools):
        try:
            kwargs = {"macs_hint": macs_hint} if name == "fvcore" else {}
            results[name] = adapter(name).count(module, input_shape, **kwargs)
        except BlockprofError as e:
            results[name] = str(e)
        except Exception as e:  # a tool's own failure is a finding about the tool, recorded
            results[name] = f"{name} failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        if name == "torch" and isinstance(results[name], ToolCount) and macs_hint is None:
            macs_hint = results[name].macs
    return results


def _ordered(tools: Iterable[str]) -> list[str]:
    tools = list(tools)
    unknown = [t for t in tools if t not in TOOL_NAMES]
    if unknown:
        raise BlockprofError(f"unknown tool(s) {', '.join(unknown)}; choose from {', '.join(TOOL_NAMES)}")
    # torch first: its meta-device count sizes the forward that fvcore must really run
    return sorted(tools, key=lambda t: t != "torch")


def analytic_count(spec: BlockSpec) -> AnalyticCount:
    """The closed-form count (registered blocks only)."""
    definition, spec = resolve(spec)
    if not definition.analytic:
        raise BlockprofError(f"{spec.block} is a user block: it has no closed-form count; count() traces it")
    return count_layers(spec, definition.layers(spec), definition.inner_widths(spec))


def count(spec: BlockSpec, tools: Iterable[str] = TOOL_NAMES) -> dict[str, Any]:
    """One record: the analytic totals, the module's own parameter count, and each tool's
    count with its agreement (see :data:`blockprof.records.COUNT_FIELDS`)."""
    definition, spec = resolve(spec)
    module = build_meta(definition, spec)
    analytic = count_layers(spec, definition.layers(spec), definition.inner_widths(spec)) if definition.analytic else None
    record: dict[str, Any] = {k: v for k, v in spec.as_dict().items()}
    record["inner_width"] = definition.inner_widths(spec).get("inner")
    record["module_params"] = sum(p.numel() for p in module.parameters())
    tool_counts = count_module(module, spec.input_shape, tools, macs_hint=analytic.macs if analytic else None)
    if analytic is not None:
        record.update(count_source="analytic", **analytic.totals())
        record.update(tool_fields(analytic, tool_counts))
    else:
        traced = traced_block(definition, spec, module)
        record.update(count_source="trace", **traced.totals())
        record.update(traced_tool_fields(traced, tool_counts))
    record.update(status="ok", error=None)
    return record


def traced_block(definition: BlockDef, spec: BlockSpec, module: nn.Module | None = None) -> Trace:
    """A block with no closed form (a user block), counted op by op by the tracer. Its input
    comes from the layer before, so it needs a gradient: every product's input gradient counts."""
    import torch

    from blockprof.counting.trace import trace

    def real() -> nn.Module:
        with torch.device("cpu"):
            return definition.module(spec)

    return trace(module if module is not None else build_meta(definition, spec), spec.input_shape, name=spec.label,
                 input_requires_grad=True, real=real)


def traced_tool_fields(traced: Trace, tool_counts: dict[str, ToolCount | str]) -> dict[str, Any]:
    """:func:`tool_fields` for a block with no closed form: each tool reconciled with its trace."""
    from blockprof.counting.reconcile import reconcile_traced, reconcile_traced_train

    fields: dict[str, Any] = {}
    for name, result in tool_counts.items():
        if isinstance(result, str):
            fields.update({f"{name}_macs": None, f"{name}_agrees": None, f"{name}_note": result})
            continue
        verdict = reconcile_traced(traced, result)
        fields.update({f"{name}_macs": result.macs, f"{name}_agrees": verdict.agrees, f"{name}_note": verdict.note})
        if name == "torch":
            train = reconcile_traced_train(traced, result)
            fields.update(torch_train_flops=result.train_flops, torch_train_agrees=train.agrees, torch_train_note=train.note)
    return fields


def tool_fields(analytic: AnalyticCount | None, tool_counts: dict[str, ToolCount | str]) -> dict[str, Any]:
    """``<tool>_macs``, ``<tool>_agrees`` and ``<tool>_note`` (and torch's training-step
    fields) for a record: each tool's count reconciled with the analytic one."""
    fields: dict[str, Any] = {}
    for name, result in tool_counts.items():
        if isinstance(result, str):
            fields.update({f"{name}_macs": None, f"{name}_agrees": None, f"{name}_note": result})
            continue
        verdict = reconcile(analytic, result)
        fields.update({f"{name}_macs": result.macs, f"{name}_agrees": verdict.agrees, f"{name}_note": verdict.note})
        if name == "torch":
            train = reconcile_train(analytic, result)
            fields.update(torch_train_flops=result.train_flops, torch_train_agrees=train.agrees, torch_train_note=train.note)
    return fields


def totals_from_tools(params: int, macs: float | None) -> dict[str, Any]:
    """Totals of a module with no closed form (a user block, or a network of them):
    parameters from the module, MACs from torch's counter, and ``train_flops`` =
    3 × ``flops``, since each backward term of a conv or matmul costs its forward.
    torch's own backward count stays in ``torch_train_flops``: it overcounts
    grouped convs (see :mod:`blockprof.counting.reconcile`), which user blocks
    such as ConvNeXt's depthwise 7×7 have."""
    if macs is not None and float(macs).is_integer():
        macs = int(macs)
    return {
        "params": params,
        "params_conv": None,
        "macs": macs,
        "flops": None if macs is None else macs_to_flops(macs),
        "bwd_input_macs": macs,
        "bwd_weight_macs": macs,
        "train_flops": None if macs is None else PASSES_PER_TRAINING_STEP * macs_to_flops(macs),
    }


def error_record(spec: BlockSpec, error: str) -> dict[str, Any]:
    """The record of a cell that failed: its spec, ``status='error'`` and the one-line error."""
    return {**spec.as_dict(), "status": "error", "error": error}


def compare(
    blocks: Iterable[str] = DEFAULT_BLOCKS,
    channels: int | Iterable[int] = 256,
    spatial: int | Iterable[int] = 56,
    batch: int | Iterable[int] = 1,
    *,
    tools: Iterable[str] = TOOL_NAMES,
    reference: str | None = None,
    time: bool = False,
    timing: dict[str, Any] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """One row per block (× width × size × batch), with ``params_rel``/``macs_rel``: each
    block's cost over the reference block's (default: the first block) at the same cell.

    ``options`` are variant options (stride, expansion, groups, ...), each applied
    to the blocks that take it. Invalid combinations raise BlockprofError before
    any counting starts. With ``time``, each block is also timed (``timing``: the
    keyword arguments of :func:`blockprof.timing.harness.time_blocks`).
    """
    grid = Grid(tuple(blocks), _tuple(channels), _tuple(spatial), _tuple(batch), dict(options))
    specs = grid.specs()
    for spec in specs:  # fail fast, with the block named, before the slow part
        resolve(spec)
    df = to_frame([count(spec, tools) for spec in specs])
    metrics = schema.COUNT_METRICS
    if time:
        df = add_timings(df, **(timing or {}))
        metrics += schema.TIME_METRICS
    return add_relative(df, reference or grid.blocks[0], metrics)


def add_timings(df: pd.DataFrame, **timing: Any) -> pd.DataFrame:
    """Time every ok row's block (interleaved, fwd and train; options as
    :func:`blockprof.timing.harness.time_blocks`) and add the timing columns
    (:data:`blockprof.timing.records.TIMING_FIELDS`). A cell whose timing fails
    keeps its counts and gets ``status='error'`` with the reason."""
    import dataclasses

    import pandas as pd

    from blockprof.tables import to_records
    from blockprof.timing.records import timing_table

    fields = [f.name for f in dataclasses.fields(BlockSpec)]  # the record's spec columns
    records = to_records(df)
    ok = [i for i, r in enumerate(records) if r.get("status") == "ok"]
    if not ok:
        return df
    timed = timing_table([BlockSpec(**{k: records[i][k] for k in fields}) for i in ok], **timing)
    columns = [c for c in timed.columns if c not in fields and c != "error"]
    out = df.copy()
    for column in columns:
        out[column] = pd.Series([None] * len(out), dtype="object")
    for i, row in zip(ok, to_records(timed)):
        for column in columns:
            out.at[i, column] = row[column]
        if row.get("error"):
            out.at[i, "status"], out.at[i, "error"] = "error", f"timing failed: {row['error']}"
    return out.infer_objects()


def add_relative(
    df: pd.DataFrame, reference: str, metrics: tuple[str, ...] = schema.COUNT_METRICS,
    keys: tuple[str, ...] = ("in_channels", "spatial", "batch"),
) -> pd.DataFrame:
    """Add ``<metric>_rel``: each row over the ``reference`` block's row with the same ``keys``
    (at equal budget the widths differ, so there the keys are size and batch only);
    NaN where the reference has no such row."""
    if reference not in set(df["block"]):
        raise BlockprofError(f"reference block {reference!r} is not among the compared blocks {sorted(set(df['block']))}")
    keys = [k for k in keys if k in df.columns]
    ref = df[df["block"] == reference]
    if ref.duplicated(keys).any():
        varying = [c for c in schema.VARIANT_NAMES if c in ref and ref[c].nunique() > 1]
        raise BlockprofError(f"reference block {reference!r} has several rows per {', '.join(keys)} ({', '.join(varying) or 'duplicates'} vary); filter the rows first")
    ref = ref.set_index(keys)
    out = df.copy()
    for metric in metrics:
        base = out.set_index(keys).index.map(ref[metric].to_dict())
        out[f"{metric}_rel"] = (out[metric].astype("float64") / base.astype("float64")).to_numpy()
    return out


#: a sweep's cells match the reference block's at the same point of every axis blocks share
SWEEP_KEYS = schema.POINT_KEYS


def relative(df: pd.DataFrame, reference: str, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """A sweep's rows with ``<metric>_rel`` = the row's metric over the ``reference``
    block's at the same width, stride, input size, batch, dtype and device (failed
    cells and missing references give NaN). ``metrics`` default to the counts, and
    the median times and GFLOP/s when the run was timed."""
    wanted = metrics or ("params", "macs", "train_flops", "fwd_ms", "train_ms", "fwd_gflops_per_s", "train_gflops_per_s")
    present = tuple(m for m in wanted if m in df.columns)
    missing = [m for m in (metrics or ()) if m not in df.columns]
    if missing:
        raise BlockprofError(f"no column {', '.join(missing)} in this run; choose from {', '.join(map(str, df.columns))}")
    return add_relative(df, reference, present, SWEEP_KEYS)


def select(df: pd.DataFrame, **where: Any) -> pd.DataFrame:
    """The rows whose columns equal the given values; numbers compare as numbers, so
    ``groups="1"`` (from a command line) matches a column that holds 1.0."""
    import pandas as pd

    rows = df
    for column, value in where.items():
        if column not in df.columns:
            raise BlockprofError(f"no column {column!r} in this run; choose from {', '.join(map(str, df.columns))}")
        if pd.api.types.is_numeric_dtype(rows[column]) and not pd.api.types.is_bool_dtype(rows[column]):
            try:
                rows = rows[rows[column] == float(value)]
                continue
            except (TypeError, ValueError):
                raise BlockprofError(f"{column} holds numbers; {value!r} is not one") from None
        rows = rows[rows[column].astype(str) == str(value)]
    if rows.empty:
        raise BlockprofError(f"no rows match {', '.join(f'{k}={v}' for k, v in where.items())}")
    return rows


def _plain(value: Any) -> Any:
    """``1.0`` → ``1``: how a whole number looks on a command line."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def pivot(df: pd.DataFrame, metric: str, index: str = "block", columns: str = "in_channels", **where: Any) -> pd.DataFrame:
    """``metric`` as a table, ``index`` × ``columns`` (block × width by default), over
    the rows matching ``where`` (e.g. ``spatial=56, batch=1``). Every other axis
    must be fixed by then: a cell of the table is one row of ``df``, never an aggregate."""
    for name in (metric, index, columns):
        if name not in df.columns:
            raise BlockprofError(f"no column {name!r} in this run; choose from {', '.join(map(str, df.columns))}")
    rows = select(df, **where)
    if rows.duplicated([index, columns]).any():
        within = rows.groupby([index, columns], dropna=False)
        axes = [c for c in ("spatial", "batch", *schema.VARIANT_NAMES, "dtype", "device")
                if c in rows and c not in (index, columns) and (within[c].nunique() > 1).any()]
        fix = ", ".join(f"{c}={_plain(rows[c].dropna().iloc[0])}" for c in axes) or "the axis that repeats"
        raise BlockprofError(f"several rows per ({index}, {columns}): {', '.join(axes) or 'some axis'} vary; fix them, e.g. {fix}")
    table = rows.pivot(index=index, columns=columns, values=metric)
    return table.reindex(index=list(dict.fromkeys(rows[index])), columns=sorted(set(rows[columns])))


def explain(block: str | BlockSpec, channels: int | None = None, **spec_fields: Any) -> str:
    """The derivation of a block's counts as text (``blockprof explain``)."""
    from blockprof.explain import explain_text

    spec = block if isinstance(block, BlockSpec) else BlockSpec(block, channels or 256, **spec_fields)
    definition, spec = resolve(spec)
    if not definition.analytic:
        from blockprof.explain import explain_traced_text

        return explain_traced_text(spec, traced_block(definition, spec))
    return explain_text(analytic_count(spec))


def count_model(model: str | nn.Module, input_shape: Iterable[int] = (1, 3, 224, 224), **options: Any) -> ModelCount:
    """Any model, traced op by op (``blockprof model``): ``model`` is a ``package.module:callable``
    target or a module. ``.frame()`` is the per-module DataFrame, ``.record()`` the JSON view;
    ``options`` as :func:`blockprof.models.count_model` (``tools``, ``time``, ``timing``, ``train``)."""
    from blockprof.models import count_model as _count_model

    return _count_model(model, input_shape, **options)


def _tuple(value: int | Iterable[int]) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)
