"""Plotly figures from a run's DataFrame (:func:`blockprof.runs.load_run`); nothing here writes files.

Each builder takes the run's rows (failed cells are left out) and returns a
``plotly.graph_objects.Figure``. One trace is one *series*: a block, plus every
axis that varies among that block's cells at one width (e.g. ``bottleneck ·
56² · b32`` when the run swept sizes and batches). The x axis is the width C.
Axis titles carry units; hovering a point shows the cell (block, width, input
size, batch, variant) and the value. A builder that needs timing columns raises
BlockprofError on a counts-only run.

* :func:`counts` — parameters and forward MACs against width (log-log);
* :func:`latency` — median forward and training-step time against width, error bars
  from the first to the third quartile of the samples (the IQR);
* :func:`throughput` — achieved GFLOP/s against width, under the calibrated compute peak;
* :func:`roofline` — arithmetic intensity against achieved GFLOP/s, under the calibrated
  compute and bandwidth ceilings;
* :func:`cost_latency` — a counted cost against median latency, with the Pareto front:
  the cells for which no other cell at the same input gives more of the cost
  metric (parameters, MACs) at no more latency.

Every figure's subtitle states the run's conditions (input size, batch, threads,
dtype, device); log axes are labelled with full values (20, 50, 2k); roofline
and Pareto points carry their width; a point timed under contention says so on hover.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from blockprof import schema
from blockprof.errors import BlockprofError
from blockprof.records import block_rows

if TYPE_CHECKING:
    import pandas as pd
    from plotly.graph_objects import Figure

#: axes that can tell two series of one block apart, in label order
SERIES_AXES = (*schema.VARIANT_NAMES, "spatial", "batch", "dtype", "device")
#: axes a parameter count does not depend on
INPUT_AXES = ("spatial", "batch", "dtype", "device")
WIDTH = "in_channels"
WIDTH_TITLE = "width C (channels, log scale)"
MODE_TITLES = {"fwd": "forward (eval, inference mode)", "train": "training step (forward + backward)"}
_SHORT = {"out_channels": "→{}", "spatial": "{}²", "batch": "b{}", "dtype": "{}", "device": "{}"}


def _short(axis: str, value: object) -> str:
    """An axis value as a legend shows it: the schema's mark (``s2``, ``t4``), ``28²``, ``b32``."""
    if axis in schema.BY_NAME and schema.BY_NAME[axis].mark:
        return schema.BY_NAME[axis].format(value)
    return _SHORT[axis].format(f"{value:g}" if isinstance(value, (int, float)) else value)


def _rows(df: pd.DataFrame, needs: tuple[str, ...], what: str) -> pd.DataFrame:
    """The run's successful rows that have every column ``what`` needs."""
    missing = [c for c in needs if c not in df.columns or df[c].isna().all()]
    if missing:
        timed = ("fwd_ms" in df.columns and df["fwd_ms"].notna().any()) or (
            "train_ms" in df.columns and df["train_ms"].notna().any()
        )
        if not timed and any(c not in ("params", "macs", "train_flops") for c in missing):
            raise BlockprofError(
                f"the {what} plot needs timings, and this run has none (it was swept without --time); sweep with --time"
            )
        raise BlockprofError(f"the {what} plot needs {', '.join(missing)}, which this run lacks")
    rows = df[df["status"] == "ok"] if "status" in df.columns else df
    rows = rows.dropna(subset=list(needs))
    if rows.empty:
        raise BlockprofError(f"the {what} plot has no successful cell with {', '.join(needs)} to show")
    return rows


