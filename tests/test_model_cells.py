"""A whole model is a cell like any block: counted, swept, resumed, reported and checked.

The models are small and self-contained (``examples.models:small_cnn`` and a factory written into a
temporary directory, whose width a test changes), so these tests need no torchvision.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.grid import Grid
from blockprof.spec import ModelSpec

ROOT = Path(__file__).resolve().parent.parent
SMALL_CNN = "examples.models:small_cnn"
SMALL_INPUT = (1, 3, 32, 32)
#: a factory the tests rewrite: its WIDTH changes the model's parameters and MACs
FACTORY = "cellmodel:net"
FACTORY_SOURCE = """
from torch import nn

WIDTH = {width}


def net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, WIDTH, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH, 4)
    )
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def one_line_exit_2(code: int, err: str, message: str) -> None:
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (code, err)


@pytest.fixture
def factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Write ``cellmodel.py`` at a width into the test's directory (the current one, as a user runs it);
    returns a function that rewrites it at another width."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(width: int) -> None:
        (tmp_path / "cellmodel.py").write_text(FACTORY_SOURCE.format(width=width))
        sys.modules.pop("cellmodel", None)
        importlib.invalidate_caches()

    write(8)
    yield write
    sys.modules.pop("cellmodel", None)


# --- the spec ---


def test_a_model_spec_is_checked_where_it_enters_and_has_a_stable_id() -> None:
    spec = ModelSpec(SMALL_CNN, (1, 3, 32, 32.0))  # type: ignore[arg-type]  # a TOML float that is whole
    assert spec.input_shape == SMALL_INPUT and spec.label == "model examples.models:small_cnn @ 1×3×32×32"
    assert ModelSpec.from_dict(spec.as_dict()) == spec and hash(spec) == hash(ModelSpec(SMALL_CNN, SMALL_INPUT))
    for target, shape, message in (
        ("examples.models", SMALL_INPUT, "give it as 'package.module:callable'"),
        (SMALL_CNN, (), "input must be a list of sizes"),
        (SMALL_CNN, (1, 0, 32, 32), "whole sizes from 1"),
        (SMALL_CNN, (1, 3, 32.5, 32), "whole sizes from 1"),
        (SMALL_CNN, (64, 3, 2**14, 2**14), "more than 2,147,483,648 elements"),
    ):
        with pytest.raises(BlockprofError, match=message):
            ModelSpec(target, shape)  # type: ignore[arg-type]


# --- counting ---


def test_a_model_cell_counts_equal_its_parameters_and_the_tracer() -> None:
    import torch

    from blockprof.counting.trace import trace
    from blockprof.models import model_record
    from examples.models import small_cnn

    record = model_record(ModelSpec(SMALL_CNN, SMALL_INPUT), tools=("torch",))
    model = small_cnn()
    traced = trace(model, SMALL_INPUT)
    assert record["params"] == record["module_params"] == sum(p.numel() for p in model.parameters()) == 94_762
    assert record["params_conv"] == sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert {k: record[k] for k in traced.totals()} == traced.totals()
    # the convs and the linear head, by hand: 3·32·9·32² + 32·64·9·16² + 64·128·9·8² + 128·10
    assert record["macs"] == 884_736 + 4_718_592 + 4_718_592 + 1_280 and record["flops"] == 2 * record["macs"]
    assert record["count_source"] == "trace" and record["torch_macs"] == record["macs"] and record["torch_agrees"]
    # the module tree (depth 2) sums to the whole: the root row is the model's total
    root, *children = record["modules"]
    assert root["macs"] == record["macs"] and max(m["depth"] for m in record["modules"]) == 2
    assert sum(m["macs"] for m in children if m["depth"] == 1) == record["macs"]


# --- sweep → run → show/report ---


