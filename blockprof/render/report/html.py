"""The only writer of HTML in blockprof: one self-contained design-review report.

    >>> from blockprof.render.report import build_report, write_report
    >>> write_report("reports/widths.html", "runs/widths", title="Block widths")     # a sweep's run directory
    >>> html = build_report(blockprof.compare(channels=256), environment=env)       # records + environment

The page works offline: plotly.js is inlined once, figures carry fixed ids, no
font or script is fetched. Every string that comes from the data (block names,
labels, user block paths, titles, notes, errors) reaches the page through
Jinja2's autoescaping; plotly's own JSON encoder writes ``<`` as ``\\u003c``, so a
``</script>`` inside a block name cannot end a figure's script either. The output
is a pure function of its inputs but for one line, the generated-at timestamp
(:func:`resolve_timestamp`), so a report regenerated from the same run is the
same file byte for byte when the timestamp is fixed or left out.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blockprof import schema
from blockprof.errors import BlockprofError
from blockprof.records import plain
from blockprof.render.report import findings
from blockprof.render.report.findings import CHECKS, STEPS, Spread, given, percent
from blockprof.units import grouped, si

if TYPE_CHECKING:
    import pandas as pd

#: the default ``timestamp``: the time of generation (or $SOURCE_DATE_EPOCH when set)
NOW = "now"
#: plotly's config for every figure: no logo, no cloud link (both would be network-facing)
PLOT_CONFIG = {"displaylogo": False, "responsive": True}


# --- the page's building blocks (plain data; the template lays them out) ---


@dataclass(frozen=True)
class TableCell:
    """One table cell: the text shown, the raw value the sorter compares (a number or
    None), CSS classes, and a tooltip."""

    text: str
    sort: float | int | None = None
    cls: str = ""
    title: str = ""

    @property
    def sort_attr(self) -> str | None:
        if self.sort is None:
            return None
        return str(self.sort) if isinstance(self.sort, int) else repr(float(self.sort))


@dataclass(frozen=True)
class Column:
    name: str
    numeric: bool = False
    title: str = ""


@dataclass(frozen=True)
class Table:
    """A sortable table; ``footer`` rows (totals) stay below the sorted body."""

    id: str
    columns: list[Column]
    rows: list[list[TableCell]]
    footer: list[list[TableCell]] = field(default_factory=list)


@dataclass(frozen=True)
class Layers:
    """One block's per-layer breakdown (or why it has none)."""

    name: str
    point: str
    table: Table | None = None
    derivation: str = ""
    missing: str = ""


@dataclass(frozen=True)
class Figure:
    name: str
    html: str


@dataclass
class Page:
    title: str
    source: str
    timestamp: str | None
    summary: list[str]
    environment: list[tuple[str, list[tuple[str, str]]]]
    warnings: list[str]
    counts: Table
    disagreements: list[str]
    layers: list[Layers]
    layers_point: str
    modules: list[Layers]
    timing: Table | None
    timing_missing: str
    noisy_ratio: float
    figures: list[Figure]
    skipped_figures: list[tuple[str, str]]
    plotly_js: str
    methodology: dict[str, Any] = field(default_factory=dict)


# --- cells ---


_plain = plain  # the cells' values as Python values (one definition, in the table renderer)


def number(value: Any, fmt: Callable[[Any], str] = grouped, cls: str = "", title: str = "") -> TableCell:
    value = _plain(value)
    if value is None:
        return TableCell("–", None, cls, title)
    return TableCell(fmt(value), value, cls, title)


def text(value: Any, title: str = "", cls: str = "") -> TableCell:
    value = _plain(value)
    return TableCell("–" if value is None else str(value), None, cls, title)


def _g(digits: int) -> Callable[[float], str]:
    return lambda v: f"{v:.{digits}g}"


def _mark(verdict: Any) -> str:
    verdict = _plain(verdict)
    return "–" if verdict is None else ("✓" if verdict else "✗")


# --- matching rows to the reference block's row at the same point ---