def _series(rows: pd.DataFrame, ignore: tuple[str, ...] = ()) -> list[tuple[str, pd.DataFrame]]:
    """(name, rows sorted by width) per series, blocks in the order they first appear.
    A block's series are split by each axis that varies among its cells at one width
    (``ignore`` aside), and named by them: ``bottleneck · g3 · 28²``."""
    out = []
    for block, cells in rows.groupby("block", sort=False):
        within = cells.groupby(WIDTH, dropna=False)
        axes = [a for a in SERIES_AXES if a in cells.columns and a not in ignore and (within[a].nunique() > 1).any()]
        if not axes:
            out.append((str(block), cells.sort_values(WIDTH)))
            continue
        for key, part in cells.groupby(axes, sort=False, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            name = " · ".join([str(block), *(_short(a, v) for a, v in zip(axes, key, strict=False) if v == v)])
            out.append((name, part.sort_values(WIDTH)))
    return out


def _cell_text(rows: pd.DataFrame) -> list[str]:
    """One hover line per row: the cell that made the point, and why its times are
    not to be trusted when other work held the cores while it was timed."""
    from blockprof.records import describe

    return [
        describe(r) + (f"<br>busy: {r.get('contention')}" if r.get("contended") is True else "")
        for r in rows.to_dict(orient="records")
    ]


def _widths(rows: pd.DataFrame) -> list[str]:
    """Each point's width, the label written beside it."""
    return [f"{c:g}" for c in rows[WIDTH]]


def conditions(df: pd.DataFrame) -> str:
    """The run's conditions in one line, for every figure's subtitle: input size,
    batch, and for a timed run threads, dtype and device."""

    def values(column: str, fmt: str = "{}") -> str:
        if column not in df.columns:
            return ""
        seen = [v for v in dict.fromkeys(df[column].dropna()) if v == v]
        return ", ".join(fmt.format(int(v) if isinstance(v, float) and v.is_integer() else v) for v in seen)

    parts = [f"input {values('spatial', '{}²')}", f"batch {values('batch')}"]
    timed = ("fwd_ms" in df.columns and df["fwd_ms"].notna().any()) or (
        "train_ms" in df.columns and df["train_ms"].notna().any()
    )
    if timed:
        threads = values("threads")
        parts += [
            f"{threads} thread{'s' if threads != '1' else ''}" if threads else "",
            values("dtype"),
            values("device") + (f" ({values('device_name')})" if values("device_name") else ""),
        ]
        if "contended" in df.columns and (df["contended"] == True).any():  # noqa: E712
            parts.append(f"{int((df['contended'] == True).sum())} cells timed while other work held the cores (busy)")  # noqa: E712
    return " · ".join(p for p in parts if p)


def _log_ticks(values: Iterable[float]) -> tuple[list[float], list[str]] | None:
    """Ticks at 1, 2 and 5 of each decade the values span (only the powers of ten
    over more than three decades), labelled with their full value (20, 50, 2k)."""
    import math

    from blockprof.units import si

    positive = [float(v) for v in values if v is not None and v == v and v > 0]
    if not positive:
        return None
    low, high = min(positive), max(positive)
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    steps = (1,) if last - first > 3 else (1, 2, 5)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in steps if low / 1.5 <= m * 10.0**e <= high * 1.5]
    if len(ticks) < 2:
        ticks = [m * 10.0**e for e in range(first, last + 1) for m in (1, 2, 5) if low / 3 <= m * 10.0**e <= high * 3]
    return ticks, [si(round(t) if t >= 1 else t) for t in ticks]


def _label_log_axes(fig: Figure) -> None:
    """Every log axis without explicit ticks gets :func:`_log_ticks` over the data it shows."""
    data: dict[str, list[float]] = {}
    for trace in fig.data:
        for letter in ("x", "y"):
            name = (getattr(trace, f"{letter}axis", None) or letter).replace(letter, f"{letter}axis", 1)
            values = getattr(trace, letter, None)
            if values is not None:
                data.setdefault(name, []).extend(values)
    for name, values in data.items():
        axis = fig.layout[name]
        if axis.type == "log" and axis.tickvals is None and (ticks := _log_ticks(values)):
            axis.update(tickvals=ticks[0], ticktext=ticks[1])


def _color(series: str, seen: dict[str, str]) -> str:
    """One colour per series name within a figure, so a block keeps its colour across panels and modes."""
    from plotly.colors import qualitative

    palette = qualitative.Plotly
    return seen.setdefault(series, palette[len(seen) % len(palette)])


def _width_axis(fig: Figure, rows: pd.DataFrame) -> None:
    """A log width axis ticked at the swept widths."""
    widths = sorted(set(int(c) for c in rows[WIDTH]))
    fig.update_xaxes(type="log", title_text=WIDTH_TITLE, tickvals=widths, ticktext=[str(c) for c in widths])


def _panels(titles: list[str]) -> Figure:
    from plotly.subplots import make_subplots

    return make_subplots(rows=1, cols=len(titles), subplot_titles=titles, horizontal_spacing=0.1)


def _layout(fig: Figure, title: str, df: pd.DataFrame) -> Figure:
    """Title with the run's conditions as subtitle; log axes labelled with full values."""
    fig.update_layout(
        title=dict(text=title, subtitle=dict(text=conditions(df))),
        template="plotly_white",
        hovermode="closest",
        legend_title_text="series",
        height=540,
        margin=dict(t=110),
    )
    _label_log_axes(fig)
    return fig


