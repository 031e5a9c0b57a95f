"""The comparison tables a reviewer reads: the counts view, the timing view, and the sentences under them.

Presentation only: every figure comes from the records ``blockprof.api.compare`` and ``add_timings`` return;
nothing here counts or times. Each tool's convention is stated where its agreement is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blockprof.render.tables import PRIORITY

if TYPE_CHECKING:
    import pandas as pd


def _percent(ratio: float) -> str:
    return "-" if ratio != ratio else f"{100 * ratio:.1f}%"


def _mark(value: object) -> str:
    return "-" if value is None or value != value else ("✓" if value else "✗")


def count_view(df: pd.DataFrame) -> pd.DataFrame:
    """The compact view a reviewer reads: exact parameter counts, MACs and FLOPs in SI
    units, costs as % of the reference block, one ✓/✗ per tool check."""
    import pandas as pd

    from blockprof.units import grouped, si

    view = pd.DataFrame({"block": df["block"]})
    if (df["in_channels"] != df["out_channels"]).any() or df["in_channels"].nunique() > 1:
        view["C_in→C_out"] = [f"{a}→{b}" for a, b in zip(df["in_channels"], df["out_channels"], strict=False)]
    if df["spatial"].nunique() > 1 or df["batch"].nunique() > 1 or (df["stride"] != 1).any():
        view["input"] = [
            f"{n}×{c}×{s}×{s} /{st}"
            for n, c, s, st in zip(df["batch"], df["in_channels"], df["spatial"], df["stride"], strict=False)
        ]
    view["inner"] = [grouped(v) if pd.notna(v) else "-" for v in df["inner_width"]]
    view["params"] = df["params"].map(grouped)
    view["params\n%ref"] = df["params_rel"].map(_percent)
    view["conv\nweights"] = df["params_conv"].map(grouped)
    view["conv\n%ref"] = df["params_conv_rel"].map(_percent)
    view["MACs"] = df["macs"].map(si)
    view["FLOPs"] = df["flops"].map(si)
    view["MACs\n%ref"] = df["macs_rel"].map(_percent)
    view["train\nFLOPs"] = df["train_flops"].map(si)
    for column, header in (("params_of_budget", "params\n%budget"), ("macs_of_budget", "MACs\n%budget")):
        if column in df.columns and df[column].notna().any():
            view[header] = df[column].map(_percent)
    if "next_width" in df.columns:
        view["next width\nover budget"] = [
            "-" if w != w or w is None else f"{int(w)}: {grouped(p)} params, {si(m)} MACs"
            for w, p, m in zip(df["next_width"], df["next_params"], df["next_macs"], strict=False)
        ]
    checks = [c for c in ("fvcore_agrees", "thop_agrees", "torch_agrees", "torch_train_agrees") if c in df.columns]
    view.attrs[PRIORITY] = [
        "block",
        "C_in→C_out",
        "input",
        "params",
        "MACs",
        "params\n%ref",
        "MACs\n%ref",
        "train\nFLOPs",
        "params\n%budget",
        "MACs\n%budget",
        "next width\nover budget",
        "FLOPs",
        "inner",
        "conv\nweights",
        "conv\n%ref",
    ]
    if not checks:  # --tools none: the analytic count alone
        return view
    header = " ".join(
        {"fvcore_agrees": "fv", "thop_agrees": "th", "torch_agrees": "to", "torch_train_agrees": "bwd"}[c]
        for c in checks
    )
    view["checks\n" + header] = [
        " ".join(f"{_mark(row[c]):<{len(h)}}" for c, h in zip(checks, header.split(), strict=False)).rstrip()
        for _, row in df.iterrows()
    ]
    view.attrs[PRIORITY].insert(5, "checks\n" + header)  # a failed check matters more than a share
    return view


def tool_footer(df: pd.DataFrame, reference: str, basis: str = "width") -> str:
    """Sentences under the table: the reference, each tool's convention, and every disagreement."""
    from blockprof.counting.tools import TOOL_NAMES, adapter

    lines = [
        f"%ref: share of {reference}'s cost at the same {basis}. MAC = one multiply-accumulate; FLOP = one floating-point op (1 MAC = 2 FLOPs).",
        "MACs/FLOPs are conv + linear only; train FLOPs = forward + input-gradient + weight-gradient. Exact values: --format json or csv.",
    ]
    if not any(f"{tool}_agrees" in df.columns for tool in TOOL_NAMES):
        return "\n".join([*lines, "No tool cross-checked these counts (--tools none): the analytic count alone."])
    traced = "count_source" in df.columns and (df["count_source"] == "trace").any()
    ours = "blockprof's count (closed form; traced op by op for user blocks)" if traced else "the analytic count"
    lines += [
        "Checks (fv = fvcore, th = thop, to = torch forward, bwd = torch forward+backward), ✓ when the tool's own total",
        f"equals {ours} re-summed under that tool's convention:",
    ]
    for tool in TOOL_NAMES:
        if f"{tool}_agrees" not in df.columns:
            continue
        lines.append(f"  {tool}: {adapter(tool).CONVENTION}.")
        for column, what in ((f"{tool}_agrees", "forward"), (f"{tool}_train_agrees", "training step")):
            if column not in df.columns:
                continue
            note_column = column.replace("_agrees", "_note")
            for _, row in df[df[column] != True].iterrows():  # noqa: E712 (None and False both need a line)
                lines.append(f"    {row['block']} @ {row['in_channels']} ({what}): {row[note_column]}")
    return "\n".join(lines)