def _point(record: Mapping[str, Any], keys: Sequence[str]) -> tuple[str, ...]:
    return tuple(repr(_plain(record.get(k))) for k in keys)


def reference_rows(
    records: list[dict[str, Any]], reference: str | None, keys: Sequence[str]
) -> list[dict[str, Any] | None]:
    """For each record, the reference block's successful record at the same point, when it has exactly one."""
    if reference is None:
        return [None] * len(records)
    found: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in records:
        if r.get("block") == reference and not findings.is_model(r) and r.get("status", "ok") == "ok":
            found.setdefault(_point(r, keys), []).append(r)
    return [
        None if findings.is_model(r) else found[p][0] if len(found.get(p := _point(r, keys), [])) == 1 else None
        for r in records
    ]


def _ratio(value: Any, base: Any) -> float | None:
    value, base = _plain(value), _plain(base)
    return None if value is None or not base else value / base


# --- the sections ---


def cell_columns(record: Mapping[str, Any]) -> list[TableCell]:
    """#, block, width, input and variant: what tells a cell apart, shared by both tables. A model
    cell has no width or variant: its target and input shape."""
    from blockprof.records import describe

    if findings.is_model(record):
        shape = record.get("input_shape") or ()
        return [
            text(f"model {record['model']}", title=describe(record), cls="name"),
            TableCell("–"),
            TableCell("×".join(f"{d:g}" for d in shape), _plain(shape[-1]) if shape else None),
            text("whole model"),
        ]
    width = (
        f"{record['in_channels']:g}"
        if record.get("out_channels") in (None, record["in_channels"])
        else f"{record['in_channels']:g}→{record['out_channels']:g}"
    )
    shape = (
        f"{record['batch']:g}×{record['in_channels']:g}×{record['spatial']:g}²"
        if given(record.get("spatial")) and given(record.get("batch"))
        else "–"
    )
    stride = f"s{record['stride']:g}" if given(record.get("stride")) and record["stride"] != 1 else ""
    variant = " ".join(p for p in (stride, findings.variant_text(record)) if p)
    return [
        text(record["block"], title=describe(record), cls="name"),
        TableCell(width, _plain(record["in_channels"])),
        TableCell(shape, _plain(record["spatial"]) if given(record.get("spatial")) else None),
        text(variant or "–"),
    ]


CELL_HEADERS = [
    Column("#", True, "the cell's position in the records"),
    Column("block", False, "block name, or a user block's package.module:callable; or a whole model's"),
    Column("C", True, "input width C_in (→ C_out when they differ)"),
    Column("input", True, "input batch × C × H × W"),
    Column(
        "variant",
        False,
        ", ".join(f"{f.mark.format('')} = {f.name.replace('_', ' ')}" for f in schema.VARIANT_FIELDS if f.mark)
        + " (each when it differs from the block's default)",
    ),
]


