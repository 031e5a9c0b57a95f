"""A run's records as the compact table ``blockprof show`` prints: one line per cell.

Presentation only: the records come from :func:`blockprof.runs.load_run`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blockprof.render.tables import PRIORITY

if TYPE_CHECKING:
    import pandas as pd


def _timing(ms: Any, iqr: Any, runs: Any, noisy: Any, busy: Any = None) -> str:
    """``median (IQR, runs)``, with ``!`` when the IQR is over 10% of the median, ``busy`` when contended."""
    if ms is None or ms != ms:
        return "-"
    return f"{ms:.3g} ({iqr:.2g}, {runs:g}){' !' if noisy is True else ''}{' busy' if busy is True else ''}"


def run_view(df: pd.DataFrame, reference: str | None) -> pd.DataFrame:
    """The compact view: one line per cell, counts in SI units, medians with half their IQR and run count."""
    import pandas as pd

    from blockprof.records import describe
    from blockprof.units import grouped, si

    ok = df["status"] == "ok"
    view = pd.DataFrame({"cell": [describe(r) for r in df.to_dict(orient="records")]})
    view["params"] = (
        [grouped(v) if good else "-" for v, good in zip(df["params"], ok, strict=False)] if "params" in df else "-"
    )
    view["MACs"] = [si(v) if good else "-" for v, good in zip(df.get("macs", [None] * len(df)), ok, strict=False)]
    for mode in ("fwd", "train"):
        if f"{mode}_ms" in df.columns and df[f"{mode}_ms"].notna().any():
            busy = df["contended"] if "contended" in df.columns else [None] * len(df)
            columns = (df[f"{mode}_ms"], df[f"{mode}_iqr_ms"], df[f"{mode}_runs"], df[f"{mode}_noisy"], busy)
            view[f"{mode} ms\n(IQR, runs)"] = [_timing(*v) for v in zip(*columns, strict=False)]
            view[f"{mode}\nGFLOP/s"] = [
                f"{v:.3g}" if v == v and v is not None else "-" for v in df[f"{mode}_gflops_per_s"]
            ]
    if reference:
        for metric in ("params", "macs", "fwd_ms", "train_ms"):
            if f"{metric}_rel" in df.columns:
                view[f"{metric}\n/{reference}"] = [f"{v:.3g}×" if v == v else "-" for v in df[f"{metric}_rel"]]
    view["status"] = [s if s == "ok" else f"error: {e}" for s, e in zip(df["status"], df["error"], strict=False)]
    view.attrs[PRIORITY] = [
        "cell",
        *(c for c in view.columns if " ms\n" in c),
        "status",
        "params",
        "MACs",
        *(c for c in view.columns if c.startswith(("params\n/", "macs\n/", "fwd_ms\n/", "train_ms\n/"))),
    ]
    return view
