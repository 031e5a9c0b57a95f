"""Grids (axes, TOML, cell keys, shards) and run directories (records, corruption, merge)."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.grid import Cell, Grid, Shard
from blockprof.runs import RECORDS, Run, load_run, merge
from blockprof.sweep import sweep

GRIDS = Path(__file__).parent.parent / "benchmarks" / "grids"


def one_line_error(excinfo: pytest.ExceptionInfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


# --- grids ---


def test_variant_axes_multiply_only_the_blocks_that_take_them() -> None:
    grid = Grid(channels=(32, 64), spatial=(56, 28), options={"expansion": [2, 4], "stride": 2})
    per_block = {name: [c for c in grid.cells() if dict(c.fields)["block"] == name] for name in grid.blocks}
    assert len(per_block["basic"]) == 2 * 2  # widths × sizes: expansion is not the BasicBlock's
    assert len(per_block["bottleneck"]) == len(per_block["inverted_residual"]) == 2 * 2 * 2
    assert {dict(c.fields).get("expansion") for c in per_block["bottleneck"]} == {2.0, 4.0}
    assert all(dict(c.fields)["stride"] == 2 for c in grid.cells())
    assert "expansion" not in dict(per_block["basic"][0].fields)


def test_an_option_no_block_takes_is_an_error() -> None:
    with pytest.raises(BlockprofError, match="applies to none of the blocks basic") as e:
        Grid(blocks=("basic",), options={"groups": 2}).cells()
    one_line_error(e)


@pytest.mark.parametrize("path", sorted(GRIDS.glob("*.toml")), ids=lambda p: p.stem)
def test_standard_grids_load_and_have_the_product_of_their_axes(path: Path) -> None:
    import tomllib

    data = tomllib.loads(path.read_text())
    grid = Grid.from_toml(path)
    axes = [len(data[k]) if isinstance(data.get(k), list) else 1 for k in ("channels", "spatial", "batch")]
    options = [
        len(v) if isinstance(v, list) else 1 for k, v in data.items() if k in ("stride", "expansion", "groups", "se")
    ]
    # the standard grids' options apply to every block they list
    assert len(grid.cells()) == len(data["blocks"]) * _product(axes) * _product(options)


def _product(values: list[int]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            "channels = [32, 0]",
            r"channels must be a whole number in \[1, 1048576\] \(or a list of them\); got \[32, 0\]",
        ),
        ("channels = [32, 'wide']", "channels must be"),
        ("batch = 1.5", "batch must be"),
        ("se = [0, 1.5]", r"se must be a number in \[0, 1\)"),
        ("expansion = 0", r"expansion must be a number in \(0, 1024\]"),
        ("dtype = ['fp8']", "dtype must be one or a list of float32, bfloat16, float16"),
        ("device = 'tpu'", "device must be one or a list of auto, cpu, cuda"),
        ("blocks = []", "blocks must be a non-empty list"),
        ("width = [64]", r"unknown key\(s\) width; known: blocks, channels"),
        ("channels = [32", "is not valid TOML"),
    ],
)
def test_bad_grid_files_are_one_line_errors_naming_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(BlockprofError, match=match) as e:
        Grid.from_toml(path)
    assert str(path) in one_line_error(e)


def test_bad_grid_via_the_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("spatial = [56, -28]\n")
    result = CliRunner().invoke(cli, ["sweep", "--grid", str(path), "-o", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "spatial must be" in result.stderr
    assert not (tmp_path / "run").exists()
    result = CliRunner().invoke(cli, ["sweep", "--grid", str(tmp_path / "missing.toml"), "-o", str(tmp_path / "run")])
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_command_line_axes_override_the_grid_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "sweep",
            "--grid",
            str(GRIDS / "quick.toml"),
            "--channels",
            "8",
            "--spatial",
            "4",
            "--tools",
            "none",
            "-o",
            str(tmp_path / "run"),
        ],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["grid"]["channels"] == [8] and meta["grid"]["spatial"] == [4]
    assert meta["grid"]["blocks"] == ["basic", "bottleneck", "inverted_residual"]  # from the file


def test_cell_key_is_the_hash_of_the_canonical_fields() -> None:
    cell = Cell(
        (("block", "bottleneck"), ("in_channels", 64), ("spatial", 56), ("batch", 1), ("expansion", 4.0)),
        "float32",
        "cpu",
    )
    canonical = '{"batch":1,"block":"bottleneck","device":"cpu","dtype":"float32","expansion":4.0,"in_channels":64,"spatial":56}'
    assert cell.key == hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_cell_keys_are_stable_across_spellings_and_distinct_across_cells(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("blocks = ['bottleneck']\nchannels = [64]\nexpansion = 4\n")  # an int in TOML
    from_file = Grid.from_toml(path).cells()
    from_api = Grid(blocks=("bottleneck",), channels=(64,), options={"expansion": 4.0}).cells()
    assert [c.key for c in from_file] == [c.key for c in from_api]
    cells = Grid(channels=(32, 64), spatial=(56, 28), batch=(1, 2), options={"stride": [1, 2]}).cells()
    assert len({c.key for c in cells}) == len(cells)


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_partition_the_grid(n: int) -> None:
    cells = Grid(channels=(8, 16, 32, 64), spatial=(8, 16)).cells()
    parts = [[i for i in range(len(cells)) if Shard(k, n).holds(i)] for k in range(1, n + 1)]
    assert sorted(itertools.chain(*parts)) == list(range(len(cells)))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


@pytest.mark.parametrize("text", ["0/3", "4/3", "2", "a/b", "1/0"])
def test_bad_shards_are_one_line_errors(text: str) -> None:
    with pytest.raises(BlockprofError, match="shard must be i/n") as e:
        Shard.parse(text)
    one_line_error(e)


# --- run directories ---


@pytest.fixture
def small_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    sweep(Grid(channels=(8, 16), spatial=(4,)), run, tools=())
    return run


def test_a_run_is_meta_plus_one_json_line_per_cell(small_run: Path) -> None:
    meta = json.loads((small_run / "meta.json").read_text())
    assert meta["format"] == "blockprof-run" and meta["schema_version"] == 1 and meta["cells"] == 6
    assert {"blockprof_version", "torch_version", "fvcore_version", "thop_version", "cpu_model"} <= set(
        meta["environment"]
    )
    assert meta["grid"]["channels"] == [8, 16] and meta["settings"]["tools"] == [] and meta["created"]
    lines = (small_run / RECORDS).read_text().splitlines()
    assert len(lines) == 6 and all(json.loads(line)["status"] == "ok" for line in lines)


def test_an_incomplete_last_line_is_ignored_reported_and_never_truncated(small_run: Path) -> None:
    records = small_run / RECORDS
    lines = records.read_bytes().splitlines(keepends=True)
    records.write_bytes(b"".join(lines[:-1]) + lines[-1][:40])  # a crash mid-write of the last cell
    run = Run.open(small_run)
    assert len(run.records) == 5 and "ignored an incomplete last line (40 bytes" in run.notes[0]
    df = sweep(None, small_run, resume=True)
    assert len(df) == 6
    data = records.read_bytes()
    assert data.startswith(b"".join(lines[:-1]) + lines[-1][:40] + b"\n")  # the fragment stays: nothing is cut
    run = Run.open(small_run)
    assert len(run.records) == 6 and sorted(r["cell"] for r in run.records) == sorted(
        json.loads(x)["cell"] for x in lines
    )
    assert "skipped 1 record(s) cut off by an interrupted write (line 6)" in run.notes[0]


def test_ok_cells_recorded_twice_are_read_once_with_a_note(small_run: Path) -> None:
    records = small_run / RECORDS
    data = records.read_bytes()
    records.write_bytes(data + data.splitlines(keepends=True)[0] + data.splitlines(keepends=True)[3])
    run = Run.open(small_run)
    assert len(run.records) == 6 and len({r["cell"] for r in run.records}) == 6
    assert "2 cell(s) were recorded more than once" in run.notes[0]
    result = CliRunner().invoke(cli, ["show", str(small_run), "--format", "json"])
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 6 and "recorded more than once" in result.stderr


def test_resume_skips_finished_cells_and_retry_failed_reruns_errors(tmp_path: Path) -> None:
    run = tmp_path / "run"
    sweep(Grid(blocks=("bottleneck",), channels=(8, 16), spatial=(4,), options={"groups": [1, 3]}), run, tools=())
    assert len((run / RECORDS).read_text().splitlines()) == 4
    sweep(None, run, resume=True)
    assert len((run / RECORDS).read_text().splitlines()) == 4  # nothing ran again
    df = sweep(None, run, resume=True, retry_failed=True)
    lines = (run / RECORDS).read_text().splitlines()
    assert len(lines) == 6 and len(df) == 4  # the 2 failed cells ran again; the last record of a cell wins
    assert (df["status"] == "error").sum() == 2


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (
            lambda run: (run / "meta.json").unlink(),
            r"has records but no meta.json \(deleted\?\); the records are intact: rebuild it",
        ),
        (lambda run: (run / "meta.json").write_text("{not json"), "meta.json is not readable JSON"),
        (
            lambda run: (run / "meta.json").write_text('{"format": "something-else"}'),
            "is not a blockprof run's metadata",
        ),
        (lambda run: _edit_meta(run, schema_version=99), "schema version 99; this blockprof .* reads version 1"),
        (
            lambda run: (run / RECORDS).write_text('{"cell": "a"}\n{oops\n{"cell": "b"}\n'),
            "records.jsonl line 2 is not a JSON record",
        ),
        (lambda run: (run / RECORDS).write_text('{"block": "basic"}\n'), "line 1 is not a blockprof cell record"),
        (lambda run: (run / RECORDS).unlink(), "has a meta.json but no records.jsonl"),
    ],
)
def test_corrupt_runs_are_one_line_errors(small_run: Path, damage, match: str) -> None:  # type: ignore[no-untyped-def]
    damage(small_run)
    with pytest.raises(BlockprofError, match=match) as e:
        load_run(small_run)
    one_line_error(e)
    result = CliRunner().invoke(cli, ["show", str(small_run)])
    assert result.exit_code == 2 and result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output


def test_a_foreign_directory_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    for command in (
        ["show", str(tmp_path)],
        ["plot", str(tmp_path), "-o", str(tmp_path / "p.html")],
        ["merge", str(tmp_path), str(tmp_path), "-o", str(tmp_path / "m")],
        ["sweep", "-o", str(tmp_path), "--resume"],
    ):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, command
        assert result.stderr.strip().count("\n") == 0, result.stderr


def test_a_new_sweep_refuses_a_directory_that_holds_a_run(small_run: Path) -> None:
    with pytest.raises(BlockprofError, match="already holds a run; add --resume") as e:
        sweep(Grid(channels=(8,), spatial=(4,)), small_run)
    one_line_error(e)


def test_resume_refuses_other_settings_grids_and_shards(small_run: Path) -> None:
    with pytest.raises(BlockprofError, match=r"was swept with tools=\(\), not \('torch',\)"):
        sweep(None, small_run, resume=True, tools=("torch",))
    with pytest.raises(BlockprofError, match="the grid differs"):
        sweep(Grid(channels=(8, 32), spatial=(4,)), small_run, resume=True)
    with pytest.raises(BlockprofError, match="holds shard none"):
        sweep(None, small_run, resume=True, shard="1/2")
    _edit_meta(
        small_run,
        environment={**json.loads((small_run / "meta.json").read_text())["environment"], "torch_version": "1.0"},
    )
    with pytest.raises(BlockprofError, match=r"swept in another environment .torch_version: '1\.0'"):
        sweep(None, small_run, resume=True)


def _edit_meta(run: Path, **changes: object) -> None:
    meta = json.loads((run / "meta.json").read_text())
    meta.update(changes)
    (run / "meta.json").write_text(json.dumps(meta))


# --- merge ---


def _copy(run: Path, name: str) -> Path:
    return Path(shutil.copytree(run, run.parent / name))


def test_merge_keeps_identical_duplicates_once(small_run: Path) -> None:
    twin = _copy(small_run, "twin")
    result = merge([small_run, twin], small_run.parent / "merged")
    assert result.cells == 6 and result.duplicates == 6
    assert len((small_run.parent / "merged" / RECORDS).read_text().splitlines()) == 6
    assert "6 cell(s) appeared in more than one run" in result.notes[0]


def test_merge_refuses_conflicting_results_naming_the_cell(small_run: Path) -> None:
    twin = _copy(small_run, "twin")
    lines = (twin / RECORDS).read_text().splitlines()
    changed = json.loads(lines[0])
    changed["macs"] += 1
    (twin / RECORDS).write_text("\n".join([json.dumps(changed), *lines[1:]]) + "\n")
    with pytest.raises(
        BlockprofError, match=rf"cell {changed['cell']} \(basic 8\) has different results .*macs: "
    ) as e:
        merge([small_run, twin], small_run.parent / "merged")
    one_line_error(e)


def test_merge_prefers_a_successful_record_to_a_failed_one(small_run: Path) -> None:
    failed = _copy(small_run, "failed")
    lines = (failed / RECORDS).read_text().splitlines()
    record = json.loads(lines[0])
    (failed / RECORDS).write_text(
        json.dumps({"cell": record["cell"], "block": "basic", "status": "error", "error": "out of memory"}) + "\n"
    )
    result = merge([failed, small_run], small_run.parent / "merged")
    assert result.replaced_errors == 1
    assert (load_run(small_run.parent / "merged")["status"] == "ok").all()


def test_merge_refuses_mixed_environments_unless_allowed(small_run: Path) -> None:
    other = _copy(small_run, "other")
    _edit_meta(
        other, environment={**json.loads((other / "meta.json").read_text())["environment"], "thop_version": "0.0.1"}
    )
    with pytest.raises(BlockprofError, match=r"environment thop_version: .* pass --allow-mixed") as e:
        merge([small_run, other], small_run.parent / "merged")
    one_line_error(e)
    result = merge([small_run, other], small_run.parent / "merged", allow_mixed=True)
    meta = json.loads((small_run.parent / "merged" / "meta.json").read_text())
    assert "thop_version" in meta["mixed"][0] and len(meta["merged_from"]) == 2 and result.cells == 6
    runner = CliRunner().invoke(cli, ["merge", str(small_run), str(other), "-o", str(small_run.parent / "m2")])
    assert runner.exit_code == 2 and "--allow-mixed" in runner.stderr