def counts_section(
    records: list[dict[str, Any]], refs: list[dict[str, Any] | None], reference: str | None
) -> tuple[Table, list[str]]:
    """The counts table (one row per record, failed cells included) and one line per tool disagreement."""
    checks = [c for c in CHECKS if any(c in r for r in records)]
    columns = [
        *CELL_HEADERS,
        Column("inner", True, "width inside the block (bottleneck inner, inverted-residual hidden)"),
        Column("params", True, "trainable parameters (scalars), BatchNorm's γ and β included"),
        Column("=module", False, "params equals sum(p.numel() for p in module.parameters())"),
        Column("conv weights", True, "conv weights only (no bias, no BN)"),
        Column("MACs", True, "forward multiply-accumulates of conv and linear layers (1 MAC = 2 FLOPs)"),
        Column("FLOPs", True, "forward FLOPs = 2 × MACs"),
        Column("train FLOPs", True, "forward + input-gradient + weight-gradient FLOPs (conv and linear)"),
    ]
    if reference is not None:
        columns += [
            Column(f"params % {reference}", True, f"params as a share of {reference}'s at the same point"),
            Column(f"MACs % {reference}", True, f"MACs as a share of {reference}'s at the same point"),
        ]
    columns += [
        Column(
            f"{tool} {'bwd' if what != 'forward' else 'fwd'}",
            True,
            f"{tool}'s {what} count (MACs; training step: FLOPs) and ✓ when it equals the analytic count under {tool}'s convention",
        )
        for tool, what in (CHECKS[c] for c in checks)
    ]
    columns.append(Column("status", False, "ok, or the cell's one-line error"))
    rows, disagreements = [], []
    for i, (r, ref) in enumerate(zip(records, refs, strict=False), 1):
        ok = r.get("status", "ok") == "ok"
        row = [TableCell(str(i), i), *cell_columns(r)]
        if not ok:
            row += [TableCell("–") for _ in columns[len(row) : -1]]
            row.append(text(f"error: {r.get('error')}", cls="error"))
            rows.append(row)
            continue
        same = _plain(r.get("module_params")) == _plain(r.get("params"))
        row += [
            number(r.get("inner_width")),
            number(r.get("params")),
            TableCell(
                "–" if not given(r.get("module_params")) else ("✓" if same else "✗"),
                None,
                "" if same else "bad",
                f"module.parameters(): {grouped(_plain(r.get('module_params')))}",
            ),
            number(r.get("params_conv")),
            number(r.get("macs"), si, title=grouped(_plain(r.get("macs")))),
            number(r.get("flops"), si, title=grouped(_plain(r.get("flops")))),
            number(r.get("train_flops"), si, title=grouped(_plain(r.get("train_flops")))),
        ]
        if reference is not None:
            row += [number(_ratio(r.get(m), ref.get(m)) if ref else None, percent) for m in ("params", "macs")]
        for check in checks:
            tool, what = CHECKS[check]
            value = r.get("torch_train_flops" if check == "torch_train_agrees" else f"{tool}_macs")
            note = _plain(r.get(check.replace("_agrees", "_note"))) or ""
            verdict = _plain(r.get(check))
            mark = _mark(verdict)
            shown = f"{mark} {si(_plain(value))}" if given(value) else mark
            row.append(TableCell(shown, _plain(value), "" if verdict else "bad", note))
            if verdict is not True and note:
                where = findings.model_text(r) if findings.is_model(r) else f"{r['block']} at {findings.point_text(r)}"
                disagreements.append(f"{where}, {tool} ({what}): {note}")
        row.append(text("ok"))
        rows.append(row)
    return Table("counts-table", columns, rows), disagreements