def counts(df: pd.DataFrame) -> Figure:
    """Parameters (independent of input size) and forward MACs against width, log-log."""

    rows = _rows(df, ("params", "macs"), "parameters & MACs")
    fig = _panels(["parameters", "forward MACs"])
    colors: dict[str, str] = {}
    for col, (metric, ignore, unit) in enumerate((("params", INPUT_AXES, "parameters"), ("macs", (), "MACs")), 1):
        # parameters do not depend on the input: one line per block, one point per width
        _block_lines(fig, rows, metric, unit, col, colors, f"%{{text}}<br>{unit}: %{{y:,.0f}}<extra></extra>", ignore)
    _width_axis(fig, rows)
    fig.update_yaxes(type="log", title_text="parameters (scalars)", row=1, col=1)
    fig.update_yaxes(type="log", title_text="MACs (multiply-accumulates; 1 MAC = 2 FLOPs)", row=1, col=2)
    return _layout(fig, "Parameters and forward MACs against width", df)


def _modes(df: pd.DataFrame, what: str) -> list[str]:
    """The timed modes of the run (BlockprofError for a counts-only run)."""
    modes = [m for m in MODE_TITLES if f"{m}_ms" in df.columns and df[f"{m}_ms"].notna().any()]
    if not modes:
        _rows(df, ("fwd_ms",), what)
    return modes


def _quartile_bars(part: pd.DataFrame, mode: str) -> dict[str, Any]:
    """Error bars from the first to the third quartile of the samples around the median
    (asymmetric: a skewed spread shows as such); ±IQR/2 when the samples are absent."""
    import numpy as np

    samples = part.get(f"{mode}_samples_ms")
    if samples is not None and all(isinstance(s, (list, np.ndarray)) and len(s) for s in samples):
        q1 = np.array([np.quantile(s, 0.25) for s in samples])
        q3 = np.array([np.quantile(s, 0.75) for s in samples])
        median = part[f"{mode}_ms"].to_numpy(dtype=float)
        return dict(type="data", symmetric=False, array=q3 - median, arrayminus=median - q1)
    return dict(type="data", array=part[f"{mode}_iqr_ms"].to_numpy(dtype=float) / 2)


def _array(part: pd.DataFrame, columns: list[str]) -> Any:
    return part[columns].to_numpy()


def _block_lines(
    fig: Figure,
    rows: pd.DataFrame,
    y: str,
    group: str,
    col: int,
    colors: dict[str, str],
    hover: str,
    ignore: tuple[str, ...] = (),
    **per_part: Callable[[pd.DataFrame], Any],
) -> None:
    """One line per series (:func:`_series`) in panel ``col``: column ``y`` against width, legend-grouped
    by ``group``, a block's colour the same in every panel. With ``ignore`` (axes ``y`` does not depend
    on) a series keeps one point per width; ``per_part`` adds trace options computed from each series'
    rows (error bars, hover data)."""
    import plotly.graph_objects as go

    for name, part in _series(rows, ignore):
        part = part.drop_duplicates(WIDTH) if ignore else part
        fig.add_trace(
            go.Scatter(
                x=part[WIDTH],
                y=part[y],
                mode="lines+markers",
                name=f"{group} · {name}",
                legendgroup=group,
                line_color=_color(name, colors),
                text=_cell_text(part),
                hovertemplate=hover,
                **{option: make(part) for option, make in per_part.items()},
            ),
            row=1,
            col=col,
        )


def latency(df: pd.DataFrame) -> Figure:
    """Median time per call against width, one panel per timed mode, IQR error bars."""

    modes = _modes(df, "latency")
    fig = _panels([MODE_TITLES[m] for m in modes])
    colors: dict[str, str] = {}
    for col, mode in enumerate(modes, 1):
        rows = _rows(df, (f"{mode}_ms", f"{mode}_iqr_ms"), "latency")
        _block_lines(
            fig,
            rows,
            f"{mode}_ms",
            mode,
            col,
            colors,
            f"%{{text}}<br>{mode} median: %{{y:.4g}} ms, IQR %{{customdata[0]:.3g}} ms, %{{customdata[1]}} runs<extra></extra>",
            error_y=functools.partial(_quartile_bars, mode=mode),
            customdata=functools.partial(_array, columns=[f"{mode}_iqr_ms", f"{mode}_runs"]),
        )
        fig.update_yaxes(type="log", title_text="median time per call (ms); bars: quartiles", row=1, col=col)
    _width_axis(fig, df[df[f"{modes[0]}_ms"].notna()])
    return _layout(fig, "Latency against width (median; error bars: interquartile range of the samples)", df)


