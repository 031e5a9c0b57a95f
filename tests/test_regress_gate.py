"""The CI gate's guarantees: malformed baselines and suites are one line (exit 2) naming the field, exit codes
are decided before "passed" is printed, baselines are written atomically, stored times are judged only on their
own machine class, the A/B check measures two trees side by side, and the instructions clock is deterministic."""

from __future__ import annotations

import copy
import errno
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from blockprof.cli import cli
from blockprof.errors import BlockprofError
from blockprof.regress import (
    Rules,
    Snapshot,
    inline_suite,
    judge_samples,
    judge_snapshots,
    load_baseline,
    measure,
    validate,
)
from blockprof.render.check import to_text
from tests.regress_blocks import slowed_block_source

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "benchmarks" / "suite.toml"
COMMITTED = ROOT / "benchmarks" / "baseline.json"
FIRST = 'cells["basic 64→64 @ 1×64×28×28"]'


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def one_line_exit_2(code: int, out: str, err: str, message: str) -> None:
    assert code == 2 and out == "", (code, out, err)
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def committed() -> dict[str, Any]:
    return json.loads(COMMITTED.read_text(encoding="utf-8"))


def setter(*path_and_value: Any) -> Callable[[dict[str, Any], Any], None]:
    """Set the field at the path (all but the last argument) to the last argument."""
    *path, value = path_and_value

    def set_(data: dict[str, Any], _: Any) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return set_


def deleter(*path: Any) -> Callable[[dict[str, Any], Any], None]:
    def delete(data: dict[str, Any], _: Any) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return delete


# --- baselines: one mutation of a valid baseline per class of fault ---

BASELINE_FAULTS = [
    # counts: integers, not strings, lists, bools, negatives; present; not empty
    (
        "count as a string",
        setter("cells", 0, "counts", "params", "12"),
        f'{FIRST}.counts.params must be an integer, got "12"',
    ),
    (
        "count as a list",
        setter("cells", 0, "counts", "params", [12]),
        f"{FIRST}.counts.params must be an integer, got [12]",
    ),
    (
        "count as a bool",
        setter("cells", 0, "counts", "macs", True),
        f"{FIRST}.counts.macs must be an integer, got true",
    ),
    ("count as a float", setter("cells", 0, "counts", "macs", 1.5), f"{FIRST}.counts.macs must be an integer, got 1.5"),
    ("negative count", setter("cells", 0, "counts", "params", -1), f"{FIRST}.counts.params must be an integer"),
    ("empty counts", setter("cells", 0, "counts", {}), f"{FIRST}.counts must be an object of the counts"),
    ("a count missing", deleter("cells", 0, "counts", "macs"), f"{FIRST}.counts.macs is missing"),
    ("unknown count", setter("cells", 0, "counts", "flops", 3), f'{FIRST}.counts key "flops" must be one of'),
    # timing rounds: finite positive numbers, non-empty rounds, enough of them, as many as the reference's
    (
        "time as a string",
        setter("cells", 0, "rounds_s", 0, 0, "0.001"),
        f"{FIRST}.rounds_s[0][0] must be a finite positive number",
    ),
    (
        "NaN time",
        setter("cells", 0, "rounds_s", 0, 0, math.nan),
        f"{FIRST}.rounds_s[0][0] must be a finite positive number, got NaN",
    ),
    (
        "infinite time",
        setter("reference", "rounds_s", 3, 1, math.inf),
        "reference.rounds_s[3][1] must be a finite positive number",
    ),
    ("zero time", setter("cells", 1, "rounds_s", 2, 0, 0), "rounds_s[2][0] must be a finite positive number, got 0"),
    (
        "negative time",
        setter("cells", 0, "rounds_s", 0, 0, -0.001),
        f"{FIRST}.rounds_s[0][0] must be a finite positive number",
    ),
    (
        "empty round",
        setter("cells", 0, "rounds_s", 0, []),
        f"{FIRST}.rounds_s[0] must be a non-empty list of per-call times, got []",
    ),
    ("too few rounds", setter("cells", 0, "rounds_s", [[0.001]] * 2), f"{FIRST}.rounds_s must be at least 5 rounds"),
    ("rounds not a list", setter("cells", 0, "rounds_s", "fast"), f"{FIRST}.rounds_s must be a list of rounds"),
    (
        "fewer rounds than the reference",
        lambda d, _: d["cells"][0]["rounds_s"].pop(),
        f"{FIRST}.rounds_s must be as many rounds as",
    ),
    (
        "reference kernel changed",
        setter("reference", "kernel", "padding", 0),
        "reference.kernel must be this blockprof's reference",
    ),
    # specs: known blocks, whole numbers, sane sizes, known fields
    (
        "unknown block",
        setter("cells", 0, "spec", "block", "nonexistent"),
        "cells[\"basic 64→64 @ 1×64×28×28\"].spec.block: unknown block 'nonexistent'",
    ),
    (
        "width as a string",
        setter("cells", 0, "spec", "in_channels", "64"),
        f'{FIRST}.spec.in_channels must be a whole number, got "64"',
    ),
    (
        "huge width",
        setter("cells", 0, "spec", "in_channels", 9223372036854775807),
        f"{FIRST}.spec: in_channels must be a whole number in [1, 1048576], got 9223372036854775807",
    ),
    ("unknown spec field", setter("cells", 0, "spec", "colour", "red"), f"{FIRST}.spec.colour is not a field"),
    (
        "suite cell of an unknown block",
        setter("suite", "cells", 0, "block", "mystery"),
        "suite.cells[0].block: unknown block 'mystery'",
    ),
    ("duplicate cell", lambda d, _: d["cells"].append(copy.deepcopy(d["cells"][0])), "must be listed once"),
    ("cell error not a string", setter("cells", 0, "error", 5), f"{FIRST}.error must be a string or null, got 5"),
    # the suite and rules as stored
    (
        "sample_time infinite",
        setter("suite", "timing", "sample_time", math.inf),
        "suite.timing: sample_time must be a positive number",
    ),
    (
        "tolerance as a string",
        setter("suite", "rules", "tolerance", "0.1"),
        "suite.rules: tolerance must be a fraction",
    ),
    ("unknown rule", setter("suite", "rules", "strictness", 1), "suite.rules.strictness is not a field"),
    ("unknown metric", setter("suite", "metrics", ["flops"]), "suite.metrics must be a non-empty list of"),
    # the frame
    ("environment a list", setter("environment", []), "environment must be a JSON object, got []"),
    (
        "environment nested",
        setter("environment", "cpu_model", {"a": 1}),
        "environment.cpu_model must be a string, number or null",
    ),
    ("git a string", setter("git", "abc"), 'git must be a JSON object, got "abc"'),
    ("no cells", setter("cells", []), "cells must be a non-empty list of measured cells"),
    ("cells not a list", setter("cells", {"a": 1}), "cells must be a non-empty list"),
    ("a cell not an object", setter("cells", 0, 7), 'cells["0"] must be a JSON object, got 7'),
    ("unknown top-level field", setter("extra", 1), "extra is not a baseline field"),
    ("version a bool", setter("schema_version", True), "has schema version True"),
]


