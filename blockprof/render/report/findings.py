"""The report's findings: sentences computed from the records, every number taken from them.

Pure pandas over the DataFrame of a run (or of ``compare``); no HTML here (the
template escapes these sentences like any other text). Blocks are compared only
at one *point* (same width, stride, input, batch, dtype and device): a sweep
times the cells of one point side by side, interleaved, so their ratio is fair
even on a noisy machine, while times taken at different points are not compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from blockprof import schema
from blockprof.errors import BlockprofError
from blockprof.records import block_rows, model_rows
from blockprof.units import grouped, si

if TYPE_CHECKING:
    import pandas as pd

#: the axes that make one comparison point (the schema's)
POINT_KEYS = schema.POINT_KEYS
#: the variant fields that tell two rows of one block apart at one point
STEPS = {"fwd": "forward", "train": "training step"}
#: tool check column → what it checks, in the order the report lists them
CHECKS = {
    "fvcore_agrees": ("fvcore", "forward"),
    "thop_agrees": ("thop", "forward"),
    "torch_agrees": ("torch", "forward"),
    "torch_train_agrees": ("torch", "training step"),
}


def given(value: Any) -> bool:
    """Not missing: not None, NaN, pandas' NA or NaT (a DataFrame's missing values)."""
    import pandas as pd

    return value is not None and not (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def percent(ratio: float) -> str:
    return f"{100 * ratio:.1f}%"


def times(ratio: float) -> str:
    """``7.14`` → ``7.1×``, ``12.6`` → ``13×``: two significant figures at most."""
    return f"{ratio:.1f}×" if ratio < 10 else f"{ratio:.0f}×"


def ok_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["status"] == "ok"] if "status" in df.columns else df


def timed_modes(df: pd.DataFrame) -> list[str]:
    """The steps the records hold medians for (none for a counts-only run)."""
    return [m for m in STEPS if f"{m}_ms" in df.columns and df[f"{m}_ms"].notna().any()]


@dataclass(frozen=True)
class Spread:
    """One timing: median, quartiles (from the raw samples, else median ± IQR/2), runs, noise flag."""

    median: float
    q1: float
    q3: float
    runs: int | None
    noisy: bool

    @classmethod
    def of(cls, row: dict[str, Any], mode: str) -> Spread | None:
        import numpy as np

        median = row.get(f"{mode}_ms")
        if median is None or not given(median):
            return None
        samples = row.get(f"{mode}_samples_ms")
        if isinstance(samples, (list, tuple, np.ndarray)) and len(samples):
            q1, q3 = (float(q) for q in np.quantile(np.asarray(samples, dtype=float), [0.25, 0.75]))
        else:
            half = float(row[f"{mode}_iqr_ms"]) / 2 if given(row.get(f"{mode}_iqr_ms")) else 0.0
            q1, q3 = median - half, median + half
        runs = row.get(f"{mode}_runs")
        return cls(
            float(median),
            q1,
            q3,
            int(runs) if runs is not None and given(runs) else None,
            bool(row.get(f"{mode}_noisy")) if given(row.get(f"{mode}_noisy")) else False,
        )


def speedup(reference: Spread, other: Spread) -> tuple[float, float, float]:
    """How many times faster ``other`` is than ``reference``: the ratio of medians, and the
    ratio's range over the quartiles (slowest quartile of one against fastest of the other)."""
    low = reference.q1 / other.q3 if other.q3 > 0 else math.inf
    high = reference.q3 / other.q1 if other.q1 > 0 else math.inf
    return reference.median / other.median, low, high


def speed_phrase(reference: Spread, other: Spread, step: str) -> str:
    """``runs its training step 7.1× faster (quartile range 6.8–7.4×)``, or says it is within the spread."""
    ratio, low, high = speedup(reference, other)
    spread = f"quartile range {low:.2g}–{high:.2g}×"
    if low <= 1 <= high:
        return f"runs its {step} at no clearly different speed (median ratio {ratio:.2g}×, {spread} spans 1)"
    if ratio >= 1:
        return f"runs its {step} {times(ratio)} faster ({spread})"
    return f"runs its {step} {times(1 / ratio)} slower ({1 / high:.2g}–{1 / low:.2g}× over the quartiles)"


def is_model(row: Mapping[str, Any]) -> bool:
    """Whether a record is a model cell (a whole model, not a block at a width)."""
    return given(row.get("model"))


def model_text(row: Mapping[str, Any]) -> str:
    """``model examples.models:small_cnn @ 1×3×32×32``: a model cell's name (its cell id)."""
    return f"model {row['model']} @ {'×'.join(f'{d:g}' for d in row.get('input_shape') or ())}"


