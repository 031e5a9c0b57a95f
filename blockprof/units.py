"""Units and number formatting (pure; no torch).

Conventions used everywhere in blockprof:

* a **MAC** is one multiply-accumulate (``a += w * x``);
* a **FLOP** is one floating-point operation, so one MAC is two FLOPs;
* ``params`` counts scalars (not bytes).

Tools disagree on which they print: fvcore and thop report MACs (fvcore calls
them "flops"), ``torch.utils.flop_counter`` reports FLOPs. Conversions happen in
the tool adapters, never in reports.
"""

from __future__ import annotations

from typing import Any, TypeVar

#: an int count stays an int (a float one, e.g. a tool's, stays a float)
N = TypeVar("N", int, float)

FLOPS_PER_MAC = 2

_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def macs_to_flops(macs: N) -> N:
    """FLOPs of ``macs`` multiply-accumulates (one multiply plus one add each)."""
    return macs * FLOPS_PER_MAC


def whole(value: Any) -> Any:
    """``1.0`` → ``1``: how a whole number looks on a command line (anything else unchanged)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _missing(n: int | float | None) -> bool:
    """None, or what pandas puts in a numeric column for None (a user block's ``params_conv``):
    NaN, or pandas' NA in a nullable integer column, which is neither equal nor unequal to itself."""
    if n is None:
        return True
    try:
        return bool(n != n)
    except TypeError:  # pandas.NA: its comparisons are NA, whose truth is undefined
        return True


def grouped(n: int | float | None) -> str:
    """``1179648`` -> ``'1,179,648'``; ``None`` or NaN -> ``'-'``."""
    if n is None or _missing(n):
        return "-"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"


def si(n: int | float | None, unit: str = "") -> str:
    """Short SI form for tables: ``2_359_296`` -> ``'2.36M'``; ``None`` or NaN -> ``'-'``."""
    if n is None or _missing(n):
        return "-"
    for scale, prefix in _SI:
        if abs(n) >= scale:
            return f"{n / scale:.3g}{prefix}{unit}"
    return f"{n:g}{unit}"
