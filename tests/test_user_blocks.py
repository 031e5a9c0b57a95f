"""User blocks (``package.module:callable``): counted by the tools, and every bad input
one line that names the block. The callables live in examples/user_blocks.py and
tests/user_block_fixtures.py, importable because pytest runs from the repository root."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from blockprof.api import analytic_count, count
from blockprof.blocks import build, get, resolve
from blockprof.blocks.user import UserBlock
from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec

CONVNEXT = "examples.user_blocks:convnext_block"
FUSED = "examples.user_blocks:FusedMBConv"
FIXTURES = "tests.user_block_fixtures"


def test_registry_routes_a_path_to_a_user_block() -> None:
    definition = get(CONVNEXT)
    assert isinstance(definition, UserBlock) and definition.name == CONVNEXT and not definition.analytic
    assert "ConvNeXt block" in definition.summary


@pytest.mark.parametrize("c, spatial", [(96, 56), (40, 14)])
def test_convnext_counted_by_the_tools(c: int, spatial: int) -> None:
    """Hand-derived: 7×7 depthwise + bias (50C), LayerNorm (2C), 1×1 C→4C + bias (4C² + 4C),
    1×1 4C→C + bias (4C² + C), layer scale (C): 8C² + 58C params; MACs H·W·(49C + 8C²)."""
    record = count(BlockSpec(CONVNEXT, c, spatial=spatial))
    assert record["count_source"] == "trace" and record["params_conv"] == 49 * c + 8 * c * c
    assert record["params"] == record["module_params"] == 8 * c * c + 58 * c
    assert record["macs"] == record["torch_macs"] == record["thop_macs"] == spatial * spatial * (49 * c + 8 * c * c)
    assert record["torch_agrees"] and record["torch_note"] == "= the traced MACs (conv + linear + matmul)"
    assert (
        record["fvcore_agrees"]
        and f"fvcore +{5 * c * spatial * spatial:,}: adds 5× the values of LayerNorm2d (norm)" in record["fvcore_note"]
    )
    assert record["torch_train_agrees"] is False and "groups× too high" in record["torch_train_note"]
    # every product's input and weight gradient cost its forward: 3 forwards' worth, traced exactly;
    # torch's own backward count overcounts the depthwise 7×7
    assert record["train_flops"] == 3 * record["flops"] == 6 * record["macs"]
    assert record["bwd_input_macs"] == record["bwd_weight_macs"] == record["macs"]
    dw_wgrad = spatial * spatial * 49 * c  # the depthwise conv's weight-gradient MACs, counted c× by torch
    assert record["torch_train_flops"] == record["train_flops"] + 2 * (c - 1) * dw_wgrad


def test_class_form_with_stride_and_width_change() -> None:
    cin, cout, s = 32, 48, 2
    spec = BlockSpec(FUSED, cin, out_channels=cout, stride=s, spatial=28)
    module = build(spec)
    y = module(torch.zeros(spec.input_shape))
    assert tuple(y.shape) == (1, cout, 14, 14)
    record = count(spec, tools=("torch",))
    hidden = 4 * cin  # 3×3 conv cin→hidden, BN, 1×1 hidden→cout, BN
    assert record["params"] == 9 * cin * hidden + 2 * hidden + hidden * cout + 2 * cout
    assert record["macs"] == 14 * 14 * (9 * cin * hidden + hidden * cout)


def test_user_block_equal_to_a_registered_one_counts_the_same() -> None:
    """The tools' count of a user block is checked against a closed form where one exists."""
    mine = count(BlockSpec(f"{FIXTURES}:bottleneck", 256, out_channels=512, stride=2, spatial=28))
    ref = count(BlockSpec("bottleneck", 256, out_channels=512, stride=2, spatial=28))
    for field in ("params", "macs", "fvcore_macs", "thop_macs", "torch_macs"):
        assert mine[field] == ref[field], field


def test_no_analytic_formula() -> None:
    spec = BlockSpec(CONVNEXT, 64)
    with pytest.raises(BlockprofError, match="has no analytic formula") as e:
        get(CONVNEXT).layers(spec)
    assert CONVNEXT in str(e.value)
    with pytest.raises(BlockprofError, match="no closed-form count"):
        analytic_count(spec)


def test_meta_failure_falls_back_to_a_real_sample() -> None:
    spec = BlockSpec(f"{FIXTURES}:NeedsValues", 8, stride=2, spatial=16)
    with pytest.raises(RuntimeError, match="cannot be called on meta tensors"), torch.device("meta"):
        build(spec)(torch.empty(spec.input_shape, device="meta"))  # the block cannot run on meta ...
    assert tuple(build(spec)(torch.zeros(spec.input_shape)).shape) == (1, 8, 8, 8)  # ... yet it passes the check