def models(df: pd.DataFrame) -> list[str]:
    """What a model cell is compared with: nothing across kinds. A model's counts and times are a whole
    network's at its own input; a block's are one block's at one width, so no "equal width" exists."""
    rows = ok_rows(model_rows(df))
    if rows.empty:
        return []
    names = [model_text(r) for r in rows.to_dict(orient="records")]
    blocks = not block_rows(df).empty
    return [
        f"{len(names)} model cell{'s' if len(names) > 1 else ''} ({', '.join(dict.fromkeys(names))}), "
        "each counted whole by the tracer"
        + (
            ": listed beside the blocks, not ranked against them (a model runs a whole network at its own input, "
            "a block one block at one width; the block rankings above are among blocks only)."
            if blocks
            else "."
        )
    ]


def point_keys(df: pd.DataFrame, axes: Sequence[str] = POINT_KEYS) -> list[str]:
    """The comparison axes the records have (an equal-budget comparison passes the input
    axes alone: there each block is at a width of its own)."""
    return [k for k in axes if k in df.columns]


def variant_text(row: Mapping[str, Any]) -> str:
    """``t2 g32`` for a row's variant fields other than stride that differ from its block's defaults."""
    from blockprof.blocks.registry import defaults_of

    values = {k: row.get(k) if given(row.get(k)) else None for k in schema.VARIANT_NAMES if k != "stride"}
    return " ".join(schema.marks(values, defaults_of(str(row.get("block")))))


def point_text(row: dict[str, Any]) -> str:
    """``256 channels, input 1×256×56×56`` (with the stride and output width when they are not 1 and C_in)."""
    text = f"{row['in_channels']:g} channels"
    if given(row.get("out_channels")) and row["out_channels"] != row["in_channels"]:
        text += f" (→{row['out_channels']:g})"
    if given(row.get("spatial")) and given(row.get("batch")):
        text += f", input {row['batch']:g}×{row['in_channels']:g}×{row['spatial']:g}×{row['spatial']:g}"
    if given(row.get("stride")) and row["stride"] != 1:
        text += f", stride {row['stride']:g}"
    return text


def device_text(row: dict[str, Any]) -> str:
    """``cpu (Intel Xeon, 2 threads, float32)``: where a row was timed."""
    details = [str(row[k]) for k in ("device_name",) if given(row.get(k))]
    if given(row.get("threads")):
        details.append(f"{row['threads']:g} thread{'' if row['threads'] == 1 else 's'}")
    if given(row.get("dtype")):
        details.append(str(row["dtype"]))
    device = str(row["device"]) if given(row.get("device")) else "this machine"
    return f"{device} ({', '.join(details)})" if details else device


def row_name(row: dict[str, Any], ambiguous: bool) -> str:
    variant = variant_text(row) if ambiguous else ""
    return f"{row['block']} {variant}".strip()


def spoiled(row: dict[str, Any]) -> bool:
    """The row's times were taken under contention (see :mod:`blockprof.timing.contention`): not to be ranked."""
    return row.get("contended") is True


def headline_point(df: pd.DataFrame, reference: str, axes: Sequence[str] = POINT_KEYS) -> pd.DataFrame | None:
    """The rows of the point the summary leads with: one where the reference block has
    exactly one row, most blocks are present, then the widest, largest input, smallest batch."""
    rows = ok_rows(df)
    keys = point_keys(rows, axes)
    best, best_key = None, None
    for _, part in rows.groupby(keys, dropna=False, sort=False):
        if (part["block"] == reference).sum() != 1:
            continue
        first = part.iloc[0]
        rank = (part["block"].nunique(), first["in_channels"], first.get("spatial", 0), -first.get("batch", 1))
        if best_key is None or rank > best_key:
            best, best_key = part, rank
    return best