@pytest.mark.timing
def test_sweep_counts_times_and_resumes_a_model_cell(tmp_path: Path) -> None:
    from blockprof.sweep import sweep

    grid = Grid(
        blocks=("basic",), channels=(16,), spatial=(8,), device=("cpu",), models=(ModelSpec(SMALL_CNN, SMALL_INPUT),)
    )
    df = sweep(grid, tmp_path / "run", tools=(), time=True, min_run_time=0.02, rounds=2, min_runs=4)
    model = df[df["model"].notna()].iloc[0]
    assert len(df) == 2 and model["status"] == "ok" and model["params"] == 94_762
    for mode in ("fwd", "train"):  # the statistics blocks get, and a throughput from the traced FLOPs
        assert model[f"{mode}_ms"] > 0 and model[f"{mode}_iqr_ms"] >= 0 and model[f"{mode}_runs"] >= 4
        flops = model["flops" if mode == "fwd" else "train_flops"]
        assert model[f"{mode}_gflops_per_s"] == pytest.approx(flops / (model[f"{mode}_ms"] * 1e-3) / 1e9)
    assert model["contended"] in (True, False) and model["cpu_wall_ratio"] > 0
    again = sweep(None, tmp_path / "run", resume=True)
    assert again.attrs["sweep"]["skipped"] == 2 and again.attrs["sweep"]["done"] == 0


def test_models_alone_through_the_cli_show_and_report(tmp_path: Path, factory) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "run"
    code, _, err = run(
        "sweep", "--model", FACTORY, "--model", SMALL_CNN, "--input", "1,3,32,32", "--no-blocks",
        "--tools", "torch", "-o", str(run_dir),
    )  # fmt: skip
    assert code == 0 and "2 cells" in err, err
    assert f"blockprof report {run_dir} -o" in err and "blockprof plot" not in err  # plots compare blocks only
    code, out, _ = run("show", str(run_dir))
    assert code == 0 and "model cellmodel:net, input 1×3×32×32" in out and "94,762" in out
    code, out, _ = run("show", str(run_dir), "--format", "csv")  # nested fields are JSON text in a CSV cell
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and json.loads(rows[0]["input_shape"]) == [1, 3, 32, 32]
    tree = json.loads(rows[0]["modules"])
    assert tree[0]["depth"] == 0 and tree[0]["params"] == int(rows[0]["params"])
    records = run_dir / "records.jsonl"  # as if stopped after the first model: its cell is kept, the other rerun
    records.write_text(records.read_text().splitlines(keepends=True)[0])
    code, _, err = run("sweep", "-o", str(run_dir), "--resume")
    assert code == 0 and "1 done now, 1 already done (skipped)" in err, err
    code, _, err = run("report", str(run_dir), "-o", str(tmp_path / "r.html"), "--timestamp", "none")
    page = (tmp_path / "r.html").read_text()
    assert code == 0 and page.count('<td class="name"') >= 2, err
    assert "model cellmodel:net" in page and "model examples.models:small_cnn" in page
    assert 'id="modules-table-1"' in page and 'id="modules-table-2"' in page and ">Conv2d<" in page
    assert "each counted whole by the tracer" in page and "the run holds model cells alone" in page
    # the environment's grid box names the models, not block axes that set nothing in a run of models alone
    assert "<dt>channels</dt>" not in page and "<dt>models</dt><dd>cellmodel:net @ 1×3×32×32" in page
    code, _, err = run("plot", str(run_dir), "-o", str(tmp_path / "p.html"))
    one_line_exit_2(code, err, "no figure applies")


def test_a_report_does_not_rank_a_model_against_blocks(tmp_path: Path) -> None:
    from blockprof.render.report.html import build_report
    from blockprof.sweep import sweep

    grid = Grid(
        blocks=("basic", "bottleneck"),
        channels=(16,),
        spatial=(8,),
        models=({"model": SMALL_CNN, "input_shape": [1, 3, 32, 32]},),
    )
    sweep(grid, tmp_path / "run", tools=())
    page = build_report(tmp_path / "run", timestamp=None)
    assert "Fewest parameters: the bottleneck at the one point compared" in page  # among the two blocks only
    assert "listed beside the blocks, not ranked against them" in page
    assert "params % basic" in page and 'id="layers-table-1"' in page and 'id="modules-table-1"' in page


