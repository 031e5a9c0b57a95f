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

from blockprof.cli import cli
from blockprof.commands.network import cli_command
from blockprof.errors import BlockprofError
from blockprof.api import explain_network
from blockprof.networks import PUBLISHED_PARAMS, analytic_network, build_network, layout, names, network_count
from blockprof.networks.count import NETWORK_FIELDS, STAGE_FIELDS
from blockprof.records import COUNT_FIELDS
from blockprof.spec import NetworkSpec

# torchvision's *_Weights.DEFAULT.meta["num_params"], written out here rather than
# imported, so the test does not check blockprof against itself
PUBLISHED = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "mobilenet_v2": 3_504_872,
}
# conv + linear MACs at 1×3×224×224, derived from the layer shapes (torchvision
# rounds them to GFLOPS 1.81, 3.66, 4.09, 7.80, 0.30)
MACS_224 = {
    "resnet18": 1_814_073_344,
    "resnet34": 3_663_761_408,
    "resnet50": 4_089_184_256,
    "resnet101": 7_801_405_440,
    "mobilenet_v2": 300_774_272,
}


def meta_module(name: str, block: str | None = None) -> torch.nn.Module:
    with torch.device("meta"):
        return build_network(name, block).eval()


def torch_flops(module: torch.nn.Module, shape: tuple[int, ...]) -> int:
    with FlopCounterMode(display=False) as fc:
        out = module(torch.empty(shape, device="meta"))
    assert tuple(out.shape) == (shape[0], 1000)
    return fc.get_total_flops()


def test_names() -> None:
    assert names() == list(PUBLISHED)
    assert set(PUBLISHED_PARAMS.items()) == set(PUBLISHED.items())


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_params_and_exact_macs(name: str) -> None:
    count = analytic_network(name).total
    module = meta_module(name)
    assert count.params == PUBLISHED[name] == sum(p.numel() for p in module.parameters())
    assert count.params_conv == sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Conv2d))
    assert count.macs == MACS_224[name]
    assert torch_flops(module, (1, 3, 224, 224)) == 2 * count.macs == count.flops
    assert count.train_flops == 3 * count.flops


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
@pytest.mark.parametrize("spatial, batch", [(160, 1), (256, 2), (32, 1)])
def test_other_input_sizes(name: str, spatial: int, batch: int) -> None:
    count = analytic_network(name, spatial=spatial, batch=batch).total
    assert torch_flops(meta_module(name), (batch, 3, spatial, spatial)) == count.flops
    assert count.params == PUBLISHED[name]


def test_stage_rows_are_checked_by_the_module_and_torch() -> None:
    record = network_count("resnet50", tools=("torch",))
    stages = record["stages"]
    assert [s["stage"] for s in stages] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    assert [s["output"] for s in stages] == ["64×56×56", "256×56×56", "512×28×28", "1024×14×14", "2048×7×7", "1000×1×1"]
    for s in stages:
        assert s["params"] == s["module_params"] and s["macs"] == s["torch_macs"], s["stage"]
    for field in ("params", "params_conv", "macs", "flops", "train_flops"):
        assert sum(s[field] for s in stages) == record[field]
    assert stages[0]["params"] == 3 * 7 * 7 * 64 + 2 * 64  # stem conv1 + bn1
    assert stages[-1]["params"] == 2048 * 1000 + 1000 and stages[-1]["macs"] == 2048 * 1000  # fc
    assert record["torch_agrees"] and record["torch_train_agrees"]