@pytest.mark.parametrize("name, mutate, message", BASELINE_FAULTS, ids=[f[0] for f in BASELINE_FAULTS])
def test_each_malformed_baseline_is_one_line_naming_the_field(
    tmp_path: Path, name: str, mutate: Callable[..., None], message: str
) -> None:
    data = committed()
    mutate(data, None)
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(data, ensure_ascii=False))
    one_line_exit_2(*run("check", "--suite", str(SUITE), "--baseline", str(path), "--no-time"), message=message)


def test_the_committed_baseline_is_valid_and_the_mutations_start_from_it() -> None:
    validate(committed())  # raises on a fault: the faults above are each the only one


@pytest.mark.parametrize(
    "text", ["[" * 100_000 + "]" * 100_000, '{"schema_version": 1, "cells": ' + "[" * 50_000 + "]" * 50_000 + "}"]
)
def test_deeply_nested_json_is_one_line_not_a_recursion_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text(text)
    code, _, err = run("check", "--suite", str(SUITE), "--baseline", str(path), "--no-time")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "nested too deeply" in err or "is not a blockprof baseline" in err or "must be" in err


# --- suites ---

SUITE_FAULTS = [
    ("sample_time = inf", "[timing]\nsample_time = inf", "sample_time must be a positive number of seconds up to 60"),
    ("sample_time = nan", "[timing]\nsample_time = nan", "sample_time must be a positive number"),
    ("huge channels", "", "channels must be a whole number in [1, 1048576]"),
    ("rounds as a string", '[timing]\nrounds = "15"', "rounds must be a whole number from 5"),
    ("rounds huge", "[timing]\nrounds = 100000000", "rounds must be a whole number from 5"),
    ("threads a bool", "[timing]\nthreads = true", "threads must be a positive whole number"),
    ("unknown clock", '[timing]\nclock = "cycles"', "clock must be one of thread, wall, instructions"),
    ("tolerance nan", "[rules]\ntolerance = nan", "tolerance must be a fraction above 0"),
    ("alpha a string", '[rules]\nalpha = "0.01"', "alpha (significance level) must be between 0 and 1"),
    ("across_machines a string", '[rules]\nacross_machines = "yes"', "across_machines must be true or false"),
    (
        "baseline_sessions huge",
        "[timing]\nbaseline_sessions = 1000",
        "baseline_sessions must be a whole number from 1 to 20",
    ),
]


