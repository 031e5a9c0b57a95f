"""``blockprof model`` and ``count_model``: any model as a per-module tree, its JSON schema, the
tools reconciled per module, and every bad input one line with exit code 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from blockprof.api import count_model
from blockprof.cli import cli
from tests import published_models

RESNET50 = "tests.published_models:resnet50"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_schema_and_totals() -> None:
    code, out, _ = invoke("model", "tests.published_models:vit_b_16", "--format", "json")
    record = json.loads(out)
    assert code == 0
    assert {
        "model",
        "input_shape",
        "params",
        "params_conv",
        "macs",
        "flops",
        "train_flops",
        "unknown_ops",
        "modules",
    } <= set(record)
    assert (
        record["params"] == 86_567_656 and record["macs"] == 17_563_828_224 and round(record["macs"] / 1e9, 3) == 17.564
    )
    assert (
        record["input_shape"] == [1, 3, 224, 224]
        and record["unknown_ops"] == {}
        and record["flops"] == 2 * record["macs"]
    )
    module = record["modules"][0]
    assert set(module) == {"name", "type", "depth", "params", "macs", "flops", "train_flops"}
    assert (module["name"], module["type"], module["depth"], module["macs"]) == (
        "",
        "VisionTransformer",
        0,
        record["macs"],
    )
    assert "train FLOPs = 2·(forward + input-gradient + weight-gradient MACs)" in record["convention"]


def test_per_module_table_of_resnet50_sums_to_its_total() -> None:
    df = count_model(RESNET50).frame(depth=1)
    total, children = df.iloc[0], df.iloc[1:]
    assert total["macs"] == children["macs"].sum() == 4_089_184_256
    assert total["params"] == children["params"].sum() == 25_557_032
    assert total["train_flops"] == children["train_flops"].sum()
    code, out, _ = invoke("model", RESNET50, "--depth", "1")
    assert code == 0 and "4,089,184,256" in out and "   layer1   Sequential" in out.replace("  layer1 ", "   layer1 ")


def test_depth_indents_like_fvcore_and_csv_has_every_module() -> None:
    code, out, _ = invoke("model", RESNET50, "--depth", "2")
    assert code == 0
    lines = out.splitlines()
    assert any(line.lstrip().startswith("model ") for line in lines)
    assert any(line.startswith("     layer1.0  ") for line in lines)  # full names, indented by depth (fvcore's table)
    code, out, _ = invoke("model", RESNET50, "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "name,type,depth,params,macs,flops,train_flops"
    modules = len(list(published_models.resnet50().named_modules()))
    assert len([line for line in out.splitlines() if line]) == 1 + modules  # every module, the root included


def test_output_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "r50.md"
    code, _, err = invoke("model", RESNET50, "--format", "markdown", "-o", str(target))
    assert code == 0 and "wrote" in err and "| model" in target.read_text()


def test_tools_reconciled_per_module_with_reasons() -> None:
    result = count_model("tests.published_models:mobilenet_v2", tools=("torch", "thop"))
    torch_agreement, thop_agreement = result.agreements["torch"], result.agreements["thop"]
    assert torch_agreement.agrees and torch_agreement.differences == ()
    # thop adds BatchNorm 4 per value and the pool: every difference is named by the op kind that explains it
    assert not thop_agreement.agrees and thop_agreement.differences
    assert all("adds" in d.reason and "values its" in d.reason for d in thop_agreement.differences)
    bn = next(d for d in thop_agreement.differences if d.module == "features.0.1")
    assert "4× the 401,408 values its norm op writes" in bn.reason
    df = result.frame(depth=0)
    assert df.loc[0, "torch_macs"] == df.loc[0, "macs"]


def test_value_reading_forward_says_so() -> None:
    code, out, _ = invoke("model", "tests.model_fixtures:ReadsValues", "--input", "2,3,8,8")
    assert code == 0 and "note: the forward needs values" in out and "multiplied by the batch 2" in out


@pytest.mark.parametrize(
    "args, message",
    [
        (["no_such_pkg_xyz.models:net"], "model 'no_such_pkg_xyz.models:net': no module named 'no_such_pkg_xyz'"),
        (["tests.published_models"], "give it as 'package.module:callable'"),
        (["tests.published_models:missing"], "has no attribute 'missing'"),
        (
            ["tests.model_fixtures:needs_args"],
            "needs arguments (depth); name a callable that builds the model with none",
        ),
        (["tests.model_fixtures:raises"], "calling it raised ValueError: no weights here"),
        (["tests.model_fixtures:not_a_module"], "returned a str, not a torch.nn.Module"),
        (
            ["tests.model_fixtures:CrashesInForward"],
            "its forward on a 1×3×224×224 input raised RuntimeError: broken forward",
        ),
        ([RESNET50, "--input", "1,1,224,224"], "its forward on a 1×1×224×224 input raised RuntimeError"),
        (
            ["tests.published_models:vit_b_16", "--input", "1,3,256,256"],
            "raised RuntimeError: Attempting to broadcast a dimension of length 197",
        ),
        ([RESNET50, "--input", "1,3,x"], "'1,3,x' is not a shape"),
        ([RESNET50, "--input", "0,3,224,224"], "'0,3,224,224' is not a shape"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    code, out, err = invoke("model", *args)
    assert code == 2, (out, err)
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def test_a_module_instance_is_counted_and_left_as_it_was() -> None:
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 8, 3, groups=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    df = count_model(model, (2, 3, 8, 8)).frame()
    assert list(df["name"]) == ["", "0", "1", "2", "3"]
    assert df.loc[0, "macs"] == 2 * 8 * 6 * 6 * 27 + 2 * 288 * 10 and df.loc[0, "params"] == 8 * 27 + 8 + 2890
    assert all(not p.is_meta and p.grad is None for p in model.parameters())


def test_time_gives_the_steps_and_each_module_share() -> None:
    from torch import nn

    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1))
    timing = {"device": "cpu", "threads": 1, "min_run_time": 0.01, "min_runs": 4, "rounds": 1}
    result = count_model(model, (1, 3, 16, 16), time=True, timing=timing)
    assert result.timing is not None and result.timing.fwd is not None and result.timing.train is not None
    assert result.timing.fwd.median > 0 and result.timing.train.median > 0
    df = result.frame()
    assert df["time_share"].notna().all() and (df["time_share"] > 0).all()
    assert df.loc[0, "time_share"] == pytest.approx(sum(df.loc[1:, "time_share"]))  # the root's share is its leaves'
    record = result.record()
    assert record["timing"]["fwd"]["runs"] >= 4