def throughput(df: pd.DataFrame) -> Figure:
    """Achieved GFLOP/s (analytic FLOPs over the median time) against width, with the calibrated compute peak."""
    import plotly.graph_objects as go

    modes = _modes(df, "throughput")
    fig = _panels([MODE_TITLES[m] for m in modes])
    colors: dict[str, str] = {}
    for col, mode in enumerate(modes, 1):
        rows = _rows(df, (f"{mode}_gflops_per_s",), "throughput")
        _block_lines(
            fig,
            rows,
            f"{mode}_gflops_per_s",
            mode,
            col,
            colors,
            f"%{{text}}<br>{mode}: %{{y:.3g}} GFLOP/s<extra></extra>",
        )
        if "peak_gflops_per_s" in rows.columns:
            for (device, dtype), peak in (
                rows.groupby(["device", "dtype"])["peak_gflops_per_s"].first().dropna().items()
            ):
                fig.add_trace(
                    go.Scatter(
                        x=[rows[WIDTH].min(), rows[WIDTH].max()],
                        y=[peak, peak],
                        mode="lines",
                        line=dict(dash="dash", color="black"),
                        name=f"{mode} · compute peak {device}/{dtype}",
                        legendgroup=mode,
                        hovertemplate=f"calibrated peak ({device}, {dtype}; the faster of a matmul and a 3×3 conv): %{{y:.3g}} GFLOP/s<extra></extra>",
                    ),
                    row=1,
                    col=col,
                )
        fig.update_yaxes(type="log", title_text="achieved GFLOP/s (analytic FLOPs / median time)", row=1, col=col)
    _width_axis(fig, df[df[f"{modes[0]}_gflops_per_s"].notna()])
    return _layout(fig, "Achieved throughput against width (conv + linear FLOPs per second)", df)


def roofline(df: pd.DataFrame) -> Figure:
    """Each timed cell at (arithmetic intensity, achieved GFLOP/s), under
    ``min(peak FLOP/s, intensity × peak bandwidth)`` from ``blockprof calibrate``."""
    import numpy as np
    import plotly.graph_objects as go

    from blockprof.counting.formulas import roofline_attainable

    modes = _modes(df, "roofline")
    fig = go.Figure()
    symbols = {"fwd": "circle", "train": "diamond"}
    colors: dict[str, str] = {}
    intensities = []
    for mode in modes:
        rows = _rows(
            df, (f"{mode}_intensity", f"{mode}_gflops_per_s", "peak_gflops_per_s", "peak_gbytes_per_s"), "roofline"
        )
        intensities += list(rows[f"{mode}_intensity"])
        for name, part in _series(rows):
            fig.add_trace(
                go.Scatter(
                    x=part[f"{mode}_intensity"],
                    y=part[f"{mode}_gflops_per_s"],
                    mode="markers+text",
                    name=f"{mode} · {name}",
                    marker=dict(symbol=symbols[mode], size=9, color=_color(name, colors)),
                    text=_widths(part),
                    textposition="top center",
                    hovertext=_cell_text(part),
                    customdata=part[[f"{mode}_roofline_fraction"]].to_numpy(),
                    hovertemplate=f"%{{hovertext}}<br>{mode}: %{{x:.3g}} FLOP/byte, %{{y:.3g}} GFLOP/s (%{{customdata[0]:.1%}} of the roofline)<extra></extra>",
                )
            )
    low, high = min(intensities) / 4, max(intensities) * 4
    for (device, dtype), peak in (
        df.dropna(subset=["peak_gflops_per_s"])
        .groupby(["device", "dtype"])[["peak_gflops_per_s", "peak_gbytes_per_s"]]
        .first()
        .iterrows()
    ):
        flops, bandwidth = peak["peak_gflops_per_s"] * 1e9, peak["peak_gbytes_per_s"] * 1e9
        xs = sorted({low, high, *([flops / bandwidth] if low < flops / bandwidth < high else [])})
        xs = list(np.geomspace(low, high, 64)) if len(xs) == 2 else xs
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[roofline_attainable(x, flops, bandwidth) / 1e9 for x in xs],
                mode="lines",
                line=dict(color="black"),
                name=f"roofline {device}/{dtype}: {flops / 1e9:.3g} GFLOP/s, {bandwidth / 1e9:.3g} GB/s",
                hovertemplate="%{x:.3g} FLOP/byte → at most %{y:.3g} GFLOP/s<extra>roofline</extra>",
            )
        )
    fig.update_xaxes(type="log", title_text="arithmetic intensity (FLOP per byte of minimum traffic, log scale)")
    fig.update_yaxes(type="log", title_text="achieved GFLOP/s (log scale)")
    return _layout(fig, "Roofline: achieved throughput under the calibrated compute and bandwidth ceilings", df)


