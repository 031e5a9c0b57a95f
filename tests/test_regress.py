"""Regression checks: exact counts, the timing rule, baselines as files, the CLI's exit codes and reports.

Timed tests use tiny blocks and short rounds; the false-alarm rate over many
checks and the smallest detected slowdown are measured in benchmarks/bench_regress.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from blockprof.blocks import registry
from blockprof.blocks.resnet import Basic
from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.regress import (
    SCHEMA_VERSION,
    Rules,
    Snapshot,
    Suite,
    TimingPlan,
    cell_id,
    check,
    confirm,
    inline_suite,
    judge_samples,
    judge_snapshots,
    load_baseline,
    load_suite,
    measure,
    ratio_interval,
    save_baseline,
    suite_from_toml,
    write_baseline,
)
from blockprof.render.check import to_junit, to_markdown, to_text
from blockprof.spec import BlockSpec
from tests.regress_blocks import Repeated

ROOT = Path(__file__).resolve().parent.parent
FAST = TimingPlan(rounds=8, sample_time=0.01)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


class Twice(Basic):
    """A test-only BasicBlock that runs ``repeats`` times per call: the same counts, more time."""

    name = "regress_test_twice"
    repeats = 1

    def module(self, spec: BlockSpec):  # type: ignore[no-untyped-def]
        return Repeated(super().module(spec), self.repeats)


@pytest.fixture
def twice() -> Iterator[type[Twice]]:
    registry.register(Twice)
    try:
        yield Twice
    finally:
        del registry._REGISTRY[Twice.name]
        Twice.repeats = 1


@pytest.fixture(scope="module")
def counts_suite() -> Suite:
    return inline_suite(
        ["basic", "bottleneck", "inverted_residual"],
        [16],
        [8],
        [1],
        metrics=("params", "params_conv", "macs", "train_flops"),
    )


@pytest.fixture(scope="module")
def timed() -> tuple[Suite, Snapshot]:
    """A small timed suite and its fresh baseline (measured once for the module)."""
    suite = inline_suite(["basic", "inverted_residual"], [16], [16], [1], timing=FAST)
    return suite, measure(suite)


# --- counts ---


def test_a_changed_count_fails_naming_the_cell_old_new_and_change(tmp_path: Path, counts_suite: Suite) -> None:
    path = tmp_path / "baseline.json"
    save_baseline(counts_suite, path)
    data = json.loads(path.read_text())
    cell = next(c for c in data["cells"] if c["spec"]["block"] == "bottleneck")
    real = cell["counts"]["macs"]
    cell["counts"]["macs"] = real - 1000  # the code now costs 1000 MACs more than the baseline says
    path.write_text(json.dumps(data))

    result = check(counts_suite, path)
    assert result.exit_code == 1
    (failure,) = result.failures
    assert (failure.cell, failure.metric, failure.old, failure.new) == (cell["id"], "macs", real - 1000, real)
    assert failure.change == pytest.approx(1000 / (real - 1000))
    text = to_text(result)
    assert "FAILED: 1 changed count(s)" in text
    assert f"{cell['id']}: macs {real - 1000:,} → {real:,} (+{100 * 1000 / (real - 1000):.2f}%)" in text


def test_any_count_change_fails_whichever_way(counts_suite: Suite) -> None:
    base = measure(counts_suite)
    key = cell_id(counts_suite.cells[0])
    for delta in (+1, -1):
        cells = dict(base.cells)
        counts = dict(cells[key].counts, params=cells[key].counts["params"] + delta)
        cells[key] = replace(cells[key], counts=counts)
        result = judge_snapshots(replace(base, cells=cells), base)
        assert [(v.cell, v.metric, v.status) for v in result.failures] == [(key, "params", "changed")]


def test_a_changed_block_definition_fails_its_counts(
    tmp_path: Path, twice: type[Twice], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = inline_suite([Twice.name], [16], [8], [1], metrics=("params", "macs"))
    base = measure(suite)
    # the block grows a wider 3×3: its closed form changes, as a real edit would
    monkeypatch.setattr(
        Twice, "layers", lambda self, spec: Basic.layers(self, spec.replace(out_channels=spec.out_channels + 8))
    )
    result = judge_snapshots(base, measure(suite))
    assert {v.metric for v in result.failures} == {"params", "macs"} and result.exit_code == 1


# --- the timing rule (pure) ---


def test_judge_samples_needs_size_and_significance() -> None:
    rules = Rules(tolerance=0.10, alpha=0.01)
    base = [1.00, 1.01, 0.99, 1.02, 1.00, 0.98, 1.01, 1.00, 0.99, 1.02]
    assert judge_samples("c", base, [t * 1.5 for t in base], rules, "raw").status == "slower"
    assert judge_samples("c", base, [t * 0.6 for t in base], rules, "raw").status == "faster"
    assert judge_samples("c", base, [t * 1.05 for t in base], rules, "raw").status == "ok"  # significant but small
    # 30% slower in the median, but the samples overlap: not significant, reported '~', passes
    noisy_old = [1.0, 3.0, 1.1, 2.9, 1.2, 0.9]
    noisy_new = [1.3, 3.1, 1.4, 2.8, 1.0, 1.5]
    verdict = judge_samples("c", noisy_old, noisy_new, rules, "raw")
    assert verdict.status == "~" and not verdict.failed and verdict.p_value >= rules.alpha


def test_ratio_interval_brackets_the_true_ratio() -> None:
    base = [1.00, 1.01, 0.99, 1.02, 1.00, 0.98, 1.01, 1.00, 0.99, 1.02]
    low, high = ratio_interval(base, [t * 1.5 for t in base])
    assert low < 1.5 < high and high / low < 1.1
    low, high = ratio_interval(base, base)
    assert low < 1 < high


# --- timing end to end ---


def test_a_truly_slowed_block_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """A user block that starts doing its work twice: twice the MACs (an exact count change) and a slower time."""
    from tests import regress_blocks

    suite = inline_suite(["tests.regress_blocks:basic_repeated"], [16], [16], [1], timing=FAST)
    base = measure(suite)
    monkeypatch.setattr(regress_blocks, "REPEATS", 2)
    result = check(suite, base)
    failed = {v.metric: v for v in result.failures}
    assert set(failed) == {"macs", "train_flops", "time"} and result.exit_code == 1  # params unchanged
    assert failed["macs"].new == 2 * failed["macs"].old and failed["macs"].change == 1.0
    time = failed["time"]
    assert time.status == "slower" and "confirmed (second measurement +" in time.note, time
    assert 1 + time.change > 1.5 and time.p_value < 0.01


def test_a_slowed_registered_block_fails_on_time_alone(twice: type[Twice]) -> None:
    """The same slowdown in a registered block whose closed form did not change: only the time fails."""
    suite = inline_suite([Twice.name], [16], [16], [1], timing=FAST)
    base = measure(suite)
    Twice.repeats = 2
    result = check(suite, base)
    assert [(v.metric, v.status) for v in result.failures] == [("time", "slower")]


def test_unchanged_code_passes_repeated_checks_against_its_fresh_baseline(timed: tuple[Suite, Snapshot]) -> None:
    suite, base = timed
    for _ in range(3):
        result = check(suite, base)
        assert result.passed, to_text(result)
        assert result.comparison == "normalised" and "same environment as the baseline" in result.reason


def on_a_slower_machine(snapshot: Snapshot, factor: float, comparison: str, **env: object) -> Snapshot:
    """The same run on a machine ``factor`` times slower at everything (reference included), judged by ``comparison``."""
    cells = {
        k: replace(c, rounds=tuple(tuple(t * factor for t in r) for r in c.rounds)) for k, c in snapshot.cells.items()
    }
    reference = tuple(tuple(t * factor for t in r) for r in snapshot.reference)
    suite = replace(snapshot.suite, rules=replace(snapshot.suite.rules, comparison=comparison))
    return replace(snapshot, suite=suite, cells=cells, reference=reference, environment={**snapshot.environment, **env})


def test_auto_compares_normalised_times_when_the_environment_differs(timed: tuple[Suite, Snapshot]) -> None:
    _, base = timed
    elsewhere = judge_snapshots(base, on_a_slower_machine(base, 2.0, "auto", cpu_model="Other CPU", threads=4))
    assert elsewhere.comparison == "normalised"
    assert "cpu_model" in elsewhere.reason and "threads 1 → 4" in elsewhere.reason
    assert elsewhere.passed and all(v.comparison == "normalised" for v in elsewhere.verdicts if v.metric == "time")
    # the same environment: auto compares raw times, and the 2× slower samples are a regression
    same_place = judge_snapshots(base, on_a_slower_machine(base, 2.0, "auto"))
    assert same_place.comparison == "raw" and "same environment" in same_place.reason
    assert {v.status for v in same_place.failures} == {"slower"}


def steady(snapshot: Snapshot) -> Snapshot:
    """``snapshot`` with its noise replaced by a tight, known spread (±1% around each median)."""

    def rounds(samples: list[float]) -> tuple[tuple[float, ...], ...]:
        middle = sorted(samples)[len(samples) // 2]
        return tuple((middle * (1 + 0.01 * ((i % 3) - 1)),) for i in range(len(samples)))

    cells = {k: replace(c, rounds=rounds(c.samples())) for k, c in snapshot.cells.items()}
    return replace(snapshot, cells=cells, reference=rounds(snapshot.reference_samples()))


def test_normalised_times_cancel_a_busier_machine(timed: tuple[Suite, Snapshot]) -> None:
    base = steady(timed[1])
    busy = judge_snapshots(base, on_a_slower_machine(base, 1.8, "normalised"))
    assert busy.passed and busy.comparison == "normalised"
    assert judge_snapshots(base, on_a_slower_machine(base, 1.8, "raw")).exit_code == 1


def test_a_slowdown_that_a_second_measurement_does_not_show_passes_as_noise(timed: tuple[Suite, Snapshot]) -> None:
    suite, base = timed
    key = suite.ids[0]
    # the first measurement: cell 0 looks 3× slower (as when contention hit it alone)
    cells = dict(base.cells)
    cells[key] = replace(cells[key], rounds=tuple(tuple(3 * t for t in r) for r in cells[key].rounds))
    first = judge_snapshots(base, replace(base, cells=cells))
    assert [(v.cell, v.status) for v in first.failures] == [(key, "slower")]
    second = confirm(first)  # re-measures the real, unchanged block
    (verdict,) = [v for v in second.verdicts if v.cell == key and v.metric == "time"]
    assert verdict.status == "~" and "slower in the first measurement only" in verdict.note and second.passed


# --- baselines as files ---


def test_baseline_round_trips_as_plain_json(tmp_path: Path, timed: tuple[Suite, Snapshot]) -> None:
    suite, base = timed
    path = tmp_path / "b.json"
    write_baseline(base, path)
    data = json.loads(path.read_text())
    # a suite of blocks alone is written as version 1, which a blockprof that predates model cells reads
    assert data["schema_version"] == 1 < SCHEMA_VERSION and data["blockprof_version"]
    assert {"torch_version", "cpu_model", "threads", "device", "dtype"} <= set(data["environment"])
    assert len(data["reference"]["rounds_s"]) == FAST.rounds
    assert all(len(c["rounds_s"]) == FAST.rounds for c in data["cells"])
    assert data["suite"]["cells"][0] == suite.cells[0].as_dict()
    loaded = load_baseline(path)
    assert loaded.to_json() == base.to_json()


@pytest.mark.parametrize(
    "damage, message",
    [
        (None, "does not exist; create it with 'blockprof baseline save"),
        ('{"schema_version": 1, "cells": [', "is not valid JSON"),
        ("[1, 2]", "is not a blockprof baseline (no schema_version)"),
        ('{"schema_version": 99}', "has schema version 99; this blockprof reads versions 1, 2: upgrade blockprof"),
        ('{"schema_version": 1, "cells": []}', "baseline.json: blockprof_version is missing"),
    ],
)
def test_a_missing_corrupt_or_wrong_version_baseline_exits_2(tmp_path: Path, damage: str | None, message: str) -> None:
    path = tmp_path / "baseline.json"
    if damage is not None:
        path.write_text(damage)
    code, out, err = run(
        "check", "--blocks", "basic", "--channels", "8", "--spatial", "8", "--baseline", str(path), "--no-time"
    )
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_baseline_of_another_suite_is_refused(tmp_path: Path, counts_suite: Suite) -> None:
    path = tmp_path / "b.json"
    save_baseline(counts_suite, path)
    code, _, err = run("check", "--blocks", "basic", "--channels", "32", "--baseline", str(path), "--no-time")
    assert code == 2 and "taken from a different suite" in err and "--update" in err


def test_new_and_missing_cells_are_reported_and_pass(counts_suite: Suite) -> None:
    base = measure(counts_suite)
    grown = replace(counts_suite, cells=(*counts_suite.cells[1:], BlockSpec("basic", 24, spatial=8)))
    result = judge_snapshots(base, measure(grown))
    statuses = {(v.cell, v.status) for v in result.verdicts}
    assert ("basic 24→24 @ 1×24×8×8", "new") in statuses and (cell_id(counts_suite.cells[0]), "missing") in statuses
    assert result.passed
    new_lines = [line for line in to_text(result).splitlines() if line.strip().startswith("basic 24→24")]
    metrics = ", ".join(counts_suite.metrics)  # one line for the new cell, naming every metric it was not compared on
    assert [line.strip() for line in new_lines if "not in the baseline" in line] == [
        f"basic 24→24 @ 1×24×8×8: {metrics}: not in the baseline; --update records it"
    ]


def test_a_baseline_that_timed_another_step_is_refused(timed: tuple[Suite, Snapshot]) -> None:
    suite, base = timed
    with pytest.raises(BlockprofError, match="the baseline timed mode 'fwd' and this suite times 'train'"):
        check(replace(suite, timing=replace(suite.timing, mode="train")), base)


# --- reports ---


def test_junit_xml_parses_with_the_right_counts(tmp_path: Path, counts_suite: Suite) -> None:
    base = measure(counts_suite)
    key = cell_id(counts_suite.cells[2])
    cells = dict(base.cells)
    cells[key] = replace(cells[key], counts={**cells[key].counts, "params": 1, "train_flops": 2})
    result = judge_snapshots(replace(base, cells=cells), base)
    root = ET.fromstring(to_junit(result))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == int(suite.get("tests")) == len(counts_suite.cells) * len(counts_suite.metrics)
    failed = [(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None]
    assert failed == [(key, "params"), (key, "train_flops")] and suite.get("failures") == "2"
    assert suite.get("errors") == "0" and suite.get("skipped") == "0"
    assert "→" in cases[0].get("classname")  # unicode cell names survive


def test_junit_escapes_what_xml_needs_escaped() -> None:
    snapshot_cells = {}
    suite = inline_suite(["basic"], [8], [8], [1], metrics=("params",))
    base = measure(suite)
    key = cell_id(suite.cells[0])
    snapshot_cells[key] = replace(base.cells[key], counts={"params": 5})
    result = judge_snapshots(replace(base, cells=snapshot_cells), replace(base, suite=replace(suite, name='a<b & "c"')))
    root = ET.fromstring(to_junit(result))
    assert root.get("name") == 'blockprof check a<b & "c"'


def test_cli_check_writes_markdown_and_junit_and_update_accepts_a_change(tmp_path: Path) -> None:
    baseline, md, junit = tmp_path / "b.json", tmp_path / "s.md", tmp_path / "r.xml"
    cells = ("--blocks", "basic,bottleneck", "--channels", "16", "--spatial", "8")
    assert run("baseline", "save", *cells, "-o", str(baseline), "--no-time")[0] == 0
    data = json.loads(baseline.read_text())
    data["cells"][0]["counts"]["params"] += 7
    baseline.write_text(json.dumps(data))

    code, out, _ = run(
        "check", *cells, "--baseline", str(baseline), "--no-time", "--markdown", str(md), "--junit", str(junit)
    )
    assert code == 1 and "FAILED: 1 changed count(s)" in out
    assert md.read_text().startswith("### ❌ blockprof check FAILED") and "| cell" in md.read_text()
    assert ET.parse(junit).getroot().find("testsuite").get("failures") == "1"

    code, _, err = run("check", *cells, "--baseline", str(baseline), "--no-time", "--update")
    assert code == 0 and "1 change(s) accepted" in err
    assert run("check", *cells, "--baseline", str(baseline), "--no-time")[0] == 0


def test_update_records_a_baseline_where_none_is_usable(tmp_path: Path) -> None:
    baseline = tmp_path / "b.json"
    baseline.write_text("{ not json")
    cells = ("--blocks", "basic", "--channels", "16", "--spatial", "8", "--no-time")
    code, _, err = run("check", *cells, "--baseline", str(baseline), "--update")
    assert code == 0 and "is not valid JSON" in err and "wrote a new baseline" in err
    assert run("check", *cells, "--baseline", str(baseline))[0] == 0


def test_cli_timed_check_says_which_comparison(tmp_path: Path) -> None:
    baseline = tmp_path / "b.json"
    cells = ("--blocks", "basic", "--channels", "16", "--spatial", "8", "--rounds", "6", "--sample-time", "0.01")
    assert run("baseline", "save", *cells, "-o", str(baseline))[0] == 0
    data = json.loads(baseline.read_text())
    assert len(data["reference"]["rounds_s"]) == len(data["cells"][0]["rounds_s"]) == 3 * 6  # 3 sessions pooled
    data["environment"]["cpu_model"] = "Some Other CPU"
    baseline.write_text(json.dumps(data))
    _code, out, _ = run(  # its exit code is the verdict on two noisy timings: not what this test checks
        "check", *cells, "--baseline", str(baseline), "--comparison", "auto", "--markdown", str(tmp_path / "s.md")
    )
    assert "times: times ÷ reference kernel in the same round, because the environment differs" in out
    assert "cpu_model Some Other CPU → " in out and "×ref" in (tmp_path / "s.md").read_text()
    _code, out, _ = run("check", *cells, "--baseline", str(baseline), "--no-time")
    assert "times: not compared: this check does not time" in out


def test_inline_options_and_suite_file_conflict() -> None:
    code, _, err = run(
        "check", "--suite", str(ROOT / "benchmarks" / "suite.toml"), "--channels", "8", "--baseline", "x.json"
    )
    assert code == 2 and "not both (drop --channels)" in err


# --- suites ---


def test_the_project_suite_loads() -> None:
    suite = load_suite(ROOT / "benchmarks" / "suite.toml")
    assert suite.name == "blockprof" and suite.timed and len(suite.cells) == 5
    assert BlockSpec("bottleneck", 256, spatial=14, groups=32, width_per_group=4) in suite.cells


def test_the_committed_baseline_matches_the_suite_and_the_counts() -> None:
    """benchmarks/baseline.json was written by the tool from benchmarks/suite.toml: its counts are today's."""
    suite = load_suite(ROOT / "benchmarks" / "suite.toml")
    result = check(suite.counts_only(), ROOT / "benchmarks" / "baseline.json")
    assert result.passed, to_markdown(result)
    assert len(result.baseline.reference or ()) == suite.timing.rounds * suite.timing.baseline_sessions


