"""Whole networks: the analytic count against torchvision's published totals, the
module's own parameters and PyTorch's flop counter, stage by stage; the --block
swap; user blocks inside a network; the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from torch.utils.flop_counter import FlopCounterMode

from blockprof.api import explain_network
from blockprof.cli import cli
from blockprof.commands.network import cli_command
from blockprof.counting.reconcile import _grouped_wgrad_bug
from blockprof.errors import BlockprofError
from blockprof.networks import (
    PUBLISHED_PARAMS,
    analytic_network,
    build_network,
    default_spatial,
    layout,
    names,
    network_count,
    traced_network,
)
from blockprof.networks.count import NETWORK_FIELDS, STAGE_FIELDS
from blockprof.networks.layout import REGNET_PARAMS, regnet_stages, round_to_multiple_of
from blockprof.records import COUNT_FIELDS
from blockprof.spec import NetworkSpec

# torchvision's *_Weights.DEFAULT.meta: num_params, "_ops" (its GFLOPS: conv + linear MACs in G, rounded
# to 3 decimals) and the crop size the weights are evaluated at; then the exact MACs that torchvision's own
# module performs at that size (FlopCounterMode / 2 on torchvision 0.29's model, on the meta device).
# Written out here rather than imported, so the tests check blockprof against torchvision, not itself.
PUBLISHED = {
    "resnet18": (11_689_512, 1.814, 224, 1_814_073_344),
    "resnet34": (21_797_672, 3.664, 224, 3_663_761_408),
    "resnet50": (25_557_032, 4.089, 224, 4_089_184_256),
    "resnet101": (44_549_160, 7.801, 224, 7_801_405_440),
    "resnet152": (60_192_808, 11.514, 224, 11_513_626_624),
    "resnext50_32x4d": (25_028_904, 4.23, 224, 4_230_479_872),
    "resnext101_32x8d": (88_791_336, 16.414, 224, 16_414_015_488),
    "resnext101_64x4d": (83_455_272, 15.46, 224, 15_460_270_080),
    "wide_resnet50_2": (68_883_240, 11.398, 224, 11_398_021_120),
    "wide_resnet101_2": (126_886_696, 22.753, 224, 22_753_050_624),
    "regnet_x_400mf": (5_495_976, 0.414, 224, 413_812_608),
    "regnet_x_800mf": (7_259_656, 0.8, 224, 799_699_712),
    "regnet_x_1_6gf": (9_190_136, 1.603, 224, 1_602_849_792),
    "regnet_x_3_2gf": (15_296_552, 3.177, 224, 3_176_621_952),
    "regnet_x_8gf": (39_572_648, 7.995, 224, 7_995_132_416),
    "regnet_x_16gf": (54_278_536, 15.941, 224, 15_940_755_456),
    "regnet_x_32gf": (107_811_560, 31.736, 224, 31_735_929_792),
    "regnet_y_400mf": (4_344_144, 0.402, 224, 401_842_848),
    "regnet_y_800mf": (6_432_512, 0.834, 224, 833_856_256),
    "regnet_y_1_6gf": (11_202_430, 1.612, 224, 1_612_076_160),
    "regnet_y_3_2gf": (19_436_338, 3.176, 224, 3_176_482_752),
    "regnet_y_8gf": (39_381_472, 8.473, 224, 8_473_070_592),
    "regnet_y_16gf": (83_590_140, 15.912, 224, 15_911_510_272),
    "regnet_y_32gf": (145_046_770, 32.28, 224, 32_279_552_832),
    "regnet_y_128gf": (644_812_894, 374.57, 384, 374_570_006_400),
    "mobilenet_v2": (3_504_872, 0.301, 224, 300_774_272),
    "mobilenet_v3_small": (2_542_856, 0.057, 224, 56_510_400),
    "mobilenet_v3_large": (5_483_032, 0.217, 224, 216_589_760),
    "efficientnet_b0": (5_288_548, 0.386, 224, 385_814_752),
    "efficientnet_b1": (7_794_184, 0.687, 240, 686_802_832),
    "efficientnet_b2": (9_109_994, 1.088, 288, 1_087_529_456),
    "efficientnet_b3": (12_233_232, 1.827, 300, 1_827_141_392),
    "efficientnet_b4": (19_341_616, 4.394, 380, 4_393_771_024),
    "efficientnet_b5": (30_389_784, 10.266, 456, 10_266_384_752),
    "efficientnet_b6": (43_040_704, 19.068, 528, 19_067_593_536),
    "efficientnet_b7": (66_347_960, 37.746, 600, 37_745_884_192),
    "efficientnet_v2_s": (21_458_488, 8.366, 384, 8_365_617_152),
    "efficientnet_v2_m": (54_139_356, 24.582, 480, 24_582_460_384),
    "efficientnet_v2_l": (118_515_272, 56.08, 480, 56_079_699_008),
    "mnasnet0_5": (2_218_512, 0.104, 224, 104_455_968),
    "mnasnet0_75": (3_170_208, 0.215, 224, 215_493_104),
    "mnasnet1_0": (4_383_312, 0.314, 224, 314_415_872),
    "mnasnet1_3": (6_282_256, 0.526, 224, 526_362_432),
}

PUBLISHED_PARAMS_5 = {n: PUBLISHED[n][0] for n in ("resnet18", "resnet34", "resnet50", "resnet101", "mobilenet_v2")}
# conv + linear MACs at 1×3×224×224 of the five original networks
MACS_224 = {n: PUBLISHED[n][3] for n in PUBLISHED_PARAMS_5}


def meta_module(name: str, block: str | None = None) -> torch.nn.Module:
    with torch.device("meta"):
        return build_network(name, block, spatial=224).eval()


def torch_flops(module: torch.nn.Module, shape: tuple[int, ...]) -> int:
    with FlopCounterMode(display=False) as fc:
        out = module(torch.empty(shape, device="meta"))
    assert tuple(out.shape) == (shape[0], 1000)
    return fc.get_total_flops()


def test_names() -> None:
    assert names() == list(PUBLISHED) and len(names()) == 43
    assert {n: p for n, (p, *_) in PUBLISHED.items()} == PUBLISHED_PARAMS
    assert {n: default_spatial(n) for n in names()} == {n: size for n, (_, _, size, _) in PUBLISHED.items()}


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_params_and_exact_macs(name: str) -> None:
    """At the default size: params = torchvision's num_params = the module's; MACs = what torchvision's
    module performs, which rounded to 3 decimals in G is its published GFLOPS; torch's counter agrees."""
    params, gflops, size, macs = PUBLISHED[name]
    count = analytic_network(name)
    assert count.layout.spec.spatial == size
    total = count.total
    with torch.device("meta"):
        module = build_network(name).eval()
    assert total.params == params == sum(p.numel() for p in module.parameters())
    assert total.params_conv == sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Conv2d))
    assert total.macs == macs and round(total.macs / 1e9, 3) == gflops == count.published_gflops
    assert torch_flops(module, (1, 3, size, size)) == 2 * total.macs == total.flops
    # forward + input gradient + weight gradient, but the stem conv reads data: no input gradient there
    stem = total.rows[0]
    assert stem.layer.op == "conv2d" and stem.layer.in_channels == 3
    assert total.train_flops == 3 * total.flops - 2 * stem.cost.macs


