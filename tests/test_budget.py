"""Equal-budget search: the width found fits, the next valid width does not, and the
search agrees with the closed-form inverse where one exists."""

from __future__ import annotations

from math import isqrt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blockprof.api import analytic_count
from blockprof.blocks import resolve
from blockprof.budget import budget_frame, compare_within_budget, equal_budget, fit_within, widest_within
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec

BASIC_256_PARAMS = 1_180_672  # the BasicBlock at 256 channels: 18·256² + 4·256


def valid(spec: BlockSpec) -> bool:
    try:
        resolve(spec)
    except BlockprofError:
        return False
    return True


def assert_widest(
    block: str, budget_params: int | None, budget_macs: int | None, spatial: int = 56, **options: object
) -> int:
    """The found width fits; every wider width up to the next valid one is invalid; that one does not fit."""
    fit = fit_within(block, budget_params, budget_macs, spatial, **options)
    w = fit.spec.in_channels
    a = analytic_count(fit.spec)
    assert (a.params, a.macs) == (fit.cost.params, fit.cost.macs)
    assert (budget_params is None or a.params <= budget_params) and (budget_macs is None or a.macs <= budget_macs)
    assert fit.next_width is not None
    assert not any(valid(BlockSpec(block, c, spatial=spatial, **options)) for c in range(w + 1, fit.next_width))  # type: ignore[arg-type]
    n = analytic_count(BlockSpec(block, fit.next_width, spatial=spatial, **options))  # type: ignore[arg-type]
    assert (budget_params is not None and n.params > budget_params) or (
        budget_macs is not None and n.macs > budget_macs
    )
    return w


@settings(max_examples=40, deadline=None)
@given(budget=st.integers(22, 50_000_000))
def test_basic_matches_the_closed_form_inverse(budget: int) -> None:
    """BasicBlock C→C holds 18C² + 4C params, so the widest C is the largest root of 18C² + 4C ≤ B."""
    c = (isqrt(4 + 72 * budget) - 2) // 36
    while 18 * (c + 1) ** 2 + 4 * (c + 1) <= budget:
        c += 1
    while 18 * c * c + 4 * c > budget:
        c -= 1
    assert widest_within("basic", budget_params=budget).in_channels == c


def test_equal_params_budget_of_the_basic_block_at_256() -> None:
    """At the BasicBlock-256 budget the bottleneck can be four times wider and the inverted residual only 310."""
    assert assert_widest("basic", BASIC_256_PARAMS, None) == 256
    assert assert_widest("bottleneck", BASIC_256_PARAMS, None) == 1052
    assert assert_widest("inverted_residual", BASIC_256_PARAMS, None) == 310
    assert assert_widest("basic", BASIC_256_PARAMS - 1, None) == 255


@pytest.mark.parametrize(
    "block, options",
    [
        ("bottleneck", {}),
        ("bottleneck", {"groups": 32, "width_per_group": 4}),
        ("bottleneck", {"expansion": 2, "se": 0.25}),
        ("inverted_residual", {"expansion": 4}),
        ("basic", {"se": 1 / 16}),
    ],
)
@pytest.mark.parametrize(
    "budget_params, budget_macs, spatial",
    [(500_000, None, 56), (None, 1_000_000_000, 28), (2_000_000, 400_000_000, 56)],
)
def test_widest_steps_over_invalid_widths(
    block: str, options: dict, budget_params: int | None, budget_macs: int | None, spatial: int
) -> None:
    w = assert_widest(block, budget_params, budget_macs, spatial, **options)
    if block == "bottleneck":
        assert w % int(options.get("expansion", 4)) == 0


def test_macs_budget_depends_on_the_input_size() -> None:
    small = widest_within("bottleneck", budget_macs=218_365_952, spatial=56)
    assert small.in_channels == 256  # the budget is exactly the 256 bottleneck's MACs at 56×56
    assert widest_within("bottleneck", budget_macs=218_365_952, spatial=28).in_channels > 2 * 256 - 8