@pytest.mark.parametrize(
    "block, options, message",
    [
        ("examples.user_blocks:", {}, "give it as 'package.module:callable'"),
        (":convnext_block", {}, "give it as 'package.module:callable'"),
        ("a:b:c", {}, "give it as 'package.module:callable'"),
        ("no_such_pkg_xyz.blocks:make", {}, "no module named 'no_such_pkg_xyz'"),
        (
            "examples.user_blocks:missing",
            {},
            "has no attribute 'missing'; it defines ConvNeXtBlock, FusedMBConv, LayerNorm2d, convnext_block",
        ),
        (f"{FIXTURES}:NOT_CALLABLE", {}, "NOT_CALLABLE is of type int, not callable"),
        (
            f"{FIXTURES}:raises",
            {},
            "calling it with (in_channels=64, out_channels=64, stride=1) raised ValueError: cannot build 64 channels",
        ),
        (f"{FIXTURES}:not_a_module", {}, "returned a str, not a torch.nn.Module"),
        (
            f"{FIXTURES}:ignores_stride",
            {"stride": 2},
            "output shape 1×64×56×56 for input 1×64×56×56, expected 1×64×28×28",
        ),
        (
            f"{FIXTURES}:ignores_out_channels",
            {"out_channels": 32, "batch": 3},
            "output shape 3×64×56×56 for input 3×64×56×56, expected 3×32×56×56",
        ),
        (f"{FIXTURES}:returns_tuple", {}, "its forward returned a tuple; expected one tensor of shape 1×64×56×56"),
        (f"{FIXTURES}:CrashesInForward", {}, "its forward on a 1×64×56×56 input raised RuntimeError"),
        (CONVNEXT, {"expansion": 4, "se": 0.25}, "takes only (in_channels, out_channels, stride); drop expansion, se"),
        (CONVNEXT, {"groups": 2}, "drop groups"),
    ],
)
def test_bad_user_blocks_are_one_line_naming_the_block(block: str, options: dict, message: str) -> None:
    with pytest.raises(BlockprofError) as e:
        build(BlockSpec(block, 64, **options))
    text = str(e.value)
    assert message in text and repr(block) in text and "\n" not in text, text


def test_check_imports_but_does_not_build() -> None:
    """resolve() (what compare runs over every cell before counting) catches a bad path,
    while a callable that raises is only caught when the module is built."""
    with pytest.raises(BlockprofError, match="has no attribute"):
        resolve(BlockSpec("examples.user_blocks:missing", 64))
    resolve(BlockSpec(f"{FIXTURES}:raises", 64))


@pytest.mark.slow
def test_compare_cli_with_a_user_block() -> None:
    args = [
        "compare",
        "--blocks",
        "bottleneck",
        "--block",
        CONVNEXT,
        "--channels",
        "96",
        "--spatial",
        "14",
        "--tools",
        "torch",
    ]
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    by_block = {r["block"]: r for r in json.loads(result.stdout)}
    assert result.exit_code == 0 and by_block[CONVNEXT]["params"] == 8 * 96 * 96 + 58 * 96
    assert by_block[CONVNEXT]["params_conv"] == 49 * 96 + 8 * 96 * 96  # the trace sees its conv weights
    table = CliRunner().invoke(cli, args)
    row = next(
        line for line in table.stdout.splitlines() if line.startswith(" " + CONVNEXT) or line.startswith(CONVNEXT)
    )
    assert "79,296" in row and "nan" not in row
    assert "traced op by op for user blocks" in table.stdout  # the footer does not call a traced count analytic
    registered_only = CliRunner().invoke(cli, args[:3] + args[5:])
    assert "equals the analytic count" in registered_only.stdout and "traced" not in registered_only.stdout
    result = CliRunner().invoke(
        cli, ["compare", "--block", f"{FIXTURES}:ignores_stride", "--stride", "2", "--tools", "torch"]
    )
    assert (
        result.exit_code == 2
        and "expected 1×256×28×28" in result.stderr
        and len(result.stderr.strip().splitlines()) == 1
    )


def test_user_block_that_reads_values_is_counted_on_one_real_sample() -> None:
    """The shape check and the trace both fall back to the CPU (inside count()'s meta context)."""
    record = count(BlockSpec(f"{FIXTURES}:NeedsValues", 8, stride=2, spatial=16, batch=3), tools=())
    assert record["count_source"] == "trace" and record["params"] == 8 * 8 * 9
    assert record["macs"] == 3 * 8 * 8 * 8 * 8 * 9 and record["train_flops"] == 6 * record["macs"]


def test_user_block_train_flops_exact_where_torch_overcounts() -> None:
    """A grouped user block (blockprof's own ResNeXt bottleneck behind the user-block door): the
    trace's training FLOPs equal the closed form; torch's counter is off by the grouped 3×3's
    weight gradient, counted `groups` times."""
    spec = BlockSpec(f"{FIXTURES}:resnext", 256, spatial=14)
    ref = count(BlockSpec("bottleneck", 256, groups=32, width_per_group=4, spatial=14), tools=())
    mine = count(spec, tools=("torch",))
    for field in ("params", "params_conv", "macs", "bwd_input_macs", "bwd_weight_macs", "train_flops"):
        assert mine[field] == ref[field], field
    assert mine["torch_train_flops"] > mine["train_flops"]


def test_explain_a_user_block_shows_its_traced_layers() -> None:
    from blockprof.api import explain

    text = explain(BlockSpec(CONVNEXT, 96, spatial=14))
    assert "conv_dw  convolution  14·14·1·7·7·96   =         921,984" in text
    assert "total: 921,984 + 7,225,344 + 7,225,344 = 15,372,672 MACs" in text
    assert "train_flops = 2·(15,372,672 + 15,372,672 + 15,372,672) = 92,236,032 FLOPs" in text
    assert "all trainable parameters: 79,296" in text