def comparisons(df: pd.DataFrame, reference: str, axes: Sequence[str] = POINT_KEYS) -> list[str]:
    """One sentence per other block at the headline point: its share of the reference's
    parameters and MACs, and (for a timed run) how much faster each step runs."""
    point = headline_point(df, reference, axes)
    if point is None:
        return []
    records = point.to_dict(orient="records")
    ref = next(r for r in records if r["block"] == reference)
    modes = timed_modes(point)
    counts = point["block"].value_counts()
    out = []
    for row in records:
        if row is ref:
            continue
        name = row_name(row, counts[row["block"]] > 1)
        if row["in_channels"] != ref["in_channels"]:
            name += f" at {row['in_channels']:g} channels"
        shares = []
        if given(row.get("params")) and ref.get("params"):
            shares.append(
                f"holds {percent(row['params'] / ref['params'])} of {reference}'s parameters ({grouped(row['params'])} vs {grouped(ref['params'])})"
            )
        if given(row.get("macs")) and ref.get("macs"):
            shares.append(
                f"does {percent(row['macs'] / ref['macs'])} of its forward MACs ({si(row['macs'])} vs {si(ref['macs'])})"
            )
        text = f"At {point_text(ref)}, the {name} {' and '.join(shares) or f'is compared with {reference}'}."
        speeds = []
        for mode in modes:
            mine, theirs = Spread.of(row, mode), Spread.of(ref, mode)
            if mine is not None and theirs is not None:
                speeds.append(speed_phrase(theirs, mine, STEPS[mode]))
        if speeds and (spoiled(row) or spoiled(ref)):
            text += (
                f" Its speed against {reference} is not stated: other work held the cores while "
                f"{'both were' if spoiled(row) and spoiled(ref) else 'one of them was'} timed."
            )
            speeds = []
        if speeds:
            noisy = sum(s.noisy for m in modes for s in (Spread.of(row, m), Spread.of(ref, m)) if s is not None)
            text += f" On {device_text(ref)} it " + " and ".join(speeds)
            if noisy:
                text += (
                    f"; {noisy} of the {2 * len(speeds)} timings behind {'this' if len(speeds) == 1 else 'these'} "
                    f"{'is' if noisy == 1 else 'are'} noisy, so read the ratio{'s' if len(speeds) > 1 else ''} as rough"
                )
            text += "."
        out.append(text)
    return out


def winners(df: pd.DataFrame, axes: Sequence[str] = POINT_KEYS) -> list[str]:
    """Which block is cheapest on each cost across the points where several blocks meet."""
    rows = ok_rows(df)
    keys = point_keys(rows, axes)
    costs = [("params", "Fewest parameters"), ("macs", "Fewest forward MACs")]
    costs += [(f"{m}_ms", f"Fastest {STEPS[m]} (lowest median)") for m in timed_modes(rows)]
    out = []
    for column, what in costs:
        if column not in rows.columns:
            continue
        wins: dict[str, int] = {}
        clear: dict[str, int] = {}
        points = spoilt = 0
        for _, part in rows.dropna(subset=[column]).groupby(keys, dropna=False, sort=False):
            if part["block"].nunique() < 2:
                continue
            if column.endswith("_ms") and "contended" in part.columns and (part["contended"] == True).any():  # noqa: E712
                spoilt += 1  # a ranking that contention may have decided is no finding
                continue
            points += 1
            ranked = part.sort_values(column).to_dict(orient="records")
            best, runner = ranked[0], ranked[1]
            name = row_name(best, (part["block"] == best["block"]).sum() > 1)
            wins[name] = wins.get(name, 0) + 1
            if column.endswith("_ms"):
                a, b = Spread.of(best, column[:-3]), Spread.of(runner, column[:-3])
                if a is not None and b is not None and a.q3 < b.q1:
                    clear[name] = clear.get(name, 0) + 1
        if spoilt:
            left_out = (
                f"{what}: not ranked at {spoilt} point{'s' if spoilt > 1 else ''}, where other work held the cores "
                "while they were timed (flagged busy in the timing table)"
            )
            if not points:
                out.append(left_out + ".")
                continue
        if not points:
            continue
        ordered = sorted(wins.items(), key=lambda kv: -kv[1])
        timed = column.endswith("_ms")
        if len(ordered) == 1:
            name, _n = ordered[0]
            text = f"{what}: the {name} at " + (
                f"every one of the {points} points compared" if points > 1 else "the one point compared"
            )
            if timed:
                text += f", clearly at {clear.get(name, 0)} of them"
        else:
            parts = [
                f"the {name} at {n}" + (f" (clearly at {clear.get(name, 0)})" if timed else "") for name, n in ordered
            ]
            text = f"{what}: {', '.join(parts)} of the {points} points compared"
        if timed:
            text += " (clearly: its third quartile below the runner-up's first)"
            if spoilt:
                text += f"; {left_out[len(what) + 2 :]}"
        out.append(text + ".")
    return out