def test_a_grid_file_spells_models_as_tables(tmp_path: Path) -> None:
    path = tmp_path / "grid.toml"
    path.write_text(
        f'blocks = []\n[[models]]\ntarget = "{SMALL_CNN}"\ninput = [1, 3, 32, 32]\n[[models]]\ntarget = "a.b:c"\n'
    )
    grid = Grid.from_toml(path)
    assert grid.blocks == () and grid.models == (ModelSpec(SMALL_CNN, SMALL_INPUT), ModelSpec("a.b:c"))
    assert Grid.from_dict(grid.as_dict()) == grid and len(grid.cells()) == 2
    path.write_text('[[models]]\ntarget = "a.b:c"\nshape = [1, 3]\n')
    with pytest.raises(BlockprofError, match=r"grid.toml: \[\[models\]\] #1: unknown key\(s\) shape"):
        Grid.from_toml(path)


def test_bad_targets_are_one_line_exit_2_through_sweep(tmp_path: Path) -> None:
    out = str(tmp_path / "run")
    one_line_exit_2(*run("sweep", "--model", "examples.models", "-o", out)[::2], "give it as 'package.module:callable'")
    code, _, err = run("sweep", "--model", "examples.models:nope", "--no-blocks", "-o", out)
    one_line_exit_2(code, err, "module examples.models has no attribute 'nope'")
    code, _, err = run("sweep", "--model", "no_such_pkg.models:net", "--no-blocks", "-o", out)
    one_line_exit_2(code, err, "no module named 'no_such_pkg'")
    code, _, err = run("sweep", "--no-blocks", "-o", out)
    one_line_exit_2(code, err, "--no-blocks goes with --model")
    assert not (tmp_path / "run").exists()


# --- check and baseline ---


def test_check_passes_unchanged_and_fails_when_the_model_changes(tmp_path: Path, factory) -> None:  # type: ignore[no-untyped-def]
    suite = tmp_path / "suite.toml"
    suite.write_text(
        f'[[cells]]\nblocks = ["basic"]\nchannels = [16]\nspatial = [8]\n[[models]]\ntarget = "{FACTORY}"\ninput = [1, 3, 16, 16]\n'
    )
    baseline = tmp_path / "baseline.json"
    code, _, err = run("baseline", "save", "--suite", str(suite), "-o", str(baseline), "--no-time")
    assert code == 0, err
    stored = json.loads(baseline.read_text())
    assert stored["schema_version"] == 2 and stored["suite"]["models"] == [
        {"model": FACTORY, "input_shape": [1, 3, 16, 16]}
    ]
    cell = next(c for c in stored["cells"] if "model" in c["spec"])
    assert cell["id"] == "model cellmodel:net @ 1×3×16×16" and cell["counts"]["params"] == 3 * 8 * 9 + 8 + 8 * 4 + 4
    code, out, _ = run("check", "--suite", str(suite), "--baseline", str(baseline), "--no-time")
    assert code == 0 and "passed" in out, out
    factory(12)  # the factory's width changes: params and MACs differ
    code, out, _ = run("check", "--suite", str(suite), "--baseline", str(baseline), "--no-time")
    assert code == 1 and "model cellmodel:net @ 1×3×16×16" in out and "changed" in out, out
    # inline, the same cells: --model with --input beside the block options
    code, out, _ = run(
        "check", "--blocks", "basic", "--channels", "16", "--spatial", "8", "--model", FACTORY,
        "--input", "1,3,16,16", "--baseline", str(baseline), "--no-time",
    )  # fmt: skip
    assert code == 1 and "params" in out, out