def test_mobilenet_stages_follow_the_papers_table() -> None:
    lay = layout(NetworkSpec("mobilenet_v2"))
    blocks = [s.blocks for s in lay.stages if s.blocks]
    settings = [(b[0].spec.expansion, b[0].spec.out_channels, len(b), b[0].spec.stride) for b in blocks]
    assert settings == [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    assert [s.name for s in lay.stages][0] == "stem" and lay.stages[-1].modules == ("features.18", "avgpool", "classifier")


@pytest.mark.parametrize("name, block", [
    ("resnet50", "inverted_residual"), ("resnet50", "basic"), ("resnet18", "bottleneck"),
    ("mobilenet_v2", "bottleneck"), ("mobilenet_v2", "basic"), ("resnet101", "inverted_residual"),
])
def test_block_swap_keeps_depth_width_and_stride(name: str, block: str) -> None:
    native, swapped = layout(NetworkSpec(name)), layout(NetworkSpec(name, block))
    assert swapped.swapped and {b.spec.block for s in swapped.stages for b in s.blocks} == {block}
    for a, b in zip(native.stages, swapped.stages):
        assert (a.name, len(a.blocks), a.out_channels, a.out_size) == (b.name, len(b.blocks), b.out_channels, b.out_size)
        assert [x.spec.stride for x in a.blocks] == [x.spec.stride for x in b.blocks]
    count = analytic_network(name, block).total
    module = meta_module(name, block)
    assert count.params == sum(p.numel() for p in module.parameters()) != PUBLISHED[name]
    assert torch_flops(module, (1, 3, 224, 224)) == count.flops


def test_naming_the_native_block_is_the_published_network() -> None:
    for name, block in (("resnet50", "bottleneck"), ("resnet18", "basic"), ("mobilenet_v2", "inverted_residual")):
        count = analytic_network(name, block)
        assert not count.layout.swapped and count.total.macs == MACS_224[name] and count.published_params == PUBLISHED[name]


@pytest.mark.slow
def test_user_block_network_counted_by_the_tools() -> None:
    """blockprof's own Bottleneck behind the user-block door rebuilds ResNet-50 exactly."""
    record = network_count("resnet50", "tests.user_block_fixtures:bottleneck", tools=())
    assert record["count_source"] == "tools" and record["swapped"]
    assert record["params"] == record["module_params"] == PUBLISHED["resnet50"]
    assert record["macs"] == MACS_224["resnet50"] and record["train_flops"] == 3 * record["flops"]
    native = network_count("resnet50", tools=("torch",))
    assert [(s["params"], s["macs"]) for s in record["stages"]] == [(s["params"], s["macs"]) for s in native["stages"]]
    with pytest.raises(BlockprofError, match="no closed form"):
        analytic_network("resnet50", "tests.user_block_fixtures:bottleneck")


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


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="resnet51"), "unknown network 'resnet51'; choose from resnet18"),
    (dict(name="resnet50", spatial=100), "not a multiple of 32"),
    (dict(name="resnet50", block="nope"), "unknown block 'nope'"),
    (dict(name="resnet50", block="examples.user_blocks:missing"), "has no attribute 'missing'"),
])
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
    assert "blockprof explain bottleneck --channels 64 --out-channels 256 --expansion 4 --spatial 56" in text


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_json_is_one_record() -> None:
    result = CliRunner().invoke(cli_command, ["mobilenet_v2", "--format", "json", "--tools", "torch"])
    record = json.loads(result.stdout)
    assert result.exit_code == 0 and isinstance(record, dict)
    for field in ("network", "params", "macs", "flops", "train_flops"):
        assert field in record
    assert (record["params"], record["macs"], record["flops"]) == (PUBLISHED["mobilenet_v2"], MACS_224["mobilenet_v2"], 2 * MACS_224["mobilenet_v2"])


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


@pytest.mark.parametrize("args, message", [
    (["network", "resnet51"], "unknown network 'resnet51'"),
    (["network", "resnet50", "--spatial", "100"], "not a multiple of 32"),
    (["network", "resnet50", "--block", "no_such_pkg_xyz:f"], "no module named 'no_such_pkg_xyz'"),
    (["network", "resnet50", "--explain", "--format", "json"], "drop --format"),
    (["network", "resnet18", "--block", "examples.user_blocks:convnext_block", "--explain"], "no closed form"),
    (["explain", "resnet50", "--channels", "64"], "a network takes only --spatial and --batch"),
])
def test_cli_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (out, err)


def test_command_module_raises_blockprof_error() -> None:
    """Standalone, the command raises BlockprofError; the CLI's group turns it into exit 2."""
    result = CliRunner().invoke(cli_command, ["resnet51"])
    assert isinstance(result.exception, BlockprofError)


def test_network_help_does_not_import_torch() -> None:
    code = ("import sys; from blockprof.cli import main; sys.argv=['blockprof','network','--help']\n"
            "try: main()\nexcept SystemExit: pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
    assert "resnet18, resnet34, resnet50, resnet101 or mobilenet_v2" in out.replace("\n ", " ").replace("  ", " ")