def test_regnet_generator_gives_the_papers_widths() -> None:
    """(width, depth, group width) per stage as torchvision's BlockParams.from_init_params gives them."""
    assert regnet_stages(*REGNET_PARAMS["regnet_x_400mf"]) == [(32, 1, 16), (64, 2, 16), (160, 7, 16), (400, 12, 16)]
    assert regnet_stages(*REGNET_PARAMS["regnet_y_800mf"]) == [(64, 1, 16), (144, 3, 16), (320, 8, 16), (784, 2, 16)]
    assert regnet_stages(*REGNET_PARAMS["regnet_y_32gf"]) == [
        (232, 2, 232),
        (696, 5, 232),
        (1392, 12, 232),
        (3712, 1, 232),
    ]


def test_efficientnet_compound_scaling() -> None:
    """B4 (width 1.4, depth 1.8): widths _make_divisible(c·1.4, 8), depths ceil(n·1.8)."""
    lay = layout(NetworkSpec("efficientnet_b4", spatial=380))
    stages = [s for s in lay.stages if s.blocks]
    assert [len(s.blocks) for s in stages] == [2, 4, 4, 6, 6, 8, 2]
    assert [s.out_channels for s in stages] == [24, 32, 56, 112, 160, 272, 448]
    assert lay.stages[0].out_channels == 48 and lay.stages[-1].layers[0].out_channels == 4 * 448
    drops = [b.drop_path for s in stages for b in s.blocks]
    assert drops[0] == 0.0 and drops[-1] == pytest.approx(0.2 * 31 / 32)