def timing_section(
    records: list[dict[str, Any]], refs: list[dict[str, Any] | None], reference: str | None, noisy_ratio: float
) -> Table | None:
    """One row per timed record: each step's median, IQR (absolute and over the median), runs, noise flag."""
    modes = [m for m in STEPS if any(given(r.get(f"{m}_ms")) for r in records)]
    if not modes:
        return None
    columns = list(CELL_HEADERS)
    for mode in modes:
        columns += [
            Column(
                f"{mode} ms",
                True,
                f"median time of one {STEPS[mode]} (milliseconds); ⚠ = noisy; busy = taken while other work held the cores",
            ),
            Column(
                f"{mode} IQR",
                True,
                f"interquartile range of the samples in milliseconds, and over the median (sorts by the latter); "
                f"above {noisy_ratio:.0%} the cell is flagged noisy",
            ),
            Column(f"{mode} runs", True, "samples behind the median"),
        ]
        if reference is not None:
            columns.append(
                Column(
                    f"{mode} ÷ {reference}",
                    True,
                    f"median over {reference}'s median at the same point, timed side by side (below 1: faster)",
                )
            )
        columns.append(Column(f"{mode} GFLOP/s", True, "analytic FLOPs (conv + linear) over the median time"))
    contention = any(given(r.get("cpu_wall_ratio")) for r in records)
    if contention:
        columns.append(
            Column(
                "CPU % wall",
                True,
                "share of the timed wall time the timed code was on the CPU; below 90% other work held the "
                "cores and the row is flagged busy (its times are not ranked)",
            )
        )
    if any(given(r.get("roofline_fraction")) for r in records):
        columns.append(Column("fwd % roofline", True, "forward GFLOP/s over min(peak GFLOP/s, intensity × peak GB/s)"))
    rows = []
    for i, (r, ref) in enumerate(zip(records, refs, strict=False), 1):
        if not any(given(r.get(f"{m}_ms")) for m in modes):
            continue
        row = [TableCell(str(i), i), *cell_columns(r)]
        for mode in modes:
            spread = Spread.of(r, mode)
            iqr, median = _plain(r.get(f"{mode}_iqr_ms")), _plain(r.get(f"{mode}_ms"))
            rel = iqr / median if iqr is not None and median else None
            if spread is None:
                row += [TableCell("–"), TableCell("–"), TableCell("–")]
            else:
                flag, busy = spread.noisy, r.get("contended") is True
                note = (
                    f"IQR is {rel:.0%} of the median (over {noisy_ratio:.0%}): noisy, do not trust the median alone"
                    if flag and rel is not None
                    else ""
                )
                if busy:
                    note = "; ".join(filter(None, (note, f"contended: {r.get('contention')}")))
                row += [
                    TableCell(
                        f"{median:.3g}{' ⚠' if flag else ''}{' busy' if busy else ''}",
                        median,
                        "noisy" if flag or busy else "",
                        note,
                    ),
                    TableCell("–")
                    if iqr is None or rel is None
                    else TableCell(f"{iqr:.2g} · {100 * rel:.0f}%", rel, "noisy" if flag else ""),
                    number(r.get(f"{mode}_runs"), lambda v: f"{v:g}"),
                ]
            if reference is not None:
                base = Spread.of(ref, mode) if ref else None
                title = (
                    ""
                    if base is None or spread is None
                    else "quartile range of the speed-up {1:.2g}–{2:.2g}×".format(*findings.speedup(base, spread))
                )
                row.append(
                    number(_ratio(median, ref.get(f"{mode}_ms")) if ref else None, lambda v: f"{v:.2f}", title=title)
                )
            row.append(number(r.get(f"{mode}_gflops_per_s"), _g(3)))
        if contention:
            row.append(number(r.get("cpu_wall_ratio"), percent, cls="noisy" if r.get("contended") is True else ""))
        if columns[-1].name == "fwd % roofline":
            row.append(number(r.get("roofline_fraction"), percent))
        rows.append(row)
    return Table("timing-table", columns, rows)


def record_spec(record: Mapping[str, Any]) -> Any:
    """The BlockSpec a record was counted from (missing fields take BlockSpec's defaults;
    the schema turns a column's 4.0 back into the int 4)."""
    from blockprof.spec import BlockSpec

    fields = {f.name: _plain(record.get(f.name)) for f in schema.FIELDS}
    return BlockSpec(**{k: v for k, v in fields.items() if v is not None})


def layer_sections(
    records: list[dict[str, Any]], reference: str | None, axes: Sequence[str]
) -> tuple[list[Layers], str]:
    """A per-layer table and the ``explain`` derivation for each block variant, at the
    headline point where the variant has a cell there, else at its widest cell."""
    import pandas as pd

    from blockprof.counting.analytic import analytic as analytic_count
    from blockprof.render.explain import explain_text

    ok = [r for r in records if r.get("status", "ok") == "ok" and not findings.is_model(r)]
    if not ok:
        return [], ""
    df = pd.DataFrame.from_records(ok)
    point = findings.headline_point(df, reference, axes) if reference else None
    anchor = (
        point.iloc[0].to_dict()
        if point is not None
        else max(ok, key=lambda r: (r["in_channels"], r.get("spatial") or 0))
    )
    chosen: dict[tuple[str, ...], tuple[tuple[Any, ...], dict[str, Any]]] = {}
    for r in ok:
        key = (
            str(r["block"]),
            repr(_plain(r.get("stride"))),
            repr(_plain(r.get("out_channels") == r["in_channels"])),
            findings.variant_text(r),
        )
        rank = (
            *tuple(_plain(r.get(k)) == _plain(anchor.get(k)) for k in ("in_channels", "spatial", "batch")),
            r["in_channels"],
            r.get("spatial") or 0,
        )
        if key not in chosen or rank > chosen[key][0]:
            chosen[key] = (rank, r)
    sections = []
    for _, r in chosen.values():
        name = f"{r['block']} {findings.variant_text(r)}".strip()
        where = findings.point_text(r)
        try:
            count = analytic_count(record_spec(r))
        except BlockprofError as e:
            sections.append(Layers(name, where, missing=str(e)))
            continue
        sections.append(
            Layers(name, where, layer_table(count, f"layers-table-{len(sections) + 1}"), explain_text(count))
        )
    return sections, findings.point_text(anchor)