def test_a_timed_baseline_holds_the_model_cells_rounds(tmp_path: Path) -> None:
    from blockprof.regress import TimingPlan, inline_suite, load_baseline, save_baseline

    plan = TimingPlan(rounds=5, sample_time=0.005, baseline_sessions=1)
    suite = inline_suite((), [16], [8], [1], models=[ModelSpec(SMALL_CNN, SMALL_INPUT)], timing=plan)  # no blocks
    save_baseline(suite, tmp_path / "b.json")
    cell = load_baseline(tmp_path / "b.json").cells["model examples.models:small_cnn @ 1×3×32×32"]
    assert cell.error is None and len(cell.rounds or ()) == 5 and cell.counts["params"] == 94_762


def test_old_baselines_still_load_and_a_v1_file_cannot_hold_models(tmp_path: Path) -> None:
    from blockprof.regress import load_baseline

    old = ROOT / "benchmarks" / "baseline.json"
    data = json.loads(old.read_text())
    assert data["schema_version"] == 1 and load_baseline(old).cells
    data["suite"]["models"] = [{"model": SMALL_CNN, "input_shape": [1, 3, 32, 32]}]
    (tmp_path / "b.json").write_text(json.dumps(data))
    with pytest.raises(BlockprofError, match=r"suite\.models must be absent in a version 1 baseline"):
        load_baseline(tmp_path / "b.json")


def test_bad_targets_are_one_line_exit_2_through_check(tmp_path: Path) -> None:
    base = str(tmp_path / "b.json")
    code, _, err = run("check", "--model", "nope", "--no-blocks", "--baseline", base, "--no-time")
    one_line_exit_2(code, err, "give it as 'package.module:callable'")
    code, _, err = run("baseline", "save", "--model", "examples.models:nope", "--no-blocks", "-o", base, "--no-time")
    one_line_exit_2(code, err, "module examples.models has no attribute 'nope'")
    suite = tmp_path / "s.toml"
    suite.write_text('[[models]]\ntarget = "examples.models:small_cnn"\ninput = [1, 3, 0]\n')
    code, _, err = run("check", "--suite", str(suite), "--baseline", base, "--no-time")
    one_line_exit_2(code, err, "whole sizes from 1")
    code, _, err = run("check", "--suite", str(suite), "--model", SMALL_CNN, "--baseline", base, "--no-time")
    assert code == 2 and "drop --model" in err, err


def _tree(where: Path, width: int | None) -> Path:
    """A checkout of this blockprof, with ``cellmodel.py`` at ``width`` (None: a base that predates the model)."""
    shutil.copytree(ROOT / "blockprof", where / "blockprof", ignore=shutil.ignore_patterns("__pycache__"))
    if width is not None:
        (where / "cellmodel.py").write_text(FACTORY_SOURCE.format(width=width))
    return where


@pytest.mark.slow
def test_ab_imports_the_model_from_each_tree_and_a_base_without_it_is_new(tmp_path: Path) -> None:
    from blockprof.regress import ab_check, inline_suite
    from blockprof.render.check import to_text

    suite = inline_suite(
        ["basic"], [16], [8], [1], models=[ModelSpec(FACTORY, (1, 3, 16, 16))], metrics=("params", "macs")
    )
    head = _tree(tmp_path / "head", 8)
    result = ab_check(suite, _tree(tmp_path / "same", 8), head)
    assert result.passed and {v.status for v in result.verdicts} == {"ok"}, to_text(result)
    result = ab_check(suite, _tree(tmp_path / "wider", 12), head)  # each side counts its own tree's model
    changed = {(v.cell, v.metric) for v in result.failures}
    assert changed == {("model cellmodel:net @ 1×3×16×16", "params"), ("model cellmodel:net @ 1×3×16×16", "macs")}
    result = ab_check(suite, _tree(tmp_path / "older", None), head)  # the base cannot build it: new, not a crash
    assert result.passed, to_text(result)
    assert {v.status for v in result.verdicts if v.cell.startswith("model")} == {"new"}