def test_mnasnet_width_rounding() -> None:
    assert [round_to_multiple_of(c * 0.75, 8) for c in (32, 16, 24, 40, 80, 96, 192, 320)] == [
        24,
        16,
        24,
        32,
        64,
        72,
        144,
        240,
    ]
    assert (round_to_multiple_of(83, 8), round_to_multiple_of(84, 8)) == (80, 88)  # torchvision's docstring


def test_stochastic_depth_is_the_real_module() -> None:
    """EfficientNet's residual branches carry stochastic depth: train mode drops whole samples'
    branches (so two forwards differ), eval mode is the identity; no count changes."""
    torch.manual_seed(0)
    module = build_network("efficientnet_b0")
    block = module.features[6][3]  # the 15th of 16 blocks: p = 0.2 · 14/16
    assert block.drop_path.p == pytest.approx(0.2 * 14 / 16)
    x = torch.randn(16, 192, 7, 7)
    block.train()
    branch_outputs = {tuple((block(x) - x).flatten(1).abs().sum(1).gt(0).tolist()) for _ in range(4)}
    assert any(not all(kept) for kept in branch_outputs), "no sample's branch was ever dropped"
    block.eval()
    with torch.no_grad():
        assert torch.equal(block(x), block(x))
    row = next(
        r for r in analytic_network("efficientnet_b0").stages[6].count.rows if r.layer.name == "features.6.3.drop_path"
    )
    assert row.cost.params == row.cost.macs == 0