def module_sections(records: list[dict[str, Any]]) -> list[Layers]:
    """Each model cell's module tree (its record's ``modules``, to depth 2): what a block's per-layer
    formulas are to a block, for a model whose layers are too many to list."""
    sections = []
    for r in records:
        if not findings.is_model(r) or r.get("status", "ok") != "ok":
            continue
        name, shape = f"model {r['model']}", "×".join(f"{d:g}" for d in r.get("input_shape") or ())
        rows = r.get("modules")
        if not isinstance(rows, list) or not rows:
            sections.append(Layers(name, f"input {shape}", missing="the record holds no module tree"))
            continue
        sections.append(Layers(name, f"input {shape}", module_table(rows, f"modules-table-{len(sections) + 1}")))
    return sections


def module_table(rows: list[dict[str, Any]], table_id: str) -> Table:
    """One row per module, indented by depth, with its subtree's counts and share of the model's MACs."""
    columns = [
        Column("module", False, "the module's name in the model (indented by depth; the first row is the whole model)"),
        Column("type"),
        Column("params", True, "parameters of the module and everything inside it"),
        Column("MACs", True, "forward multiply-accumulates inside the module (conv, linear, matmul), traced"),
        Column("% MACs", True, "share of the model's MACs"),
        Column("FLOPs", True, "forward FLOPs = 2 × MACs"),
        Column("train FLOPs", True, "forward + the backward autograd runs (input and weight gradients)"),
    ]
    total = _plain(rows[0].get("macs"))
    body = [
        [
            text(("\u2003" * int(m.get("depth") or 0)) + (m.get("name") or "(model)"), cls="name"),
            text(m.get("type")),
            number(m.get("params")),
            number(m.get("macs"), si, title=grouped(_plain(m.get("macs")))),
            number(_ratio(m.get("macs"), total), percent),
            number(m.get("flops"), si, title=grouped(_plain(m.get("flops")))),
            number(m.get("train_flops"), si, title=grouped(_plain(m.get("train_flops")))),
        ]
        for m in rows
    ]
    return Table(table_id, columns, body)


def layer_table(count: Any, table_id: str) -> Table:
    columns = [
        Column("layer"),
        Column("op"),
        Column("C_in→C_out", True),
        Column("kernel", True),
        Column("stride", True),
        Column("groups", True),
        Column("out H=W", True),
        Column("params", True),
        Column("params formula"),
        Column("MACs", True),
        Column("MACs formula"),
        Column("elements", True, "values an elementwise op writes (not in the MACs)"),
    ]
    rows = []
    for layer in count.layer_table():
        rows.append(
            [
                text(layer["layer"]),
                text(layer["op"]),
                TableCell(f"{layer['in_channels']}→{layer['out_channels']}", layer["in_channels"]),
                number(layer["kernel"], str),
                number(layer["stride"], str),
                number(layer["groups"], str),
                number(layer["out_size"], str),
                number(layer["params"]),
                text(layer["params_formula"] or "–", cls="formula"),
                number(layer["macs"]),
                text(layer["macs_formula"] or "–", cls="formula"),
                number(layer["elements"]),
            ]
        )
    total = [
        TableCell("total"),
        *(TableCell("") for _ in range(6)),
        number(count.params),
        TableCell(""),
        number(count.macs),
        TableCell(""),
        TableCell(""),
    ]
    return Table(table_id, columns, rows, [total])