def _ms(median: object, iqr: object, noisy: object, busy: object = None) -> str:
    if median is None or median != median:
        return "-"
    return f"{_number(median)} ({_number(iqr)}){' !' if noisy is True else ''}{' busy' if busy is True else ''}"


def timing_view(df: pd.DataFrame) -> pd.DataFrame:
    """The timing view: medians with their IQR, run counts, speed against the reference,
    achieved throughput and the share of the roofline."""
    import pandas as pd

    view = pd.DataFrame({"block": df["block"]})
    if df["in_channels"].nunique() > 1:
        view["C"] = df["in_channels"]
    busy = df["contended"] if "contended" in df.columns else [None] * len(df)
    view["fwd ms\n(IQR)"] = [
        _ms(m, q, n, b) for m, q, n, b in zip(df["fwd_ms"], df["fwd_iqr_ms"], df["fwd_noisy"], busy, strict=False)
    ]
    view["train ms\n(IQR)"] = [
        _ms(m, q, n, b) for m, q, n, b in zip(df["train_ms"], df["train_iqr_ms"], df["train_noisy"], busy, strict=False)
    ]
    view["train\n%ref"] = df["train_ms_rel"].map(_percent)
    view["runs"] = df["runs"].map(lambda r: "-" if r != r or r is None else str(int(r)))
    if "cpu_wall_ratio" in df.columns:
        view["CPU\n%wall"] = df["cpu_wall_ratio"].map(lambda r: "-" if r is None or r != r else f"{100 * r:.0f}%")
    view["fwd\nGFLOP/s"] = df["fwd_gflops_per_s"].map(_number)
    view["train\nGFLOP/s"] = df["train_gflops_per_s"].map(_number)
    view["FLOP/byte\nfwd"] = df["fwd_intensity"].map(_number)
    view["roofline\nfwd"] = df["roofline_fraction"].map(_percent)
    view["bound"] = df["fwd_bound"].map(lambda b: b if isinstance(b, str) else "-")
    view.attrs[PRIORITY] = [
        "block",
        "C",
        "fwd ms\n(IQR)",
        "train ms\n(IQR)",
        "CPU\n%wall",
        "train\n%ref",
        "runs",
        "roofline\nfwd",
        "fwd\nGFLOP/s",
        "bound",
        "train\nGFLOP/s",
        "FLOP/byte\nfwd",
    ]
    return view


def _number(value: Any) -> str:
    """Three significant figures without exponents: 0.0123, 1.23, 12.3, 123, 1234."""
    if value is None or value != value:
        return "-"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def timing_conditions(df: pd.DataFrame) -> str:
    row = df.dropna(subset=["fwd_ms"]).iloc[0]
    return (
        f"{row['device_name']} ({row['device']}), {row['dtype']}, {int(row['threads'])} threads, {row['memory_format']}"
    )


def timing_footer(df: pd.DataFrame) -> str:
    """How the times were taken, and what is flagged."""
    lines = [
        "Times: median per call and its IQR in ms over 'runs' samples (the fewest behind the row), torch.utils.benchmark,",
        "blocks interleaved round-robin; fwd = eval + inference_mode, train = forward + backward with fresh gradients.",
        "! = IQR over 10% of the median: noisy, do not trust the median alone. Roofline: achieved GFLOP/s over",
        "min(peak GFLOP/s, intensity × peak GB/s) from 'blockprof calibrate' (cached per machine).",
    ]
    over = df[df["roofline_fraction"].astype("float64") > 1]
    if len(over):
        lines.append(
            f"  roofline above 100% for {', '.join(over['block'])}: the block outran the cached compute peak (peaks taken "
            "under load, or a kernel faster than both calibration kernels, e.g. Winograd, which does fewer multiplies than counted); "
            "if calibrated under load, run 'blockprof calibrate --force' on a quiet machine."
        )
    errors = df[df["status"] != "ok"]
    lines += [f"  {row['block']} @ {row['in_channels']}: {row['error']}" for _, row in errors.iterrows()]
    lines += contention_lines(df)
    return "\n".join(lines)


def contention_lines(df: pd.DataFrame) -> list[str]:
    """What 'busy' means and how many rows carry it, with the load before and after."""
    if (
        "contended" not in df.columns or not df["contended"].notna().any()
    ):  # records from before contention was measured
        load, threads = df["load_average"].dropna(), df["threads"].dropna()
        if len(load) and load.iloc[0] > (threads.iloc[0] if len(threads) else 1):
            return [f"  load average {load.iloc[0]:.1f} when timing began: other work shared the cores; expect noise."]
        return []
    busy = df[df["contended"] == True]  # noqa: E712
    load = ""
    if "load_after" in df.columns and df["load_average"].notna().any() and df["load_after"].notna().any():
        load = f" (load average {df['load_average'].dropna().iloc[0]:.1f} before, {df['load_after'].dropna().iloc[-1]:.1f} after)"
    if busy.empty:
        return [
            f"CPU %wall: share of the timed wall time the timed code was on the CPU; at or above 90% in every row{load}."
        ]
    return [
        f"busy: {len(busy)} of {int(df['contended'].notna().sum())} rows were timed while other work held the cores{load}: "
        f"{busy['contention'].iloc[0]}.",
        "  Their times are slower than the block is, and the ranking between them means nothing; time again on a quiet machine.",
    ]