@pytest.mark.slow
def test_user_block_budget() -> None:
    """ConvNeXt's 8C² + 58C params, searched through its module."""
    budget = 1_000_000
    c = max(c for c in range(1, 400) if 8 * c * c + 58 * c <= budget)
    assert widest_within("examples.user_blocks:convnext_block", budget_params=budget).in_channels == c


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(block="bottleneck", budget_params=10),
            "no width of bottleneck fits a budget of 10 params: the narrowest, 4→4, already costs 29 params",
        ),
        (
            dict(block="basic", budget_macs=1000),
            "no width of basic fits a budget of 1,000 MACs: the narrowest, 1→1, already costs 22 params, 56,448 MACs",
        ),
        (dict(block="basic", budget_params=10**15), "wider than 65,536 channels"),
        (dict(block="basic"), "give a budget"),
        (dict(block="basic", budget_params=-5), "budget_params must be a positive number"),
        (dict(block="basic", budget_params=10**6, stride=2), "drop stride"),
        (dict(block="basic", budget_params=10**6, expansion=4), "cannot be built at any width"),
        (dict(block="nope", budget_params=10**6), "unknown block 'nope'"),
    ],
)
def test_budget_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(BlockprofError, match=None) as e:
        widest_within(**kwargs)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_equal_budget_routes_options_and_tabulates() -> None:
    fits = equal_budget(["basic", "inverted_residual"], budget_params=BASIC_256_PARAMS, expansion=4)
    assert fits[0].spec.expansion == 1 and fits[1].spec.expansion == 4
    df = budget_frame(fits, budget_params=BASIC_256_PARAMS)
    assert list(df["block"]) == ["basic", "inverted_residual"]
    assert (df["params"] <= BASIC_256_PARAMS).all() and (df["next_params"] > BASIC_256_PARAMS).all()
    assert (df["params_of_budget"] <= 1).all()
    with pytest.raises(BlockprofError, match="applies to none of the blocks"):
        equal_budget(["basic", "inverted_residual"], budget_params=10**6, groups=2)


def test_compare_within_budget_counts_each_block_at_its_width() -> None:
    df = compare_within_budget(
        ["basic", "bottleneck", "inverted_residual"], budget_macs=1_000_000_000, spatial=28, tools=("torch",)
    )
    assert list(df["in_channels"]) == [
        widest_within(b, budget_macs=1_000_000_000, spatial=28).in_channels for b in df["block"]
    ]
    assert (df["macs"] <= 1_000_000_000).all() and (df["next_macs"] > 1_000_000_000).all()
    assert df["torch_agrees"].all() and (df["budget_macs"] == 1_000_000_000).all()


def test_compare_cli_at_equal_budget() -> None:
    """`compare --budget-params` puts each block at its widest width within the budget."""
    import json

    from click.testing import CliRunner

    from blockprof.cli import cli

    runner = CliRunner()
    result = runner.invoke(
        cli, ["compare", "--no-time", "--budget-params", "1180672", "--tools", "torch", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {r["block"]: r for r in json.loads(result.stdout)}
    assert {b: r["in_channels"] for b, r in rows.items()} == {
        "basic": 256,
        "bottleneck": 1052,
        "inverted_residual": 310,
    }
    assert all(r["params"] <= 1180672 < r["next_params"] for r in rows.values())
    assert rows["bottleneck"]["params_rel"] == rows["bottleneck"]["params"] / rows["basic"]["params"]
    table = runner.invoke(cli, ["compare", "--no-time", "--budget-params", "1180672", "--tools", "torch"])
    assert table.exit_code == 0 and "%budget" in table.stdout and "same budget" in table.stdout
    clash = runner.invoke(cli, ["compare", "--no-time", "--budget-params", "1180672", "--channels", "64"])
    assert clash.exit_code == 2 and "exclude each other" in clash.stderr
