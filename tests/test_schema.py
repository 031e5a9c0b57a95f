"""The schema module: one vocabulary, values typed and bounded wherever they enter, resolved specs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from torch.utils.flop_counter import FlopCounterMode

from blockprof import schema
from blockprof.api import analytic_count, count
from blockprof.blocks import build, resolve
from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.grid import Grid
from blockprof.regress import cell_id, load_suite, suite_from_toml
from blockprof.spec import BlockSpec, ResolvedSpec

ROOT = Path(__file__).parent.parent

#: one valid, whole value per numeric field, and a block that takes it
NUMERIC = {
    "in_channels": ("bottleneck", 64),
    "out_channels": ("bottleneck", 128),
    "stride": ("bottleneck", 2),
    "expansion": ("bottleneck", 2),
    "groups": ("bottleneck", 2),
    "width_per_group": ("bottleneck", 64),
    "se": ("bottleneck", 0.25),
    "kernel": ("inverted_residual", 5),
    "spatial": ("bottleneck", 14),
    "batch": ("bottleneck", 2),
}


def test_generated_schema_docs_match_the_code() -> None:
    """docs/reference/schema.md is generated: regenerate with `python -m blockprof.schema --write`."""
    assert (ROOT / "docs" / "reference" / "schema.md").read_text(encoding="utf-8") == schema.markdown()


def test_every_field_is_in_the_spec_the_records_and_the_docs() -> None:
    spec_fields = [f.name for f in dataclasses.fields(BlockSpec)]
    assert set(spec_fields) == set(schema.BY_NAME)
    assert set(spec_fields) <= set(schema.RECORD_FIELDS)
    doc = schema.markdown()
    assert all(f"`{f.option}`" in doc for f in schema.VARIANT_FIELDS)
    record = count(BlockSpec("inverted_residual", 16, kernel=5, activation="silu", spatial=8), tools=())
    assert {"kernel": 5, "activation": "silu", "se_style": "standard"}.items() <= record.items()


#: a JSON type as the schema names it → whether a (non-null) value is of it
JSON_TYPES = {
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) in (int, float),
    "string": lambda v: type(v) is str,
    "boolean": lambda v: type(v) is bool,
    "list of numbers": lambda v: type(v) is list and all(type(x) in (int, float) for x in v),
    "list of integers": lambda v: type(v) is list and all(type(x) is int for x in v),
    "list of objects": lambda v: type(v) is list and all(type(x) is dict for x in v),
}


def of_type(declared: str, value: Any) -> bool:
    kind, _, null = declared.partition(" or ")
    return null == "null" if value is None else JSON_TYPES[kind](value)


@pytest.mark.timing
def test_every_key_of_a_real_sweep_record_is_in_the_schema_docs_with_its_type(tmp_path: Path) -> None:
    """Keys from an actual timed sweep, not a list: closed-form and traced (user block) cells, a model cell, all
    three tools, a failed combination and a failed user block, so that no record field can go undescribed."""
    import json

    from blockprof.runs import RECORDS
    from blockprof.sweep import sweep

    blocks = ("basic", "bottleneck", "tests.user_block_fixtures:bottleneck", "tests.user_block_fixtures:raises")
    model = {"model": "examples.models:small_cnn", "input_shape": [1, 3, 8, 8]}
    grid = Grid(blocks=blocks, channels=(16,), spatial=(4,), options={"groups": (1, 3)}, models=(model,))
    timing = {"min_run_time": 0.005, "rounds": 2, "min_runs": 4, "threads": 1}
    sweep(grid, tmp_path / "run", tools=("torch", "fvcore", "thop"), time=True, **timing)
    records = [json.loads(line) for line in (tmp_path / "run" / RECORDS).read_text().splitlines()]
    assert {r["count_source"] for r in records if r["status"] == "ok"} == {"analytic", "trace"}
    assert [r["model"] for r in records if "model" in r] == [model["model"]]
    assert sum(r["status"] == "error" for r in records) == 2 and all(
        "fwd_ms" in r for r in records if r["status"] == "ok"
    )
    doc = (ROOT / "docs" / "reference" / "schema.md").read_text(encoding="utf-8")
    keys = sorted(set().union(*records))
    assert [k for k in keys if f"| `{k}` | {schema.RECORD_TYPES.get(k)} |" not in doc] == []
    wrong = [
        (r.get("block", r.get("model")), k, v)
        for r in records
        for k, v in r.items()
        if not of_type(schema.RECORD_TYPES[k], v)
    ]
    assert wrong == []
    described = {*schema.RECORD_FIELDS, *schema.TIMING_RECORD_FIELDS, *schema.SWEEP_RECORD_FIELDS}
    assert set(schema.RECORD_TYPES) == described  # a type for each described field, and none for an unknown one


def test_every_key_of_real_network_records_is_in_the_schema_docs_with_its_type() -> None:
    """`network --format json` records (closed form with the three tools, a traced user-block network, and a
    swapped one with no published figure): every key and every stage key documented, each value of its type."""
    from blockprof.networks import network_count

    records = [
        network_count("resnet18", None, 64, 1, ("torch", "fvcore", "thop")),
        network_count("resnet18", "tests.user_block_fixtures:bottleneck", 64, 1, ("torch",)),
        network_count("mobilenet_v2", "bottleneck", 32, 1, ()),
    ]
    assert [r["count_source"] for r in records] == ["analytic", "trace", "analytic"]
    assert records[2]["published_params"] is None
    types = {**schema.RECORD_TYPES, **schema.NETWORK_TYPES}
    doc = (ROOT / "docs" / "reference" / "schema.md").read_text(encoding="utf-8")
    rows = [*records, *(stage for r in records for stage in r["stages"])]
    keys = sorted(set().union(*rows))
    assert [k for k in keys if f"| `{k}` | {types.get(k)} |" not in doc] == []
    assert [(k, v) for row in rows for k, v in row.items() if not of_type(types[k], v)] == []
    assert set(schema.NETWORK_TYPES) == {*schema.NETWORK_RECORD_FIELDS, *schema.STAGE_RECORD_FIELDS}


@pytest.mark.parametrize("name", sorted(NUMERIC))
def test_whole_floats_become_ints_through_the_python_api_and_a_grid_file(name: str, tmp_path: Path) -> None:
    """A TOML or data-frame value like 4.0 reaches the spec as the int 4 (the width_per_group=4.0 bug)."""
    block, value = NUMERIC[name]
    kind = schema.field(name).kind
    fields: dict[str, Any] = {"block": block, "in_channels": 64, name: float(value)}
    if name == "width_per_group":
        fields["groups"] = 2
    spec = BlockSpec(**fields)
    assert type(getattr(spec, name)) is kind and getattr(spec, name) == value
    key = {"in_channels": "channels"}.get(name, name)
    toml = f'blocks = ["{block}"]\n{key} = [{float(value)!r}]\n' + ("groups = 2\n" if name == "width_per_group" else "")
    (tmp_path / "g.toml").write_text(toml, encoding="utf-8")
    (grid_spec,) = Grid.from_toml(tmp_path / "g.toml").specs()
    assert type(getattr(grid_spec, name)) is kind and getattr(grid_spec, name) == value


@pytest.mark.parametrize("name", [n for n in sorted(NUMERIC) if schema.field(n).kind is int])
def test_int_fields_refuse_fractions_everywhere(name: str, tmp_path: Path) -> None:
    expected = "must be one of 3, 5, 7" if name == "kernel" else "must be a whole number"
    with pytest.raises(BlockprofError, match=expected):
        BlockSpec(**{"block": "bottleneck", "in_channels": 64, name: 2.5})
    key = {"in_channels": "channels"}.get(name, name)
    (tmp_path / "g.toml").write_text(f'blocks = ["bottleneck"]\n{key} = 2.5\n', encoding="utf-8")
    with pytest.raises(BlockprofError, match=expected):
        Grid.from_toml(tmp_path / "g.toml")
    flag = "--channels" if name == "in_channels" else schema.field(name).option
    result = CliRunner().invoke(cli, ["compare", "--blocks", NUMERIC[name][0], flag, "2.5"])
    assert result.exit_code == 2 and expected in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"in_channels": 2**20 + 1}, "in_channels must be a whole number in [1, 1048576]"),
        ({"spatial": 2**16 + 1}, "spatial must be a whole number in [1, 65536]"),
        ({"batch": 2**16 + 1}, "batch must be a whole number in [1, 65536]"),
        ({"in_channels": float("inf")}, "in_channels must be"),
        ({"se": float("nan")}, "se must be a number in [0, 1)"),
        ({"stride": True}, "stride must be"),
        ({"kernel": 4}, "kernel must be one of 3, 5, 7"),
        ({"activation": "gelu"}, "activation must be one of relu, relu6, hardswish, silu"),
        ({"se_style": "fancy"}, "se_style must be one of standard, mobilenetv3, efficientnet, regnet"),
    ],
)
def test_bounds_hold_in_the_python_api(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(BlockprofError) as info:
        BlockSpec(**{"block": "inverted_residual", "in_channels": 16, **fields})
    assert message in str(info.value)


def test_a_huge_width_in_a_suite_is_one_line_exit_2(tmp_path: Path) -> None:
    suite = tmp_path / "suite.toml"
    suite.write_text('[[cells]]\nblocks = ["basic"]\nchannels = [9223372036854775807]\n', encoding="utf-8")
    with pytest.raises(BlockprofError, match=r"channels must be a whole number in \[1, 1048576\]"):
        load_suite(suite)
    result = CliRunner().invoke(cli, ["check", "--suite", str(suite), "--baseline", str(tmp_path / "b.json")])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "1048576" in result.output


def test_the_width_per_group_bug_through_compare_with_time() -> None:
    """compare --time rebuilt specs from a data frame whose width_per_group column was float (4.0)."""
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--blocks",
            "basic,bottleneck",
            "--groups",
            "32",
            "--width-per-group",
            "4",
            "--channels",
            "256",
            "--spatial",
            "14",
            "--time",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--min-run-time",
            "0.01",
            "--tools",
            "torch",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    bottleneck = next(r for r in rows if r["block"] == "bottleneck")
    assert bottleneck["width_per_group"] == 4 and bottleneck["groups"] == 32 and bottleneck["fwd_ms"] > 0


def test_a_default_spelt_out_is_the_same_cell() -> None:
    plain, spelt = (
        BlockSpec("bottleneck", 64, spatial=28),
        BlockSpec("bottleneck", 64, spatial=28, expansion=4, kernel=3, activation="relu"),
    )
    assert plain != spelt and resolve(plain)[1] == resolve(spelt)[1]
    assert hash(resolve(plain)[1]) == hash(resolve(spelt)[1])
    assert cell_id(plain) == cell_id(spelt) == "bottleneck 64→64 @ 1×64×28×28"
    assert resolve(BlockSpec("bottleneck", 64, expansion=2))[1].label == "bottleneck 64→64 t2"
    suite = suite_from_toml(
        {
            "cells": [
                {"blocks": ["bottleneck"], "channels": [64]},
                {"blocks": ["bottleneck"], "channels": [64], "expansion": 4},
            ]
        }
    )
    assert len(suite.cells) == 1


def test_resolved_spec_fills_every_default() -> None:
    _, r = resolve(BlockSpec("inverted_residual", 32))
    assert isinstance(r, ResolvedSpec)
    assert (r.expansion, r.kernel, r.activation, r.se_style, r.out_channels) == (6.0, 3, "relu6", "standard", 32)
    _, b = resolve(BlockSpec("basic", 32, activation="silu"))
    assert (b.expansion, b.kernel, b.activation) == (1.0, 3, "silu") and b.label == "basic 32→32 silu"
    assert (
        resolve(BlockSpec("inverted_residual", 32, kernel=5, se=0.25))[1].label == "inverted_residual 32→32 k5 se0.25"
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.kernel = 5  # type: ignore[misc]
    assert set(r.as_dict()) == {f.name for f in dataclasses.fields(BlockSpec)}


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            BlockSpec("basic", 32, kernel=5),
            "basic does not take kernel (--kernel 5); only inverted_residual, fused_mbconv take it",
        ),
        (
            BlockSpec("bottleneck", 32, se=0.25, se_style="efficientnet"),
            "bottleneck does not take se_style (--se-style efficientnet); only inverted_residual takes it",
        ),
        (
            BlockSpec("inverted_residual", 32, groups=2),
            "inverted_residual does not take groups (--groups 2); only bottleneck takes it",
        ),
        (BlockSpec("basic", 32, expansion=2), "basic does not take expansion"),
    ],
)
def test_a_field_the_block_does_not_take_names_the_blocks_that_do(spec: BlockSpec, message: str) -> None:
    with pytest.raises(BlockprofError) as info:
        resolve(spec)
    assert message in str(info.value)


def test_labels_marks_and_the_se_style_mark() -> None:
    assert (
        schema.label(
            {"block": "bottleneck", "in_channels": 64, "out_channels": 64, "se": 0.25, "se_style": "efficientnet"}
        )
        == "bottleneck 64→64 se0.25:efficientnet"
    )
    assert schema.marks({"stride": 2, "kernel": 5, "activation": "silu"}) == ["s2", "k5", "silu"]


@pytest.mark.parametrize("block, c_out", [("basic", 128), ("bottleneck", 256), ("inverted_residual", 32)])
def test_57_at_stride_2_gives_29_and_the_counts_agree(block: str, c_out: int) -> None:
    """The analytic counts at a size the stride does not divide, against module.parameters() and FlopCounterMode."""
    spec = BlockSpec(block, 64, out_channels=c_out, stride=2, spatial=57, se=0.25)
    module = build(spec).eval()
    x = torch.randn(spec.input_shape)
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        y = module(x)
    a = analytic_count(spec)
    assert tuple(y.shape) == (1, c_out, 29, 29) and resolve(spec)[1].output_spatial == 29
    assert a.params == sum(p.numel() for p in module.parameters())
    assert a.flops == flops.get_total_flops()


@pytest.mark.parametrize(
    "activation, kind",
    [("relu", torch.nn.ReLU), ("relu6", torch.nn.ReLU6), ("hardswish", torch.nn.Hardswish), ("silu", torch.nn.SiLU)],
)
def test_inverted_residual_kernel_and_activation_reach_the_module(activation: str, kind: type) -> None:
    module = build(BlockSpec("inverted_residual", 16, kernel=7, activation=activation, spatial=9))
    assert module.conv_dw.kernel_size == (7, 7) and module.conv_dw.padding == (3, 3)
    assert isinstance(module.act1, kind) and isinstance(module.act2, kind)
    ops = {
        r.layer.name: r.layer.op
        for r in analytic_count(BlockSpec("inverted_residual", 16, kernel=7, activation=activation)).rows
    }
    assert ops["act1"] == ops["act2"] == activation and ops["conv_dw"] == "conv2d"


@pytest.mark.slow
def test_cli_new_options_reach_the_record() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--blocks",
            "basic,inverted_residual",
            "--channels",
            "32",
            "--spatial",
            "9",
            "--stride",
            "2",
            "--kernel",
            "5",
            "--activation",
            "silu",
            "--tools",
            "torch",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = {r["block"]: r for r in json.loads(result.stdout)}
    assert rows["inverted_residual"]["kernel"] == 5 and rows["inverted_residual"]["activation"] == "silu"
    assert (
        rows["basic"]["kernel"] == 3 and rows["basic"]["activation"] == "silu"
    )  # --kernel applies only to the blocks that take it
    assert all(r["torch_agrees"] for r in rows.values())


def test_the_committed_baseline_still_loads_and_matches_its_suite() -> None:
    from blockprof.regress import load_baseline

    suite = load_suite(ROOT / "benchmarks" / "suite.toml")
    baseline = load_baseline(ROOT / "benchmarks" / "baseline.json")
    assert set(suite.ids) == set(baseline.cells)