def pareto_front(cost: list[float], latency: list[float]) -> list[int]:
    """Indices of the points no other point dominates (more ``cost`` at no more
    ``latency``), by increasing latency: the best buy of the cost metric per millisecond."""
    order = sorted(range(len(cost)), key=lambda i: (latency[i], -cost[i]))
    front, best = [], float("-inf")
    for i in order:
        if cost[i] > best:
            front.append(i)
            best = cost[i]
    return front


COST_TITLES = {"params": "parameters (scalars)", "macs": "forward MACs", "train_flops": "training FLOPs (fwd + bwd)"}


def cost_latency(df: pd.DataFrame, cost: str = "params", mode: str = "fwd") -> Figure:
    """``cost`` (params, macs or train_flops) against median ``mode`` latency, with the
    Pareto front of each input (size, batch, dtype, device): the cells that give the
    most of ``cost`` — capacity or work — for their latency."""
    import plotly.graph_objects as go

    if cost not in COST_TITLES:
        raise BlockprofError(f"cost must be one of {', '.join(COST_TITLES)}, got {cost!r}")
    if mode not in MODE_TITLES:
        raise BlockprofError(f"mode must be one of {', '.join(MODE_TITLES)}, got {mode!r}")
    rows = _rows(df, (f"{mode}_ms", cost), "cost-vs-latency")
    fig = go.Figure()
    for name, part in _series(rows):
        fig.add_trace(
            go.Scatter(
                x=part[f"{mode}_ms"],
                y=part[cost],
                mode="markers+text",
                name=name,
                marker=dict(size=9),
                text=_widths(part),
                textposition="top center",
                hovertext=_cell_text(part),
                hovertemplate=f"%{{hovertext}}<br>{mode} median %{{x:.4g}} ms, {cost} %{{y:,.0f}}<extra></extra>",
            )
        )
    inputs = [a for a in INPUT_AXES if a in rows.columns]
    for key, part in rows.groupby(inputs, sort=False):
        part = part.reset_index(drop=True)
        idx = pareto_front(list(part[cost].astype(float)), list(part[f"{mode}_ms"].astype(float)))
        front = part.iloc[idx]
        label = " ".join(_short(a, v) for a, v in zip(inputs, key if isinstance(key, tuple) else (key,), strict=False))
        fig.add_trace(
            go.Scatter(
                x=front[f"{mode}_ms"],
                y=front[cost],
                mode="lines",
                line=dict(dash="dot", color="black", shape="hv"),
                name=f"Pareto front · {label}",
                text=_cell_text(front),
                hovertemplate=f"%{{text}}<br>on the front: %{{x:.4g}} ms, {cost} %{{y:,.0f}}<extra></extra>",
            )
        )
    fig.update_xaxes(type="log", title_text=f"median {MODE_TITLES[mode]} time (ms, log scale)")
    fig.update_yaxes(type="log", title_text=f"{COST_TITLES[cost]} (log scale)")
    return _layout(
        fig,
        f"{COST_TITLES[cost].capitalize()} against {mode} latency, with the Pareto front (most {cost} per latency)",
        df,
    )


#: name → builder, in the order ``blockprof plot`` writes them
BUILDERS: dict[str, Callable[[pd.DataFrame], Figure]] = {
    "counts": counts,
    "latency": latency,
    "throughput": throughput,
    "roofline": roofline,
    "pareto": cost_latency,
}


def build_all(df: pd.DataFrame, names: tuple[str, ...] = tuple(BUILDERS)) -> tuple[dict[str, Figure], dict[str, str]]:
    """The figures that apply to this run, and for each one that does not, why."""
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        raise BlockprofError(f"unknown plot(s) {', '.join(unknown)}; choose from {', '.join(BUILDERS)}")
    figures, skipped = {}, {}
    blocks = block_rows(df)  # the plots compare blocks across widths: a whole model has none
    if blocks.empty and not df.empty:
        return {}, {"every plot": "the run holds model cells alone, and the plots compare blocks across widths"}
    for name in names:
        try:
            figures[name] = BUILDERS[name](blocks)
        except BlockprofError as e:
            skipped[name] = str(e)
    return figures, skipped