ENV_LABELS = {
    "blockprof_version": "blockprof",
    "torch_version": "torch",
    "fvcore_version": "fvcore",
    "thop_version": "thop",
    "python_version": "Python",
    "platform": "platform",
    "host": "host (hash of its name)",
    "cpu_model": "CPU",
    "cpu_count": "logical CPUs available",
    "threads": "torch threads",
    "device_names": "devices",
    "cuda_version": "CUDA",
    "cudnn_version": "cuDNN",
}


def _value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_value(v)}" for k, v in value.items()) or "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(v) for v in value) or "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def environment_section(meta: Mapping[str, Any]) -> tuple[list[tuple[str, list[tuple[str, str]]]], list[str]]:
    """(heading, [(key, value)]) groups from a run's meta.json, and the warnings it carries."""
    groups = []
    env = meta.get("environment") or {}
    groups.append(("Machine and versions", [(ENV_LABELS.get(k, k), _value(v)) for k, v in env.items()]))
    run = [(k, _value(meta[k])) for k in ("path", "created", "cells") if k in meta]
    if meta.get("shard"):
        run.append(("shard", f"{meta['shard']['index']} of {meta['shard']['count']}"))
    for part in meta.get("merged_from") or []:
        run.append(("merged from", f"{part.get('path')} ({part.get('cells')} cells, created {part.get('created')})"))
    if run:
        groups.append(("Run", run))
    if meta.get("grid"):
        grid = dict(meta["grid"])
        if not grid.get("blocks"):  # models alone: the block axes set nothing
            grid = {k: v for k, v in grid.items() if k not in ("blocks", "channels", "spatial", "batch", "options")}
        if grid.get("models"):
            grid["models"] = [f"{m['model']} @ {'×'.join(map(str, m['input_shape']))}" for m in grid["models"]]
        groups.append(("Grid", [(k, _value(v)) for k, v in grid.items()]))
    if meta.get("settings"):
        groups.append(("Settings", [(k.replace("_", " "), _value(v)) for k, v in meta["settings"].items()]))
    for key, peaks in (meta.get("peaks") or {}).items():
        groups.append(
            (
                f"Calibrated peaks, {key}",
                [
                    (
                        "compute",
                        f"{peaks['flops_per_s'] / 1e9:.4g} GFLOP/s ({peaks.get('flops_kernel') or str(peaks['matmul_n']) + '² matmul'}; "
                        f"median of {peaks['flops_runs']}, IQR {percent(peaks['flops_rel_iqr'])} of it)",
                    ),
                    (
                        "bandwidth",
                        f"{peaks['bytes_per_s'] / 1e9:.4g} GB/s ({peaks['copy_bytes'] / 2**20:g} MiB copy, read + write; "
                        f"median of {peaks['bytes_runs']}, IQR {percent(peaks['bytes_rel_iqr'])} of it)",
                    ),
                    (
                        "measured",
                        f"{peaks.get('measured_at')} on {peaks.get('device_name')}, "
                        f"{peaks.get('threads')} thread{'' if peaks.get('threads') == 1 else 's'}, "
                        f"torch {peaks.get('torch_version')}",
                    ),
                ],
            )
        )
    warnings = [f"merged across differences: {m}" for m in meta.get("mixed") or []]
    return groups, warnings


def methodology(meta: Mapping[str, Any], tools: Sequence[str], timed: bool) -> dict[str, Any]:
    """The numbers and convention strings the methodology section states."""
    from blockprof.counting.tools import TOOL_NAMES, adapter
    from blockprof.render.plots import MODE_TITLES
    from blockprof.timing.measurement import MIN_RUNS
    from blockprof.units import FLOPS_PER_MAC

    settings = dict(meta.get("settings") or {})
    return {
        "flops_per_mac": FLOPS_PER_MAC,
        "tools": [(t, adapter(t).CONVENTION) for t in TOOL_NAMES if t in tools],
        "timed": timed,
        "modes": [(m, MODE_TITLES[m]) for m in settings.get("modes", STEPS) if m in MODE_TITLES],
        "threads": settings.get("threads"),
        "min_run_time": settings.get("min_run_time"),
        "rounds": settings.get("rounds"),
        "min_runs": settings.get("min_runs", MIN_RUNS),
        "peaks": bool(meta.get("peaks")),
    }


