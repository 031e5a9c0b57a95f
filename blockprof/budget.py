"""Equal-budget comparison: each block at the widest width its cost allows.

Comparing blocks at equal width flatters the bottleneck (a quarter-width 3×3)
and punishes the inverted residual (a six-times-wider hidden layer). At an equal
budget of parameters or MACs each block gets the largest width ``C`` (a C → C
block at stride 1) whose cost fits, and the comparison asks what that width
buys.

Widths are searched, not solved: a block's valid widths need not be contiguous
(a bottleneck needs C divisible by its expansion, a grouped one more), so the
search steps over valid widths only, and it relies on cost growing with width
(true of every registered block; assumed of a user block, which is costed by
its module and PyTorch's flop counter). The result is exact: the width found
fits, and the next valid width does not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from blockprof.blocks.registry import get, resolve
from blockprof.counting.analytic import closed_form
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec, ResolvedSpec
from blockprof.units import grouped

if TYPE_CHECKING:
    import pandas as pd

#: widest width searched; a budget that allows more is almost surely a typo
MAX_WIDTH = 1 << 16
#: how far to step to find a valid width (divisibility rules repeat far sooner)
MAX_STEP = 256
#: options that would break the C → C, stride-1 comparison
_FIXED = ("stride", "out_channels")


@dataclass(frozen=True)
class WidthCost:
    """A width's params and forward MACs (``None`` when not needed and not computed)."""

    params: int
    macs: int | float | None

    def fits(self, budget_params: int | None, budget_macs: int | None) -> bool:
        return (budget_params is None or self.params <= budget_params) and (
            budget_macs is None or self.macs <= budget_macs  # type: ignore[operator]
        )

    def describe(self) -> str:
        return f"{grouped(self.params)} params" + (f", {grouped(self.macs)} MACs" if self.macs is not None else "")


@dataclass(frozen=True)
class BudgetFit:
    """The widest spec within budget, its cost, and the next valid width and its
    cost (which breaks the budget: the proof that ``spec`` is the widest)."""

    spec: ResolvedSpec
    cost: WidthCost
    next_width: int | None
    next_cost: WidthCost | None


def block_cost(spec: BlockSpec, macs: bool = True) -> WidthCost:
    """Params and forward MACs of ``spec``: closed form, or for a user block the
    module's parameters and PyTorch's flop counter on the meta device (skipped,
    with ``macs=False``, when only parameters matter)."""
    definition, resolved, count = closed_form(spec)
    if count is not None:
        return WidthCost(count.params, count.macs)
    from blockprof.counting.record import build_meta
    from blockprof.counting.tools import adapter

    module = build_meta(definition, resolved)
    params = sum(p.numel() for p in module.parameters())
    return WidthCost(params, adapter("torch").count(module, resolved.input_shape).macs if macs else None)


def fit_within(
    block: str,
    budget_params: int | None = None,
    budget_macs: int | None = None,
    spatial: int = 56,
    batch: int = 1,
    **spec_options: Any,
) -> BudgetFit:
    """The widest C → C, stride-1 ``block`` whose params and MACs both fit the budget(s) given."""
    _check_budget(budget_params, budget_macs, spec_options)
    get(block)  # an unknown block or a bad user-block path is an error of its own, not of a width
    costs: dict[int, WidthCost | None] = {}
    errors: dict[int, str] = {}

    def cost(c: int) -> WidthCost | None:
        """None when ``block`` cannot be built at width ``c`` with these options."""
        if c not in costs:
            try:
                costs[c] = block_cost(
                    BlockSpec(block, c, spatial=spatial, batch=batch, **spec_options), macs=budget_macs is not None
                )
            except BlockprofError as e:
                costs[c], errors[c] = None, str(e)
        return costs[c]

    smallest = _step(cost, 1, +1, MAX_STEP)
    if smallest is None:
        raise BlockprofError(
            f"{block} cannot be built at any width 1..{MAX_STEP} with {_options(spec_options)}; at {MAX_STEP}: {errors[MAX_STEP]}"
        )
    if not cost(smallest).fits(budget_params, budget_macs):  # type: ignore[union-attr]
        raise BlockprofError(
            f"no width of {block} fits {_budget(budget_params, budget_macs)}: the narrowest, {smallest}→{smallest}, "
            f"already costs {cost(smallest).describe()}; raise the budget to at least that"  # type: ignore[union-attr]
        )

    def fits_below(c: int) -> bool:
        """Whether the widest valid width ≤ c fits: monotone in c, so it can be bisected."""
        w = _step(cost, c, -1, min(MAX_STEP, c - smallest + 1))
        return w is not None and cost(w).fits(budget_params, budget_macs)  # type: ignore[union-attr]

    lo, hi = smallest, smallest * 2
    while fits_below(hi):
        if hi >= MAX_WIDTH:
            raise BlockprofError(
                f"{_budget(budget_params, budget_macs)} allows {block} wider than {MAX_WIDTH:,} channels; is the budget a typo?"
            )
        lo, hi = hi, min(2 * hi, MAX_WIDTH)
    while hi - lo > 1:  # fits_below(lo) and not fits_below(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits_below(mid) else (lo, mid)
    width = _step(cost, lo, -1, MAX_STEP)
    assert width is not None, "fits_below(lo) holds, so a width at or below lo exists"
    nxt = _step(cost, width + 1, +1, MAX_STEP)

    def full(c: int) -> BlockSpec:
        return BlockSpec(block, c, spatial=spatial, batch=batch, **spec_options)

    # the two reported widths get both costs, even where the search needed only params
    return BudgetFit(
        resolve(full(width))[1],
        block_cost(full(width)),
        nxt,
        block_cost(full(nxt)) if nxt is not None else None,
    )