@pytest.mark.parametrize("name, extra, message", SUITE_FAULTS, ids=[f[0] for f in SUITE_FAULTS])
def test_each_malformed_suite_is_one_line(tmp_path: Path, name: str, extra: str, message: str) -> None:
    channels = "9223372036854775807" if name == "huge channels" else "16"
    path = tmp_path / "suite.toml"
    path.write_text(f'name = "s"\n{extra}\n[[cells]]\nblocks = ["basic"]\nchannels = [{channels}]\nspatial = [8]\n')
    one_line_exit_2(
        *run("check", "--suite", str(path), "--baseline", str(tmp_path / "b.json"), "--no-time"), message=message
    )


def test_an_input_too_large_to_allocate_is_refused_before_building() -> None:
    with pytest.raises(BlockprofError, match="elements, beyond"):
        inline_suite(["basic"], [4096], [4096], [512])


# --- a timing comparison that cannot be computed never passes ---


@pytest.mark.parametrize(
    "old, new",
    [
        ([1.0, 1.1, 0.9], [math.nan, 1.0, 1.0]),
        ([1.0, 1.1, 0.9], [0.0, 1.0, 1.0]),
        ([1.0, 1.1, 0.9], [-1.0, -1.0, -1.0]),
        ([], [1.0, 1.0, 1.0]),
        ([1.0, 1.1, 0.9], [1.0]),
        ([math.inf, 1.0, 1.0], [1.0, 1.0, 1.0]),
    ],
)
def test_samples_that_cannot_be_compared_are_an_error_not_a_pass(old: list[float], new: list[float]) -> None:
    verdict = judge_samples("c", old, new, Rules(), "raw")
    assert verdict.status == "error" and verdict.failed and "cannot be judged" in verdict.note


# --- exit codes decided before "passed"; atomic writes ---

CELLS = ("--blocks", "basic", "--channels", "16", "--spatial", "8")


@pytest.fixture
def counts_baseline(tmp_path: Path) -> Path:
    path = tmp_path / "b.json"
    assert run("baseline", "save", *CELLS, "-o", str(path), "--no-time")[0] == 0
    return path