def count_checks(df: pd.DataFrame) -> list[str]:
    """How each count was checked, and how many checks passed."""
    rows = ok_rows(df)
    if rows.empty:
        return []
    out = []
    if "module_params" in rows.columns and "params" in rows.columns:
        both = rows.dropna(subset=["module_params", "params"])
        same = int((both["module_params"] == both["params"]).sum())
        out.append(f"Parameters equal sum(p.numel() for p in module.parameters()) in {same} of {len(both)} cells.")
    checks = []
    for column, (tool, what) in CHECKS.items():
        if column not in rows.columns:
            continue
        verdicts = rows[column]
        checked = verdicts.notna()
        agree = int((verdicts[checked] == True).sum())  # noqa: E712 (object column of True/False/None)
        unchecked = int((~checked).sum())
        text = f"{tool} ({what}) agrees in {agree} of {int(checked.sum())}"
        if unchecked:
            text += f", {unchecked} not checked"
        checks.append(text)
    if checks:
        differ = any((rows[c] == False).any() for c in CHECKS if c in rows.columns)  # noqa: E712
        tail = " Every disagreement's reason is listed under the counts table." if differ else ""
        out.append(f"Against each tool's own convention: {'; '.join(checks)}.{tail}")
    return out


def noise(df: pd.DataFrame, noisy_ratio: float) -> list[str]:
    modes = timed_modes(df)
    if not modes:
        return []
    rows = ok_rows(df)
    total = sum(int(rows[f"{m}_ms"].notna().sum()) for m in modes)
    noisy = sum(int((rows[f"{m}_noisy"] == True).sum()) for m in modes if f"{m}_noisy" in rows.columns)  # noqa: E712
    runs = [int(v) for m in modes if f"{m}_runs" in rows.columns for v in rows[f"{m}_runs"].dropna()]
    text = f"{noisy} of {total} timings are noisy (interquartile range above {noisy_ratio:.0%} of the median) and flagged ⚠ in the timing table"
    if runs:
        text += f"; every median is of {min(runs)} to {max(runs)} samples"
    return [text + "."]


def contention(df: pd.DataFrame) -> list[str]:
    """How many timed cells other work spoiled, and how badly: those are never ranked."""
    rows = ok_rows(df)
    if "contended" not in rows.columns or not timed_modes(rows):
        return []
    busy = rows[rows["contended"] == True]  # noqa: E712
    if busy.empty:
        timed = rows["contended"].notna().sum()
        return (
            [
                f"No timing was taken under contention: in all {timed} timed cells the timed code was on the CPU "
                "for at least 90% of the wall time."
            ]
            if timed
            else []
        )
    ratios = busy["cpu_wall_ratio"].dropna() if "cpu_wall_ratio" in busy.columns else busy["contended"].iloc[:0]
    share = (
        f" (the timed code ran only {percent(ratios.min())} to {percent(ratios.max())} of the wall time)"
        if len(ratios)
        else ""
    )
    return [
        f"{len(busy)} of {int(rows['contended'].notna().sum())} timed cells were measured while other work held the cores{share}: "
        "their times are flagged busy, are not ranked above, and should be measured again on a quiet machine."
    ]


def throughput(df: pd.DataFrame) -> list[str]:
    rows = ok_rows(df)
    out = []
    for mode in timed_modes(rows):
        column, fraction = f"{mode}_gflops_per_s", f"{mode}_roofline_fraction"
        if column not in rows.columns or rows[column].isna().all():
            continue
        text = f"Achieved {STEPS[mode]} throughput: {rows[column].min():.3g} to {rows[column].max():.3g} GFLOP/s"
        if fraction in rows.columns and rows[fraction].notna().any():
            text += f", {percent(rows[fraction].min())} to {percent(rows[fraction].max())} of the calibrated roofline"
        out.append(text + ".")
    return out


def failures(df: pd.DataFrame) -> list[str]:
    if "status" not in df.columns:
        return []
    failed = int((df["status"] != "ok").sum())
    return [f"{failed} of {len(df)} cells failed; their errors are in the counts table."] if failed else []


def summary(df: pd.DataFrame, reference: str | None, noisy_ratio: float, axes: Sequence[str] = POINT_KEYS) -> list[str]:
    """Every finding the summary states, in reading order; blocks are compared where
    they share every one of ``axes``."""
    sentences: list[str] = []
    blocks = block_rows(df)
    if reference is not None:
        sentences += comparisons(blocks, reference, axes)
    sentences += (
        winners(blocks, axes)
        + models(df)
        + count_checks(df)
        + contention(df)
        + noise(df, noisy_ratio)
        + throughput(df)
        + failures(df)
    )
    return sentences


def choose_reference(df: pd.DataFrame, wanted: str | None = None) -> str | None:
    """The block others are measured against: ``wanted``, else the first block of the
    successful records (None when none succeeded; model cells are never one)."""
    rows = ok_rows(block_rows(df))
    names = list(dict.fromkeys(rows["block"])) if "block" in rows.columns else []
    if wanted is not None and wanted not in names:
        raise BlockprofError(
            f"reference block {wanted!r} has no successful cell here; choose one of {', '.join(map(str, names)) or '(none)'}"
        )
    return wanted or (names[0] if names else None)