def embed(figures: Mapping[str, Any]) -> list[Figure]:
    """Each plotly figure as HTML with a fixed div id (so the file is reproducible) and no
    plotly.js of its own. Each keeps its template's layout (the look) but not the
    template's per-trace-type defaults, ~5 kB a figure that scatter plots never read."""
    import plotly.graph_objects as go
    import plotly.io as pio

    out = []
    for name, fig in figures.items():
        fig = go.Figure(fig)
        fig.layout.template = go.layout.Template(layout=fig.layout.template.layout)
        out.append(
            Figure(
                name,
                pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=f"plot-{name}", config=PLOT_CONFIG),
            )
        )
    return out


def figures_section(df: pd.DataFrame) -> tuple[list[Figure], list[tuple[str, str]]]:
    """The sweep's plots that apply to these records, and why each other one does not."""
    from blockprof.render.plots import build_all

    figures, skipped = build_all(df)
    return embed(figures), list(skipped.items())


def plotly_js() -> str:
    """plotly.js, to inline once; checked to hold nothing that would end its <script> early."""
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    if "</script" in js.lower():
        raise BlockprofError(
            "this plotly.js bundle contains '</script' and cannot be inlined safely; install another plotly version"
        )
    return js


# --- the whole page ---


def resolve_timestamp(timestamp: str | datetime | None = NOW) -> str | None:
    """The one line that differs between two builds of a report: ``NOW`` gives the
    current UTC time, or $SOURCE_DATE_EPOCH's when that is set (reproducible builds);
    ``None`` leaves the line out; a datetime or any other string is shown as given."""
    if timestamp is None:
        return None
    if isinstance(timestamp, datetime):
        return timestamp.astimezone(UTC).isoformat(timespec="seconds")
    if timestamp != NOW:
        return timestamp
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), UTC).isoformat(timespec="seconds")
        except ValueError:
            raise BlockprofError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {epoch!r}") from None
    return datetime.now(UTC).isoformat(timespec="seconds")


def _load(
    source: str | Path | pd.DataFrame, environment: Mapping[str, Any] | None, meta: Mapping[str, Any] | None
) -> tuple[pd.DataFrame, dict[str, Any], str]:
    """(records, meta, source description) from a run directory or a DataFrame."""
    import pandas as pd

    if isinstance(source, pd.DataFrame):
        merged = dict(meta or {})
        if environment is not None:
            merged["environment"] = dict(environment)
        if "environment" not in merged:
            raise BlockprofError(
                "a report from a DataFrame needs environment=... (e.g. blockprof.runs.run_environment()): where were these numbers taken?"
            )
        return source, merged, str(merged.get("source", "records"))
    from blockprof.runs import Run

    run = Run.open(source)
    return run.frame(), {**run.meta, "path": str(source)}, f"run directory {source}"