@pytest.mark.parametrize(
    "flag, target",
    [
        ("--markdown", "missing-dir/s.md"),
        ("--junit", "missing-dir/r.xml"),
        ("--markdown", "."),
        ("--junit", "x" * 300 + ".xml"),
    ],
)
def test_an_unwritable_output_is_exit_2_before_anything_is_measured(
    tmp_path: Path, counts_baseline: Path, flag: str, target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    measuring = sys.modules["blockprof.regress.measure"]
    monkeypatch.setattr(measuring, "measure", lambda *a, **k: pytest.fail("measured before checking the output path"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run("check", *CELLS, "--baseline", str(counts_baseline), "--no-time", flag, target)
    assert code == 2 and out == "" and "passed" not in err and len(err.strip().splitlines()) == 1, (out, err)


def test_baseline_save_refuses_an_unwritable_path_before_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    measuring = sys.modules["blockprof.regress.measure"]
    monkeypatch.setattr(measuring, "measure", lambda *a, **k: pytest.fail("measured before checking -o"))
    one_line_exit_2(*run("baseline", "save", *CELLS, "-o", str(tmp_path / "nope" / "b.json")), message="does not exist")


def test_a_baseline_lacking_cells_of_the_suite_is_exit_2(counts_baseline: Path) -> None:
    code, out, err = run(
        "check",
        "--blocks",
        "basic,bottleneck",
        "--channels",
        "16",
        "--spatial",
        "8",
        "--baseline",
        str(counts_baseline),
        "--no-time",
    )
    one_line_exit_2(code, out, err, "has no entry for 1 of this suite's 2 cells (bottleneck 16→16 @ 1×16×8×8)")


def test_check_update_that_fails_to_write_leaves_the_old_baseline(
    counts_baseline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = counts_baseline.read_bytes()
    data = json.loads(before)
    data["cells"][0]["counts"]["params"] += 1  # a change --update would accept
    counts_baseline.write_text(json.dumps(data))
    before = counts_baseline.read_bytes()

    def full_disk(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    code, _, err = run("check", *CELLS, "--baseline", str(counts_baseline), "--no-time", "--update")
    assert code == 2 and "No space left on device" in err and "Traceback" not in err
    assert counts_baseline.read_bytes() == before
    assert [p.name for p in counts_baseline.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_kill_in_the_middle_of_writing_a_baseline_leaves_the_old_one(tmp_path: Path, counts_baseline: Path) -> None:
    before = counts_baseline.read_bytes()
    script = textwrap.dedent(f"""
        import os, signal
        from blockprof.regress import inline_suite, measure, write_baseline
        snapshot = measure(inline_suite(["basic"], [16], [8], [1], metrics=("params", "macs")))
        real_write = os.write
        os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)  # killed after writing, before the rename
        write_baseline(snapshot, {str(counts_baseline)!r})
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True
    )
    assert done.returncode == -9, done.stderr
    assert counts_baseline.read_bytes() == before
    load_baseline(counts_baseline)


# --- machine classes ---


def elsewhere(snapshot: Snapshot, factor: float, **env: object) -> Snapshot:
    cells = {
        k: replace(c, rounds=tuple(tuple(t * factor for t in r) for r in c.rounds)) for k, c in snapshot.cells.items()
    }
    return replace(snapshot, cells=cells, environment={**(snapshot.environment or {}), **env})


def test_stored_times_from_another_machine_class_are_reported_not_judged() -> None:
    base = load_baseline(COMMITTED)
    other = elsewhere(base, 1.5, cpu_model="AMD EPYC 9999", cpu_count=4)  # the same code, 50% slower on another CPU
    result = judge_snapshots(base, other)
    times = [v for v in result.verdicts if v.metric == "time"]
    assert result.passed and {v.status for v in times} == {"unjudged"}
    assert all(v.change == pytest.approx(0.5) for v in times)  # still reported, with its figure
    assert (
        "NOT JUDGED: the baseline was taken on another machine class "
        "(cpu_model Intel(R) Xeon(R) Processor → AMD EPYC 9999" in result.reason
    )
    assert "--judge-across-machines" in result.reason and "reported, not judged" in to_text(result)
    # counts are still judged
    cells = dict(other.cells)
    key = next(iter(cells))
    cells[key] = replace(cells[key], counts={**cells[key].counts, "params": 1})
    assert [v.metric for v in judge_snapshots(base, replace(other, cells=cells)).failures] == ["params"]
    # asked to, it judges: raw times 50% slower fail
    rules = replace(other.suite.rules, across_machines=True, comparison="raw")
    judged = judge_snapshots(base, replace(other, suite=replace(other.suite, rules=rules)))
    assert {v.status for v in judged.verdicts if v.metric == "time"} == {"slower"}


def test_the_same_machine_class_is_judged() -> None:
    base = load_baseline(COMMITTED)
    same = elsewhere(base, 1.5, host="another runner of the same type")
    rules = replace(same.suite.rules, comparison="raw")
    result = judge_snapshots(base, replace(same, suite=replace(same.suite, rules=rules)))
    assert {v.status for v in result.verdicts if v.metric == "time"} == {"slower"} and "NOT JUDGED" not in result.reason


# --- the A/B check: two trees side by side ---


def tree(where: Path, repeats: int) -> Path:
    """A checkout of this blockprof with a user block ``abblock:block`` doing ``repeats`` times the work."""
    shutil.copytree(ROOT / "blockprof", where / "blockprof", ignore=shutil.ignore_patterns("__pycache__"))
    (where / "abblock.py").write_text(slowed_block_source(repeats))
    return where


@pytest.mark.slow
def test_ab_finds_a_slowed_block_and_passes_an_unchanged_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from blockprof.regress import TimingPlan, ab_check

    (tmp_path / "here").mkdir()  # this process names the cells (resolving the user block), as from a checkout's root
    (tmp_path / "here" / "abblock.py").write_text(slowed_block_source(1))
    monkeypatch.syspath_prepend(str(tmp_path / "here"))
    suite = inline_suite(["abblock:block"], [16], [16], [1], timing=TimingPlan(rounds=6, sample_time=0.01))
    base, same, slow = tree(tmp_path / "base", 1), tree(tmp_path / "same", 1), tree(tmp_path / "slow", 3)
    result = ab_check(suite, base, same)
    assert result.passed and result.mode == "ab", to_text(result)
    result = ab_check(suite, base, slow)
    failed = {v.metric: v for v in result.failures}
    assert set(failed) == {"macs", "train_flops", "time"}, to_text(
        result
    )  # 3× the work: counts (torch's counter) and time
    assert failed["macs"].new == 3 * failed["macs"].old and failed["time"].change > 1.0
    assert "A/B on this machine" in to_text(result)


def test_ab_refuses_a_tree_without_blockprof_and_an_unknown_ref(tmp_path: Path) -> None:
    code, out, err = run("check", *CELLS, "--against-path", str(tmp_path), "--no-time")
    one_line_exit_2(code, out, err, "holds no blockprof package")
    code, out, err = run("check", *CELLS, "--against", "no-such-ref-xyz", "--no-time")
    one_line_exit_2(code, out, err, "--against no-such-ref-xyz: not a commit")
    code, out, err = run("check", *CELLS, "--against", "HEAD", "--baseline", "b.json", "--no-time")
    assert code == 2 and "give one of --against REF, --against-path DIR or --baseline FILE" in err


@pytest.mark.slow
def test_ab_against_a_git_ref_counts_from_both_trees(tmp_path: Path) -> None:
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    code, out, err = run("check", *CELLS, "--against", "HEAD", "--no-time", "--markdown", str(tmp_path / "s.md"))
    assert code == 0 and "A/B on this machine: base (commit" in out, err
    assert (tmp_path / "s.md").read_text().startswith("### ✅ blockprof check passed")


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True, capture_output=True
    )


def check_in(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``blockprof check`` run from the checkout ``repo`` (its own blockprof, with itself on PYTHONPATH)."""
    return subprocess.run(
        [sys.executable, "-m", "blockprof", "check", *args],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_ab_reports_cells_the_base_cannot_build_as_new_and_judges_the_rest(tmp_path: Path) -> None:
    """A block registered only in the change, and a user block file the change adds: the base cannot build
    them, so they are new (not compared), and the check passes or fails on the other cells."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    repo = tree(tmp_path / "repo", 1)
    regnet = repo / "blockprof" / "blocks" / "regnet.py"
    registered = regnet.read_text()
    regnet.write_text(registered.replace("@register\nclass RegNetY", "class RegNetY"))  # the base lacks regnet_y
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    regnet.write_text(registered)
    (repo / "newblock.py").write_text(slowed_block_source(1))  # a user block file added by the change
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")
    cells = ("--blocks", "basic,regnet_y,abblock:block,newblock:block", "--channels", "16", "--spatial", "8")

    done = check_in(repo, *cells, "--against", "HEAD~1", "--no-time", "--markdown", str(tmp_path / "s.md"))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split("  ")[0].strip(): line.split()[-1] for line in done.stdout.splitlines() if "@ 1×16×8×8" in line}
    assert rows["basic 16→16 @ 1×16×8×8"] == rows["abblock:block 16→16 @ 1×16×8×8"] == "✓"
    assert rows["regnet_y 16→16 @ 1×16×8×8"] == rows["newblock:block 16→16 @ 1×16×8×8"] == "new"
    # one line per cell the base cannot build, naming the metrics not compared
    assert re.search(
        r"regnet_y 16→16 @ 1×16×8×8: params(, \w+)+: the base cannot build it \(unknown block 'regnet_y'", done.stdout
    )
    assert re.search(
        r"newblock:block 16→16 @ 1×16×8×8: [\w, ]*macs[\w, ]*: the base cannot build it \(user block", done.stdout
    )
    assert done.stdout.count("regnet_y 16→16 @ 1×16×8×8: ") == 1
    assert "new in this tree, not compared" in (tmp_path / "s.md").read_text()

    (repo / "abblock.py").write_text(slowed_block_source(3))  # and now a cell the base can build changes
    done = check_in(repo, *cells, "--against", "HEAD~1", "--no-time")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED: 2 changed count(s)" in done.stdout and "abblock:block 16→16 @ 1×16×8×8: macs" in done.stdout
    assert "the base cannot build it" in done.stdout


def test_a_base_that_predates_ab_checks_falls_back_to_the_stored_baseline(
    tmp_path: Path, counts_baseline: Path
) -> None:
    """The first CI runs after A/B checks land: the base has no worker. Without a fallback that is one line, exit 2;
    with --fallback-baseline the stored baseline judges instead, said so, and a real regression still fails."""
    old = tree(tmp_path / "old", 1)
    (old / "blockprof" / "regress" / "worker.py").unlink()
    code, out, err = run("check", *CELLS, "--against-path", str(old), "--no-time")
    one_line_exit_2(code, out, err, f"the base ({old}) predates A/B checks: its blockprof has no A/B worker")
    assert "give --fallback-baseline FILE" in err

    fallback = ("--fallback-baseline", str(counts_baseline))
    code, out, err = run("check", *CELLS, "--against-path", str(old), "--no-time", *fallback)
    assert code == 0, (out, err)
    instead = f"the base predates A/B checks; judged against the stored baseline {counts_baseline} instead"
    assert f"times: {instead}" in out and "blockprof check passed" in out
    assert f"note: the base ({old}) predates A/B checks" in err

    data = json.loads(counts_baseline.read_text())
    data["cells"][0]["counts"]["macs"] += 1
    counts_baseline.write_text(json.dumps(data))
    code, out, err = run("check", *CELLS, "--against-path", str(old), "--no-time", *fallback)
    assert code == 1 and "FAILED: 1 changed count(s)" in out and instead in out, (out, err)


def test_the_workflow_ab_step_falls_back_when_the_base_predates_ab_checks(tmp_path: Path) -> None:
    """The CI step as written (its own options), against a base without the A/B worker: not exit 2."""
    text = (ROOT / ".github" / "workflows" / "blockprof-check.yml").read_text(encoding="utf-8")
    step = text.split("name: Times A/B against the base commit", 1)[1].split("run: >", 1)[1].split("\n\n", 1)[0]
    args = step.split()
    assert args[:1] == ["blockprof"] and "--fallback-baseline" in args, step
    old = tree(tmp_path / "old", 1)
    (old / "blockprof" / "regress" / "worker.py").unlink()
    assert args[1] == "check" and "--against" in args and "--only-time" in args, step
    code, out, err = run(
        "check",
        "--suite",
        str(ROOT / args[args.index("--suite") + 1]),
        "--fallback-baseline",
        str(ROOT / args[args.index("--fallback-baseline") + 1]),
        "--against-path",
        str(old),
        "--no-time",  # the counts, not the step's timing: the fallback does not depend on the metrics
        "--markdown",
        str(tmp_path / "times.md"),
    )
    assert code == 0, (out, err)
    assert "judged against the stored baseline" in (tmp_path / "times.md").read_text()


def test_the_fallback_baseline_is_checked_before_measuring(tmp_path: Path, counts_baseline: Path) -> None:
    base = tree(tmp_path / "base", 1)  # a base that has the worker: the fallback is not needed, and still checked
    code, out, err = run(
        "check", *CELLS, "--against-path", str(base), "--no-time", "--fallback-baseline", str(tmp_path / "no.json")
    )
    one_line_exit_2(code, out, err, "does not exist")
    code, out, err = run(
        "check", *CELLS, "--baseline", str(counts_baseline), "--fallback-baseline", str(counts_baseline), "--no-time"
    )
    assert code == 2 and "is what an A/B check falls back to" in err, err


# --- the instructions clock ---


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind is not installed: the instructions clock needs it"
)
def test_instruction_counts_are_deterministic_and_see_more_work(monkeypatch: pytest.MonkeyPatch) -> None:
    from blockprof.regress import TimingPlan

    suite = inline_suite(
        ["tests.regress_blocks:basic_repeated"],
        [8],
        [8],
        [1],
        metrics=("time",),
        timing=TimingPlan(clock="instructions"),
    )
    snapshot = measure(suite)
    (cell,) = snapshot.cells.values()
    counts = cell.samples()
    assert (
        len(counts) == 5 and max(counts) / min(counts) < 1.05
    )  # deterministic to a few % (1.6% seen on this 8-channel cell)
    result = judge_snapshots(snapshot, snapshot)
    assert result.comparison == "instructions" and result.passed
    doubled = replace(
        snapshot,
        cells={k: replace(c, rounds=tuple((2 * t for t in r) for r in c.rounds)) for k, c in snapshot.cells.items()},
    )
    assert [v.status for v in judge_snapshots(snapshot, doubled).failures] == ["slower"]


def test_the_instructions_clock_without_valgrind_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    one_line_exit_2(*run("check", *CELLS, "--baseline", "b.json", "--clock", "instructions"), message="needs valgrind")
