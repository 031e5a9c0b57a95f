"""The Python API under the CLI: count, compare, explain. Returns records and DataFrames; never prints.

>>> import blockprof
>>> df = blockprof.compare(channels=256)           # one row per block
>>> rec = blockprof.count(blockprof.BlockSpec("bottleneck", 256))
>>> print(blockprof.explain("bottleneck", 256))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from blockprof import schema
from blockprof.blocks.registry import resolve
from blockprof.counting.analytic import analytic as analytic_count
from blockprof.counting.analytic import closed_form
from blockprof.counting.record import (
    build_meta,
    count_module,
    error_record,
    tool_fields,
    traced_block,
    traced_tool_fields,
)
from blockprof.counting.record import count_record as count
from blockprof.counting.tools import TOOL_NAMES
from blockprof.errors import BlockprofError
from blockprof.grid import DEFAULT_BLOCKS, Grid
from blockprof.records import block_rows, to_frame
from blockprof.spec import DEFAULT_MODEL_INPUT, BlockSpec, NetworkSpec
from blockprof.units import whole

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from blockprof.models import ModelCount

#: re-exported from below the API: counting one spec into a record is :mod:`blockprof.counting.record`'s job
__all__ = [
    "add_relative",
    "add_timings",
    "analytic_count",
    "build_meta",
    "compare",
    "count",
    "count_model",
    "count_module",
    "error_record",
    "explain",
    "explain_network",
    "pivot",
    "relative",
    "select",
    "tool_fields",
    "traced_block",
    "traced_tool_fields",
]


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

    from blockprof.records import to_records
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
    for i, row in zip(ok, to_records(timed), strict=False):
        for column in columns:
            out.at[i, column] = row[column]
        if row.get("error"):
            out.at[i, "status"], out.at[i, "error"] = "error", f"timing failed: {row['error']}"
    return out.infer_objects()


def add_relative(
    df: pd.DataFrame,
    reference: str,
    metrics: tuple[str, ...] = schema.COUNT_METRICS,
    keys: tuple[str, ...] = ("in_channels", "spatial", "batch"),
) -> pd.DataFrame:
    """Add ``<metric>_rel``: each row over the ``reference`` block's row with the same ``keys``
    (at equal budget the widths differ, so there the keys are size and batch only);
    NaN where the reference has no such row."""
    if reference not in set(df["block"]):
        raise BlockprofError(
            f"reference block {reference!r} is not among the compared blocks {sorted(set(df['block']))}"
        )
    columns = [k for k in keys if k in df.columns]
    ref = df[df["block"] == reference]
    if ref.duplicated(columns).any():
        varying = [c for c in schema.VARIANT_NAMES if c in ref and ref[c].nunique() > 1]
        raise BlockprofError(
            f"reference block {reference!r} has several rows per {', '.join(columns)} ({', '.join(varying) or 'duplicates'} vary); filter the rows first"
        )
    ref = ref.set_index(columns)
    out = df.copy()
    for metric in metrics:
        base = out.set_index(columns).index.map(ref[metric].to_dict())
        out[f"{metric}_rel"] = (out[metric].astype("float64") / base.astype("float64")).to_numpy()
    return out


#: a sweep's cells match the reference block's at the same point of every axis blocks share
SWEEP_KEYS = schema.POINT_KEYS


def relative(df: pd.DataFrame, reference: str, metrics: Iterable[str] | None = None) -> pd.DataFrame:
    """A sweep's rows with ``<metric>_rel`` = the row's metric over the ``reference``
    block's at the same width, stride, input size, batch, dtype and device (failed
    cells and missing references give NaN). ``metrics`` default to the counts, and
    the median times and GFLOP/s when the run was timed."""
    wanted = metrics or (
        "params",
        "macs",
        "train_flops",
        "fwd_ms",
        "train_ms",
        "fwd_gflops_per_s",
        "train_gflops_per_s",
    )
    present = tuple(m for m in wanted if m in df.columns)
    missing = [m for m in (metrics or ()) if m not in df.columns]
    if missing:
        raise BlockprofError(
            f"no column {', '.join(missing)} in this run; choose from {', '.join(map(str, df.columns))}"
        )
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


def pivot(
    df: pd.DataFrame, metric: str, index: str = "block", columns: str = "in_channels", **where: Any
) -> pd.DataFrame:
    """``metric`` as a table, ``index`` × ``columns`` (block × width by default), over
    the rows matching ``where`` (e.g. ``spatial=56, batch=1``). Every other axis
    must be fixed by then: a cell of the table is one row of ``df``, never an aggregate. Model cells
    (no block, no width) are left out."""
    for name in (metric, index, columns):
        if name not in df.columns:
            raise BlockprofError(f"no column {name!r} in this run; choose from {', '.join(map(str, df.columns))}")
    rows = block_rows(select(df, **where))
    if rows.duplicated([index, columns]).any():
        within = rows.groupby([index, columns], dropna=False)
        axes = [
            c
            for c in ("spatial", "batch", *schema.VARIANT_NAMES, "dtype", "device")
            if c in rows and c not in (index, columns) and (within[c].nunique() > 1).any()
        ]
        fix = ", ".join(f"{c}={whole(rows[c].dropna().iloc[0])}" for c in axes) or "the axis that repeats"
        raise BlockprofError(
            f"several rows per ({index}, {columns}): {', '.join(axes) or 'some axis'} vary; fix them, e.g. {fix}"
        )
    table = rows.pivot(index=index, columns=columns, values=metric)
    return table.reindex(index=list(dict.fromkeys(rows[index])), columns=sorted(set(rows[columns])))


def explain(block: str | BlockSpec, channels: int | None = None, **spec_fields: Any) -> str:
    """The derivation of a block's counts as text (``blockprof explain``)."""
    from blockprof.render.explain import explain_text, explain_traced_text

    spec = block if isinstance(block, BlockSpec) else BlockSpec(block, channels or 256, **spec_fields)
    definition, resolved, count = closed_form(spec)
    if count is None:
        return explain_traced_text(resolved, traced_block(definition, resolved))
    return explain_text(count)


def explain_network(
    name: str | NetworkSpec, block: str | None = None, spatial: int | None = None, batch: int = 1
) -> str:
    """The derivation of a network's params and MACs, stage by stage, as text (``blockprof network --explain``);
    with a user block, from the network's trace."""
    from blockprof.networks import analytic_network, layout, traced_network
    from blockprof.networks.count import network_spec
    from blockprof.render.explain import explain_network_text, explain_traced_network_text

    spec = network_spec(name, block, spatial, batch)
    if not layout(spec).analytic:
        return explain_traced_network_text(traced_network(spec))
    return explain_network_text(analytic_network(spec))


def count_model(model: str | nn.Module, input_shape: Iterable[int] = DEFAULT_MODEL_INPUT, **options: Any) -> ModelCount:
    """Any model, traced op by op (``blockprof model``): ``model`` is a ``package.module:callable``
    target or a module. ``.frame()`` is the per-module DataFrame, ``.record()`` the JSON view;
    ``options`` as :func:`blockprof.models.count_model` (``tools``, ``time``, ``timing``, ``train``)."""
    from blockprof.models import count_model as _count_model

    return _count_model(model, input_shape, **options)


def _tuple(value: int | Iterable[int]) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)