@pytest.mark.parametrize("name, v1_macs, paper", [("resnet50", 3_857_973_248, 3.8), ("resnet101", 7_570_194_432, 7.6)])
def test_v15_against_the_papers_v1(name: str, v1_macs: int, paper: float) -> None:
    """He et al. (2016) give ResNet-50/101 3.8 G / 7.6 G multiply-adds: v1, stride on the first
    1×1 of a downsampling block. torchvision (and blockprof) put it on the 3×3 ("v1.5"), so that
    1×1 runs at four times the positions. Moving the stride back in the module gives v1."""
    module = meta_module(name)
    for stage in (module.layer2, module.layer3, module.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    v1 = torch_flops(module, (1, 3, 224, 224)) // 2
    # each of the three blocks saves its 1×1's MACs at 3/4 of the positions: (s² − (s/2)²)·C_in·inner
    saved = [(s * s - (s // 2) ** 2) * c_in * w for s, c_in, w in ((56, 256, 128), (28, 512, 256), (14, 1024, 512))]
    assert saved == [77_070_336] * 3
    assert v1 == MACS_224[name] - sum(saved) == v1_macs
    assert abs(v1 / 1e9 - paper) < 0.06  # the paper's figures are rounded to 0.1 G


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
@pytest.mark.parametrize("spatial, batch", [(160, 1), (256, 2), (32, 1), (57, 1), (225, 2), (7, 1)])
def test_other_input_sizes(name: str, spatial: int, batch: int) -> None:
    count = analytic_network(name, spatial=spatial, batch=batch).total
    assert torch_flops(meta_module(name), (batch, 3, spatial, spatial)) == count.flops
    assert count.params == PUBLISHED[name][0]


@pytest.mark.parametrize(
    "name", ["efficientnet_v2_s", "mobilenet_v3_small", "regnet_y_400mf", "mnasnet0_5", "resnext50_32x4d"]
)
@pytest.mark.parametrize("spatial", [57, 113, 224])
def test_any_input_size(name: str, spatial: int) -> None:
    """Sizes that are not multiples of 32: every stride-2 conv maps H to (H − 1)//2 + 1, as torch's."""
    count = analytic_network(name, spatial=spatial)
    with torch.device("meta"):
        module = build_network(name).eval()
    assert torch_flops(module, (1, 3, spatial, spatial)) == count.total.flops
    assert count.published_gflops is None or spatial == PUBLISHED[name][2]


def test_57_maps_to_29() -> None:
    lay = layout(NetworkSpec("efficientnet_b0", spatial=57))
    assert [s.out_size for s in lay.stages] == [29, 29, 15, 8, 4, 4, 2, 2, 1]


def test_stage_rows_are_checked_by_the_module_and_torch() -> None:
    record = network_count("resnet50", tools=("torch",))
    stages = record["stages"]
    assert [s["stage"] for s in stages] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    assert [s["output"] for s in stages] == ["64×56×56", "256×56×56", "512×28×28", "1024×14×14", "2048×7×7", "1000×1×1"]
    for s in stages:
        assert s["params"] == s["module_params"] and s["macs"] == s["torch_macs"], s["stage"]
    for field in ("params", "params_conv", "macs", "flops", "bwd_input_macs", "bwd_weight_macs", "train_flops"):
        assert sum(s[field] for s in stages) == record[field]
    assert stages[0]["params"] == 3 * 7 * 7 * 64 + 2 * 64  # stem conv1 + bn1
    assert stages[0]["bwd_input_macs"] == 0 and stages[0]["bwd_weight_macs"] == stages[0]["macs"]
    assert stages[-1]["params"] == 2048 * 1000 + 1000 and stages[-1]["macs"] == 2048 * 1000  # fc
    assert record["torch_agrees"] and record["torch_train_agrees"]


def test_mobilenet_stages_follow_the_papers_table() -> None:
    lay = layout(NetworkSpec("mobilenet_v2"))
    blocks = [s.blocks for s in lay.stages if s.blocks]
    settings = [(b[0].spec.expansion, b[0].spec.out_channels, len(b), b[0].spec.stride) for b in blocks]
    assert settings == [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    assert next(s.name for s in lay.stages) == "stem" and lay.stages[-1].modules == (
        "features.18",
        "avgpool",
        "classifier",
    )


@pytest.mark.parametrize(
    "name, block",
    [
        ("resnet50", "inverted_residual"),
        ("resnet50", "basic"),
        ("resnet18", "bottleneck"),
        ("mobilenet_v2", "bottleneck"),
        ("mobilenet_v2", "basic"),
        ("resnet101", "inverted_residual"),
        ("efficientnet_b0", "fused_mbconv"),
        ("efficientnet_v2_s", "inverted_residual"),
        ("regnet_y_400mf", "bottleneck"),
        ("mobilenet_v3_small", "basic"),
        ("resnet50", "regnet_x"),
        ("mnasnet0_5", "fused_mbconv"),
    ],
)
def test_block_swap_keeps_depth_width_and_stride(name: str, block: str) -> None:
    native, swapped = layout(NetworkSpec(name)), layout(NetworkSpec(name, block))
    assert swapped.swapped and {b.spec.block for s in swapped.stages for b in s.blocks} == {block}
    for a, b in zip(native.stages, swapped.stages, strict=False):
        assert (a.name, len(a.blocks), a.out_channels, a.out_size) == (
            b.name,
            len(b.blocks),
            b.out_channels,
            b.out_size,
        )
        assert [x.spec.stride for x in a.blocks] == [x.spec.stride for x in b.blocks]
    count = analytic_network(name, block, spatial=224).total
    module = meta_module(name, block)
    assert count.params == sum(p.numel() for p in module.parameters()) != PUBLISHED[name][0]
    assert torch_flops(module, (1, 3, 224, 224)) == count.flops


def test_naming_the_native_block_is_the_published_network() -> None:
    for name, block in (
        ("resnet50", "bottleneck"),
        ("resnet18", "basic"),
        ("mobilenet_v2", "inverted_residual"),
        ("efficientnet_b0", "inverted_residual"),
        ("regnet_y_400mf", "regnet_y"),
        ("resnext50_32x4d", "bottleneck"),
    ):
        count = analytic_network(name, block)
        assert (
            not count.layout.swapped
            and count.total.macs == PUBLISHED[name][3]
            and count.published_params == PUBLISHED[name][0]
        )


# ResNet-50's stem conv: 7×7/2, 3→64, to 112×112: the one layer whose input (the data) needs no gradient
STEM_MACS_224 = 112 * 112 * 3 * 7 * 7 * 64  # 118,013,952


@pytest.mark.slow
def test_user_block_network_is_traced() -> None:
    """blockprof's own Bottleneck behind the user-block door rebuilds ResNet-50 exactly, counted by the
    tracer: params are module.parameters(), MACs the published network's, and the training step the
    backward autograd runs, which is FlopCounterMode's own count here (no grouped conv) but not the
    "3 × forward" convention: that one also counts the stem conv's input gradient, 2 × 118,013,952 FLOPs."""
    record = network_count("resnet50", "tests.user_block_fixtures:bottleneck", tools=("torch",))
    module = meta_module("resnet50", "tests.user_block_fixtures:bottleneck")
    assert record["count_source"] == "trace" and record["swapped"]
    assert record["params"] == sum(p.numel() for p in module.parameters()) == PUBLISHED["resnet50"][0]
    assert record["macs"] == MACS_224["resnet50"] and record["torch_agrees"]
    assert record["train_flops"] == record["torch_train_flops"] and record["torch_train_agrees"]
    assert 3 * record["flops"] - record["train_flops"] == 2 * STEM_MACS_224 == 236_027_904
    stages = record["stages"]
    for field in ("params", "params_conv", "macs", "flops", "bwd_input_macs", "bwd_weight_macs", "train_flops"):
        assert sum(s[field] for s in stages) == record[field], field
    for s in stages:
        assert s["macs"] == s["torch_macs"] and s["params"] == s["module_params"], s["stage"]
    # the same network through the registered block's closed form: every field and stage row equal
    native = network_count("resnet50", tools=())
    fields = ("params", "params_conv", "macs", "bwd_input_macs", "bwd_weight_macs", "train_flops")
    assert [[s[f] for f in fields] for s in stages] == [[s[f] for f in fields] for s in native["stages"]]
    with pytest.raises(BlockprofError, match="no closed form"):
        analytic_network("resnet50", "tests.user_block_fixtures:bottleneck")


@pytest.mark.parametrize(
    "name, block",
    [
        ("resnet50", "bottleneck"),
        ("resnext50_32x4d", "bottleneck"),
        ("mobilenet_v2", "inverted_residual"),
        ("resnet18", "basic"),
        ("efficientnet_b0", "inverted_residual"),
        ("regnet_y_400mf", "regnet_y"),
    ],
)
def test_traced_network_equals_the_closed_form(name: str, block: str) -> None:
    """A registered block named with --block, counted by the tracer instead: the closed form exactly,
    totals and every stage (grouped and depthwise convs included, where FlopCounterMode overcounts)."""
    traced = traced_network(name, block, spatial=64)
    count = analytic_network(name, block, spatial=64)
    assert traced.trace.totals() == count.total.totals()
    assert traced.stage_totals() == [s.count.totals() for s in count.stages]


def test_user_block_with_grouped_convs_names_the_torch_bug() -> None:
    """ResNeXt's 32-group 3×3 as a user block: the trace counts its weight gradient once,
    FlopCounterMode 32 times; the trace equals the registered block's closed form."""
    record = network_count("resnext50_32x4d", "tests.user_block_fixtures:resnext", spatial=64, tools=("torch",))
    count = analytic_network("resnext50_32x4d", spatial=64)
    assert record["count_source"] == "trace" and record["train_flops"] == count.total.train_flops
    assert record["torch_train_agrees"] is False and "grouped conv" in record["torch_train_note"]
    assert record["torch_train_flops"] == _grouped_wgrad_bug(count.total)


def test_user_block_network_explained_from_its_trace() -> None:
    """--explain lists every product of every stage with its formula; each stage's sums and the
    totals add up, and the training step is the record's."""
    text = explain_network("resnet18", "examples.user_blocks:convnext_block")
    record = network_count("resnet18", "examples.user_blocks:convnext_block", tools=())
    assert "no closed form, so the network was traced op by op" in text
    assert "  layer1.0.conv_dw  convolution  56·56·1·7·7·64   =       9,834,496" in text  # depthwise 7×7
    for s in record["stages"]:
        line = next(ln for ln in text.splitlines() if ln.startswith(f"  {s['stage']} MACs:"))
        sides = line.split(":", 1)[1].split("=")  # "a + b + … = total", or the one term
        assert int(sides[-1].replace(",", "")) == s["macs"] == sum(int(t.replace(",", "")) for t in sides[0].split("+"))
    assert f"= {record['train_flops']:,} FLOPs" in text
    assert any(ln.startswith("  params: ") and ln.endswith(f"= {record['params']:,}") for ln in text.splitlines())
    assert "One block's own derivation: blockprof explain examples.user_blocks:convnext_block --channels 64" in text


def test_convnext_blocks_in_a_resnet() -> None:
    record = network_count("resnet18", "examples.user_blocks:convnext_block", tools=("torch",))
    module = meta_module("resnet18", "examples.user_blocks:convnext_block")
    assert record["params"] == sum(p.numel() for p in module.parameters())
    assert 2 * record["macs"] == torch_flops(module, (1, 3, 224, 224))
    c = 64  # layer1 is two 64→64 ConvNeXt blocks at 56×56: 8C² + 58C params, 56²·(49C + 8C²) MACs each
    assert record["stages"][1]["params"] == 2 * (8 * c * c + 58 * c)
    assert record["stages"][1]["macs"] == 2 * 56 * 56 * (49 * c + 8 * c * c)


@pytest.mark.slow
def test_all_tools_agree_on_resnet18() -> None:
    record = network_count("resnet18")
    assert record["fvcore_agrees"] and record["thop_agrees"] and record["torch_agrees"] and record["torch_train_agrees"]
    assert record["thop_macs"] > record["fvcore_macs"] > record["macs"]  # BN counted 4 vs 2 per value
    assert set(record) <= set(COUNT_FIELDS) | set(NETWORK_FIELDS) | {"block"}
    assert set(record["stages"][0]) <= set(COUNT_FIELDS) | set(STAGE_FIELDS)


def test_mobilenet_training_count_names_the_torch_bug() -> None:
    record = network_count("mobilenet_v2", tools=("torch",))
    assert record["torch_agrees"] and record["torch_train_agrees"] is False
    assert "known FlopCounterMode bug" in record["torch_train_note"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="resnet51"), r"unknown network 'resnet51' \(did you mean resnet50\?\); choose from resnet18, "),
        (dict(name="efficientnetb0"), r"\(did you mean efficientnet_b0\?\)"),
        (
            dict(name="mobilenet_v3_small", block="regnet_x"),
            "mobilenet_v3_small with --block regnet_x: regnet_x: out_channels 24 is not a multiple of the group width 16",
        ),
        (dict(name="mnasnet1_0", block="regnet_y"), "mnasnet1_0 with --block regnet_y: regnet_y: out_channels 24"),
        (dict(name="resnet50", block="nope"), "unknown block 'nope'"),
        (dict(name="resnet50", block="examples.user_blocks:missing"), "has no attribute 'missing'"),
    ],
)
def test_bad_network_input(kwargs: dict, message: str) -> None:
    with pytest.raises(BlockprofError, match=message) as e:
        network_count(**kwargs, tools=("torch",))
    assert "\n" not in str(e.value)


def test_explain_sums_add_up() -> None:
    """Every 'a + b + ... = total' line in the network's derivation is true arithmetic."""
    text = explain_network("resnet101")
    sums = re.findall(r"(?<![\d,·])([\d,]+(?: \+ [\d,]+)+) = ([\d,]+)", text)  # not formulas like 2048·1000 + 1000
    assert len(sums) == 1 + 4 * 2 + 2  # stem params, each stage's params and MACs, the two totals
    for terms, total in sums:
        assert sum(int(t.replace(",", "")) for t in terms.split(" + ")) == int(total.replace(",", ""))
    assert "= 44,549,160 (torchvision publishes 44,549,160)" in text
    assert "= 7,801,405,440 = 15,602,810,880 FLOPs" in text
    assert (
        "blockprof explain bottleneck --channels 64 --out-channels 256 --spatial 56" in text
    )  # expansion 4: the default


@pytest.mark.parametrize(
    "name", ["efficientnet_b0", "mobilenet_v3_small", "regnet_y_400mf", "efficientnet_v2_s", "resnext50_32x4d"]
)
def test_explain_names_a_command_that_rederives_the_first_block(name: str) -> None:
    """The command the network's derivation ends with gives the first block's own params and MACs."""
    count = analytic_network(name)
    command = explain_network(name).rsplit("One block's own derivation: blockprof ", 1)[1].split()
    code, out, err = run(*command)
    first = next(sc.blocks[0] for sc in count.stages if sc.blocks)
    assert code == 0, err
    assert f"all trainable parameters: {first.params:,}" in out and f"= {first.macs:,} MACs" in out


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_json_is_one_record() -> None:
    result = CliRunner().invoke(cli_command, ["mobilenet_v2", "--format", "json", "--tools", "torch"])
    record = json.loads(result.stdout)
    assert result.exit_code == 0 and isinstance(record, dict)
    for field in ("network", "params", "macs", "flops", "train_flops"):
        assert field in record
    assert (record["params"], record["macs"], record["flops"]) == (
        PUBLISHED["mobilenet_v2"][0],
        MACS_224["mobilenet_v2"],
        2 * MACS_224["mobilenet_v2"],
    )


def test_cli_table_csv_and_explain(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run("network", "resnet34", "--tools", "torch")
    assert code == 0 and "3,663,761,408" in out and "21,797,672" in out
    assert "1 MAC = 2 FLOPs" in out and "torchvision's published count): equal ✓" in out
    code, out, _ = run("network", "resnet18", "--block", "inverted_residual", "--tools", "torch", "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("stage,modules,layout,output,params") and lines[-1].startswith("total,")
    target = tmp_path / "r50.txt"
    code, out, err = run("network", "resnet50", "--explain", "-o", str(target))
    assert code == 0 and "4,089,184,256" in target.read_text() and "wrote" in err
    code, out, _ = run("explain", "resnet18")
    assert code == 0 and "= 11,689,512 (torchvision publishes 11,689,512)" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["network", "resnet51"], "unknown network 'resnet51' (did you mean resnet50?)"),
        (["network", "regnet_y_800gf"], "(did you mean regnet_y_800mf?)"),
        (["network", "mobilenet_v3_small", "--block", "regnet_x"], "is not a multiple of the group width 16"),
        (["network", "resnet50", "--block", "no_such_pkg_xyz:f"], "no module named 'no_such_pkg_xyz'"),
        (["network", "resnet50", "--explain", "--format", "json"], "drop --format"),
        (["explain", "resnet50", "--channels", "64"], "a network takes only --spatial and --batch"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (out, err)


def test_command_module_raises_blockprof_error() -> None:
    """Standalone, the command raises BlockprofError; the CLI's group turns it into exit 2."""
    result = CliRunner().invoke(cli_command, ["resnet51"])
    assert isinstance(result.exception, BlockprofError)


def test_network_help_does_not_import_torch() -> None:
    code = (
        "import sys; from blockprof.cli import main; sys.argv=['blockprof','network','--help']\n"
        "try: main()\nexcept SystemExit: pass\nprint('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
    assert "resnet18/34/50/101/152, resnext50_32x4d" in " ".join(out.split())