@pytest.mark.parametrize(
    "toml, message",
    [
        ({"cells": [{"blocks": ["basic"], "chanels": [8]}]}, "unknown key in [[cells]] #1 'chanels'"),
        ({"cells": [{"channels": [8]}]}, "has no 'blocks'"),
        ({}, "no [[cells]] tables"),
        ({"cells": [{"blocks": "basic"}], "rules": {"tolerence": 0.1}}, "unknown key in [rules] 'tolerence'"),
        ({"cells": [{"blocks": "basic"}], "rules": {"tolerance": -1}}, "tolerance must be a fraction above 0"),
        ({"cells": [{"blocks": "basic"}], "timing": {"rounds": 2}}, "rounds must be a whole number from 5"),
        ({"cells": [{"blocks": "basic"}], "metrics": ["flops"]}, "unknown metric(s) ['flops']"),
        ({"cells": [{"blocks": ["basic"], "groups": 4}]}, "option 'groups' applies to none of the blocks basic"),
    ],
)
def test_suite_mistakes_are_one_line_errors(toml: dict, message: str) -> None:
    with pytest.raises(BlockprofError) as e:
        suite_from_toml(toml)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_overlapping_cell_tables_list_each_cell_once() -> None:
    suite = suite_from_toml(
        {"cells": [{"blocks": ["basic", "bottleneck"], "channels": 8}, {"blocks": ["basic"], "channels": [8, 16]}]}
    )
    assert [cell_id(s) for s in suite.cells] == [
        "basic 8→8 @ 1×8×56×56",
        "bottleneck 8→8 @ 1×8×56×56",
        "basic 16→16 @ 1×16×56×56",
    ]
    with pytest.raises(BlockprofError, match="more than once"):
        Suite((BlockSpec("basic", 8), BlockSpec("basic", 8)))


def test_a_bad_suite_file_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text("[[cells]\nblocks = ")
    code, _, err = run("check", "--suite", str(path), "--baseline", "b.json")
    assert code == 2 and "is not valid TOML" in err


def test_the_check_commands_do_not_import_torch_for_help() -> None:
    code = (
        "import sys; from blockprof.cli import cli; cli(['check', '--help'], standalone_mode=False); "
        "cli(['baseline', 'save', '--help'], standalone_mode=False); assert 'torch' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