def widest_within(
    block: str,
    budget_params: int | None = None,
    budget_macs: int | None = None,
    spatial: int = 56,
    batch: int = 1,
    **spec_options: Any,
) -> ResolvedSpec:
    """The widest C → C, stride-1 spec of ``block`` within budget (defaults filled in)."""
    return fit_within(block, budget_params, budget_macs, spatial, batch, **spec_options).spec


def equal_budget(
    blocks: Iterable[str],
    budget_params: int | None = None,
    budget_macs: int | None = None,
    spatial: int = 56,
    batch: int = 1,
    **options: Any,
) -> list[BudgetFit]:
    """:func:`fit_within` for each block; each option goes to the blocks that take it."""
    blocks = tuple(blocks)
    options = {k: v for k, v in options.items() if v is not None}
    definitions = {b: get(b) for b in blocks}
    for option in options:
        if not any(option in d.accepts for d in definitions.values()):
            raise BlockprofError(f"option {option!r} applies to none of the blocks {', '.join(blocks)}")
    return [
        fit_within(
            b,
            budget_params,
            budget_macs,
            spatial,
            batch,
            **{k: v for k, v in options.items() if k in definitions[b].accepts},
        )
        for b in blocks
    ]


def budget_frame(
    fits: list[BudgetFit], budget_params: int | None = None, budget_macs: int | None = None
) -> pd.DataFrame:
    """One row per block: the width found, its cost and share of the budget, and the next valid width's cost."""
    import pandas as pd

    rows = []
    for f in fits:
        definition = get(f.spec.block)
        rows.append(
            {
                "block": f.spec.block,
                "width": f.spec.in_channels,
                "inner_width": definition.inner_widths(f.spec).get("inner"),
                "params": f.cost.params,
                "macs": f.cost.macs,
                "params_of_budget": f.cost.params / budget_params if budget_params else None,
                "macs_of_budget": f.cost.macs / budget_macs if budget_macs and f.cost.macs is not None else None,
                "next_width": f.next_width,
                "next_params": f.next_cost.params if f.next_cost else None,
                "next_macs": f.next_cost.macs if f.next_cost else None,
            }
        )
    return pd.DataFrame.from_records(rows)


def compare_within_budget(
    blocks: Iterable[str],
    budget_params: int | None = None,
    budget_macs: int | None = None,
    spatial: int = 56,
    batch: int = 1,
    *,
    tools: Iterable[str] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """``compare`` at equal budget: each block's full record (tools included) at its widest
    width, with the budget columns of :func:`budget_frame`."""
    import pandas as pd

    from blockprof.counting.record import count_record
    from blockprof.counting.tools import TOOL_NAMES
    from blockprof.records import to_frame

    fits = equal_budget(blocks, budget_params, budget_macs, spatial, batch, **options)
    df = to_frame([count_record(f.spec, TOOL_NAMES if tools is None else tools) for f in fits])
    extra = budget_frame(fits, budget_params, budget_macs).drop(
        columns=["block", "width", "inner_width", "params", "macs"]
    )
    df.insert(0, "budget_params", budget_params)
    df.insert(1, "budget_macs", budget_macs)
    return pd.concat([df.reset_index(drop=True), extra], axis=1)


def _step(cost: Callable[[int], WidthCost | None], start: int, direction: int, limit: int) -> int | None:
    """The first width from ``start`` in ``direction`` (at most ``limit`` steps, never below 1) that builds."""
    for i in range(max(limit, 0)):
        c = start + direction * i
        if c < 1:
            return None
        if cost(c) is not None:
            return c
    return None


def _check_budget(budget_params: int | None, budget_macs: int | None, options: dict[str, Any]) -> None:
    if budget_params is None and budget_macs is None:
        raise BlockprofError("give a budget: budget_params (e.g. 1_000_000) and/or budget_macs (e.g. 500_000_000)")
    for name, value in (("budget_params", budget_params), ("budget_macs", budget_macs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise BlockprofError(f"{name} must be a positive number, got {value!r}")
    fixed = [k for k in _FIXED if options.get(k) is not None]
    if fixed:
        raise BlockprofError(f"an equal-budget comparison is of C → C blocks at stride 1; drop {', '.join(fixed)}")


def _budget(budget_params: int | None, budget_macs: int | None) -> str:
    parts = [
        f"{grouped(budget_params)} params" if budget_params is not None else "",
        f"{grouped(budget_macs)} MACs" if budget_macs is not None else "",
    ]
    return "a budget of " + " and ".join(p for p in parts if p)


def _options(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) or "its defaults"