def build_report(
    source: str | Path | pd.DataFrame,
    title: str | None = None,
    *,
    reference: str | None = None,
    environment: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    timestamp: str | datetime | None = NOW,
    notes: Sequence[str] = (),
    compare_on: Sequence[str] = findings.POINT_KEYS,
) -> str:
    """The report as one HTML document.

    ``source`` is a run directory (``blockprof sweep -o DIR``) or a DataFrame of
    records (``blockprof.compare``, ``load_run``); a DataFrame needs the
    ``environment`` it was taken in, and may bring a run-like ``meta`` (settings,
    grid, peaks). ``reference`` is the block the others are measured against
    (default: the first block), at the same point of every ``compare_on`` axis
    (an equal-budget comparison, whose blocks each have a width of their own,
    passes ``("spatial", "batch")``). ``notes`` are shown under the title.
    """
    from blockprof.timing.measurement import NOISY_IQR_RATIO

    df, meta, described = _load(source, environment, meta)
    if df.empty:
        raise BlockprofError(f"{described} holds no records; sweep some cells first")
    reference = findings.choose_reference(df, reference)
    records = [
        {k: _plain(v) if not isinstance(v, (list, tuple)) else v for k, v in r.items()}
        for r in df.to_dict(orient="records")
    ]
    keys = findings.point_keys(df, compare_on)
    refs = reference_rows(records, reference, keys)
    counts, disagreements = counts_section(records, refs, reference)
    timing = timing_section(records, refs, reference, NOISY_IQR_RATIO)
    layers, layers_point = layer_sections(records, reference, compare_on)
    groups, warnings = environment_section(meta)
    figures, skipped = figures_section(df)
    tools = (meta.get("settings") or {}).get("tools") or [
        t for t in ("fvcore", "thop", "torch") if f"{t}_agrees" in df.columns
    ]
    page = Page(
        title=title or f"blockprof report: {described}",
        source=described,
        timestamp=resolve_timestamp(timestamp),
        summary=findings.summary(df, reference, NOISY_IQR_RATIO, compare_on),
        environment=groups,
        warnings=[*map(str, df.attrs.get("notes", [])), *warnings, *map(str, notes)],
        counts=counts,
        disagreements=disagreements,
        layers=layers,
        layers_point=layers_point,
        modules=module_sections(records),
        timing=timing,
        timing_missing=""
        if timing
        else "These records were not timed: run 'blockprof sweep --time -o DIR' and 'blockprof report DIR' for timings.",
        noisy_ratio=NOISY_IQR_RATIO,
        figures=figures,
        skipped_figures=skipped,
        plotly_js=plotly_js() if figures else "",
        methodology=methodology(meta, tools, timing is not None),
    )
    return render(page, reference, len(records))


def _render(template: str, **values: Any) -> str:
    """``template`` with ``values``, autoescaped; blockprof's own CSS and JS go in as trusted
    Markup, and so must anything else that is not to be escaped (plotly.js, figure HTML)."""
    from importlib.resources import files

    from jinja2 import Environment, PackageLoader, StrictUndefined
    from markupsafe import Markup

    env = Environment(
        loader=PackageLoader("blockprof.render.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    assets = files("blockprof.render.report") / "templates"
    trusted = {name: Markup((assets / f"report.{name}").read_text(encoding="utf-8")) for name in ("css", "js")}
    return env.get_template(template).render(**trusted, **values)


def _trusted(figures: list[Figure]) -> list[Figure]:
    from markupsafe import Markup

    return [Figure(f.name, Markup(f.html)) for f in figures]


def render(page: Page, reference: str | None, n_records: int) -> str:
    """The report page."""
    from markupsafe import Markup

    page.plotly_js = Markup(page.plotly_js)
    page.figures = _trusted(page.figures)
    return _render("report.html.j2", page=page, reference=reference, n_records=n_records)


def figures_page(figures: Mapping[str, Any], title: str, notes: Sequence[str] = ()) -> str:
    """A page of plotly figures alone (``blockprof plot``): plotly.js inlined once, so it
    opens offline; ``title`` and ``notes`` are escaped."""
    from markupsafe import Markup

    return _render(
        "figures.html.j2",
        title=title,
        notes=list(notes),
        figures=_trusted(embed(figures)),
        plotly_js=Markup(plotly_js()),
    )


def write_report(path: str | Path, source: str | Path | pd.DataFrame, title: str | None = None, **options: Any) -> Path:
    """Build the report (see :func:`build_report`) and write it to ``path`` (parent folders made); returns the path."""
    from blockprof.io import is_dir, write_error, write_output

    path = Path(path)
    if is_dir(path, "the report"):
        raise BlockprofError(f"{path} is a directory; give the report a file name, e.g. {path / 'report.html'}")
    html = build_report(source, title, **options)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path, e, "the report") from None
    return write_output(path, html, "the report")
