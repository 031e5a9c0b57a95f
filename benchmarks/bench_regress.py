"""How well ``blockprof check`` separates real slowdowns from noise, on this machine.

Run:  python benchmarks/bench_regress.py [--checks 10] [--baselines 2] [--trials 8] [--sections allocator,false-alarms,detection,duration]

Three measurements, printed as Markdown:

1. False alarms: unchanged code checked ``--checks`` times against its own fresh
   baseline (``--baselines`` baselines), default suite (benchmarks/suite.toml),
   with each clock (thread CPU time and wall). Every check is judged with raw
   and with reference-normalised times from the same samples, before and after
   the confirming re-measurement, so the variants see identical noise.
2. Detection: a block made slower on purpose by a known fraction. The timed
   module runs a BasicBlock ``BASE_REPEATS`` times per call; ``BASE_REPEATS ×
   (1 + s)`` repeats inject a slowdown ``s`` of exactly that much extra work.
   Levels are interleaved across trials, each trial a fresh baseline and a check,
   and the detection rate per level is reported (raw and normalised, before and
   after confirmation).
3. Duration: wall time of ``blockprof check`` on the default suite, end to end
   in a subprocess, with and without timing.
4. The allocator: one memory-bound block's CPU time per call and page faults per
   call, with glibc's default malloc and with the steady setting the check uses
   (fresh processes: the setting cannot be undone within one).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from blockprof.blocks import registry
from blockprof.blocks.resnet import Basic
from blockprof.regress import (
    CLOCKS,
    CheckResult,
    Snapshot,
    Suite,
    ab_check,
    confirm,
    inline_suite,
    judge_snapshots,
    load_baseline,
    load_suite,
    measure,
)
from blockprof.spec import BlockSpec
from tests.regress_blocks import Repeated, slowed_block_source  # run from the repository root (PYTHONPATH=.)

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "benchmarks" / "suite.toml"
BASE_REPEATS = 20
LEVELS = (0.0, 0.05, 0.10, 0.20, 0.50)


class Scaled(Basic):
    """A BasicBlock run ``repeats`` times per call: work proportional to ``repeats``, counts unchanged."""

    name = "bench_scaled"
    repeats = BASE_REPEATS

    def module(self, spec: BlockSpec) -> torch.nn.Module:
        return Repeated(super().module(spec), self.repeats)


def judged(base: Snapshot, current: Snapshot, comparison: str) -> CheckResult:
    suite = current.suite
    return judge_snapshots(
        base, replace(current, suite=replace(suite, rules=replace(suite.rules, comparison=comparison)))
    )


def with_clock(suite: Suite, clock: str) -> Suite:
    """``suite`` timed with another clock (thread CPU time or wall)."""
    return replace(suite, timing=replace(suite.timing, clock=clock))


def false_alarms(suite: Suite, checks: int, baselines: int) -> list[str]:
    """Every (clock, comparison) judged from the same checks; each failing check confirmed as ``check`` would."""
    keys = [(clock, comparison) for clock in CLOCKS for comparison in ("raw", "normalised")]
    failed = {(k, confirmed): 0 for k in keys for confirmed in (False, True)}
    worst = {k: 0.0 for k in keys}
    per_check: list[float] = []
    ref_shift: dict[str, list[float]] = {clock: [] for clock in CLOCKS[:2]}
    for b in range(baselines):
        bases = {
            clock: measure(with_clock(suite, clock), sessions=suite.timing.baseline_sessions) for clock in CLOCKS[:2]
        }
        for c in range(checks):
            for clock in CLOCKS[:2]:  # the two clocks' checks back to back: the same stretch of machine load
                start = time.perf_counter()
                current = measure(with_clock(suite, clock))
                if clock == suite.timing.clock:
                    per_check.append(time.perf_counter() - start)
                base = bases[clock]
                ref_shift[clock].append(
                    statistics.median(current.reference_samples()) / statistics.median(base.reference_samples()) - 1
                )
                for comparison in ("raw", "normalised"):
                    result = judged(base, current, comparison)
                    worst[(clock, comparison)] = max(
                        worst[(clock, comparison)], *(abs(v.change) for v in result.verdicts if v.metric == "time")
                    )
                    failed[((clock, comparison), False)] += not result.passed
                    failed[((clock, comparison), True)] += not (result.passed or confirm(result).passed)
            print(
                f"  baseline {b + 1} check {c + 1}: reference kernel vs baseline "
                + ", ".join(f"{clock} {ref_shift[clock][-1]:+.0%}" for clock in CLOCKS[:2]),
                file=sys.stderr,
            )
    n = checks * baselines
    shifts = "; ".join(f"{clock} clock {min(v):+.0%} … {max(v):+.0%}" for clock, v in ref_shift.items())
    lines = [
        f"Unchanged code: {baselines} fresh baselines × {checks} checks = {n} checks of the default suite per clock "
        f"({len(suite.cells)} cells, {suite.timing.rounds} rounds × {suite.timing.sample_time:g} s per cell, 1 thread), "
        f"tolerance {suite.rules.tolerance:.0%}, alpha {suite.rules.alpha:g}. Each check is judged four ways from the same "
        f"samples; 'confirmed' re-measures the cells judged slower, as `blockprof check` does. The reference kernel's "
        f"median moved between baseline and check by: {shifts}.",
        "",
        "| clock | comparison | checks failed, first measurement | checks failed, confirmed (shipped rule) | largest \\|change\\| of a time |",
        "|---|---|---:|---:|---:|",
    ]
    for k in keys:
        shipped = " **(default)**" if k == (suite.timing.clock, suite.rules.comparison) else ""
        lines.append(
            f"| {k[0]} | {k[1]}{shipped} | {failed[(k, False)]} / {n} ({failed[(k, False)] / n:.0%}) | "
            f"{failed[(k, True)]} / {n} ({failed[(k, True)] / n:.0%}) | {worst[k]:.0%} |"
        )
    lines += [
        "",
        f"Timing part of one check (in process, {suite.timing.clock} clock): median {statistics.median(per_check):.1f} s, "
        f"range {min(per_check):.1f}–{max(per_check):.1f} s over {n} checks.",
    ]
    return lines


def detection(trials: int, rounds: int, sample_time: float) -> list[str]:
    registry.register(Scaled)
    try:
        suite = inline_suite([Scaled.name], [16], [16], [1], metrics=("time",))
        suite = replace(suite, timing=replace(suite.timing, rounds=rounds, sample_time=sample_time))
        hits = {
            (level, c, confirmed): 0 for level in LEVELS for c in ("raw", "normalised") for confirmed in (False, True)
        }
        measured: dict[float, list[float]] = {level: [] for level in LEVELS}
        for t in range(trials):
            for level in LEVELS[t % len(LEVELS) :] + LEVELS[: t % len(LEVELS)]:  # rotate the order per trial
                Scaled.repeats = BASE_REPEATS
                base = measure(suite, sessions=suite.timing.baseline_sessions)
                Scaled.repeats = round(BASE_REPEATS * (1 + level))
                current = measure(suite)
                for comparison in ("raw", "normalised"):
                    result = judged(base, current, comparison)
                    (verdict,) = result.verdicts
                    hits[(level, comparison, False)] += verdict.status == "slower"
                    hits[(level, comparison, True)] += confirm(result).verdicts[0].status == "slower"
                    if comparison == "normalised":
                        measured[level].append(verdict.change)
            print(f"  detection trial {t + 1}/{trials} done", file=sys.stderr)
    finally:
        del registry._REGISTRY[Scaled.name]
        Scaled.repeats = BASE_REPEATS
    lines = [
        f"A BasicBlock 16→16 at 1×16×16×16 run {BASE_REPEATS} times per call; slowdown s = {BASE_REPEATS}·(1+s) runs "
        f"(exactly s more work). {trials} trials per level, each a fresh baseline then a check ({rounds} rounds × "
        f"{sample_time:g} s, thread clock), levels interleaved. Detected = verdict 'slower' (tolerance 10%, alpha 0.01); "
        "0% is the false-alarm control.",
        "",
        "| injected slowdown | raw | raw, confirmed | normalised | normalised, confirmed (shipped rule) | measured change, normalised: median [min, max] |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for level in LEVELS:
        m = measured[level]
        lines.append(
            f"| {level:.0%} | "
            + " | ".join(f"{hits[(level, c, k)]} / {trials}" for c in ("raw", "normalised") for k in (False, True))
            + f" | {statistics.median(m):+.1%} [{min(m):+.1%}, {max(m):+.1%}] |"
        )
    return lines


def _tree(where: Path, repeats: int = BASE_REPEATS) -> Path:
    """A copy of this checkout's blockprof with ``slowed:block``, a BasicBlock run ``repeats`` times per call."""
    import shutil

    shutil.copytree(ROOT / "blockprof", where / "blockprof", ignore=shutil.ignore_patterns("__pycache__"))
    (where / "slowed.py").write_text(slowed_block_source(repeats))
    return where


class _Hog:
    """One busy process per CPU for the duration of a ``with`` block."""

    def __enter__(self) -> _Hog:
        import os

        self.procs = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(len(os.sched_getaffinity(0)))
        ]
        return self

    def __exit__(self, *_: object) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def modes(suite: Suite, runs: int, hog_runs: int, trials: int) -> list[str]:
    """False alarms of each mode on unchanged code (A/B of two copies of this tree; a stored baseline taken here;
    the committed baseline from another CPU model, judged and as shipped), quiet and beside a CPU hog, and the
    A/B mode's detection of 10/20/50% slowdowns."""
    started = time.perf_counter()
    committed = load_baseline(ROOT / "benchmarks" / "baseline.json")
    with tempfile.TemporaryDirectory() as tmp:
        base, head = _tree(Path(tmp) / "base"), _tree(Path(tmp) / "head")
        here = measure(suite, sessions=suite.timing.baseline_sessions)
        print(f"  baseline here taken ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        tally: dict[tuple[str, str], list[int]] = {}

        def note(key: tuple[str, str], failed: bool) -> None:
            tally.setdefault(key, []).append(int(failed))

        for label, n, context in (("quiet", runs, contextlib.nullcontext), ("CPU hog on every core", hog_runs, _Hog)):
            for i in range(n):
                with context():
                    t0 = time.perf_counter()
                    note((label, "ab"), not ab_check(suite, base, head).passed)
                    t_ab = time.perf_counter() - t0
                    current = measure(suite)
                    stored = judge_snapshots(here, current)
                    note((label, "stored, same machine"), not (stored.passed or confirm(stored).passed))
                    shipped = judge_snapshots(committed, current)
                    note((label, "committed (other CPU), as shipped"), not shipped.passed)
                    across = replace(suite, rules=replace(suite.rules, across_machines=True))
                    judged = judge_snapshots(committed, replace(current, suite=across))
                    note((label, "committed (other CPU), judged"), not (judged.passed or confirm(judged).passed))
                print(
                    f"  {label} run {i + 1}/{n}: A/B {t_ab:.0f} s; failures so far "
                    + ", ".join(f"{k[1]} {sum(v)}" for k, v in tally.items() if k[0] == label),
                    file=sys.stderr,
                )
        detect: dict[float, list[int]] = {}
        changes: dict[float, list[float]] = {}
        sys.path.insert(0, str(head))  # the suite names its cells by importing the block, as a user's checkout does
        try:
            small = inline_suite(["slowed:block"], [16], [16], [1], metrics=("time",))
        finally:
            sys.path.remove(str(head))
        small = replace(
            small, timing=replace(small.timing, rounds=suite.timing.rounds, sample_time=suite.timing.sample_time)
        )
        for t in range(trials):
            for level in (0.10, 0.20, 0.50):
                (Path(tmp) / "head" / "slowed.py").write_text(slowed_block_source(round(BASE_REPEATS * (1 + level))))
                result = ab_check(small, base, head)
                (verdict,) = result.verdicts
                detect.setdefault(level, []).append(int(verdict.status == "slower"))
                changes.setdefault(level, []).append(verdict.change or 0.0)
            print(f"  detection trial {t + 1}/{trials} done", file=sys.stderr)
    load = os.getloadavg()
    lines = [
        f"Unchanged code, the project suite ({len(suite.cells)} cells, {suite.timing.rounds} rounds × {suite.timing.sample_time:g} s, "
        f"thread clock, confirmation on). Each run: one A/B check (two copies of this tree, each in its own worker, "
        f"rounds alternated) and one in-process measurement judged against (a) a baseline saved here at the start, "
        f"(b) the committed baseline (taken on {committed.environment.get('cpu_model')}, {committed.environment.get('cpu_count')} CPUs) "
        f"as shipped (times not judged across machine classes) and (c) the same, judged with --judge-across-machines. "
        f"Load average at the end: {load[0]:.1f} (1 min) on {len(os.sched_getaffinity(0))} CPUs. "
        f"Total {time.perf_counter() - started:.0f} s.",
        "",
        "| conditions | mode | checks failed (false alarms) |",
        "|---|---|---:|",
    ]
    for (label, mode), fails in tally.items():
        lines.append(f"| {label} | {mode} | {sum(fails)} / {len(fails)} |")
    lines += [
        "",
        f"A/B detection: `slowed:block` (a BasicBlock 16→16 at 1×16×16×16 run {BASE_REPEATS}× per call) in the base, "
        f"{BASE_REPEATS}·(1+s)× in the change; {trials} trials per level; detected = verdict 'slower' after confirmation.",
        "",
        "| injected slowdown | detected | measured change: median [min, max] |",
        "|---:|---:|---:|",
    ]
    for level, hits in detect.items():
        m = changes[level]
        lines.append(
            f"| {level:.0%} | {sum(hits)} / {len(hits)} | {statistics.median(m):+.1%} [{min(m):+.1%}, {max(m):+.1%}] |"
        )
    return lines


ALLOCATOR_PROBE = """
import json, resource, sys, time, torch
from torch.utils.benchmark import Timer
from blockprof.blocks.registry import build
from blockprof.timing.env import steady_allocator
from blockprof.spec import BlockSpec
setting = steady_allocator() if sys.argv[1] == "steady" else "default"
torch.set_num_threads(1)
spec = BlockSpec("inverted_residual", 40, spatial=28, se=0.25)
for _ in range(int(sys.argv[2])):
    torch.manual_seed(0)
    m, x = build(spec).eval(), torch.randn(spec.input_shape)
    with torch.inference_mode():
        timer = Timer("m(x)", globals={"m": m, "x": x}, timer=time.thread_time)
        timer.timeit(20)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = timer.timeit(200).median
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 202  # timeit's 2 warm-up calls
    print(json.dumps({"setting": setting, "ms": t * 1e3, "faults": faults}))
"""


def allocator_effect(builds: int, processes: int) -> list[str]:
    """The same block, built ``builds`` times in each of ``processes`` fresh processes, with
    glibc's default malloc and with :func:`steady_allocator` (CPU time per call, page faults)."""
    rows: dict[str, list[dict[str, float]]] = {"default": [], "steady": []}
    for _ in range(processes):
        for setting in rows:  # alternate the settings: both see the same stretch of machine load
            out = subprocess.run(
                [sys.executable, "-c", ALLOCATOR_PROBE, setting, str(builds)],
                cwd=ROOT,
                check=True,
                capture_output=True,
                text=True,
                env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
            ).stdout
            rows[setting] += [json.loads(line) for line in out.splitlines()]
    lines = [
        f"inverted_residual 40→40 se0.25 at 1×40×28×28, forward, 1 thread, CPU time of the thread per call "
        f"(`timeit(200)`), {builds} builds (seed 0) in each of {processes} fresh processes per setting, settings alternated.",
        "",
        "| malloc | median ms | min–max ms | page faults per call: median [min, max] | samples |",
        "|---|---:|---:|---:|---:|",
    ]
    for setting, samples in rows.items():
        ms = [r["ms"] for r in samples]
        faults = [r["faults"] for r in samples]
        label = "glibc defaults" if setting == "default" else f"steady ({samples[0]['setting']})"
        lines.append(
            f"| {label} | {statistics.median(ms):.3f} | {min(ms):.3f}–{max(ms):.3f} | "
            f"{statistics.median(faults):.0f} [{min(faults):.0f}, {max(faults):.0f}] | {len(ms)} |"
        )
    return lines


def duration(repeats: int) -> list[str]:
    lines = ["| command | median s | min–max s | runs |", "|---|---:|---:|---:|"]
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline.json"
        subprocess.run(
            [sys.executable, "-m", "blockprof", "baseline", "save", "--suite", str(SUITE), "-o", str(baseline)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        for label, extra in (("check (counts + times)", []), ("check --no-time (counts only)", ["--no-time"])):
            walls = []
            for _ in range(repeats):
                start = time.perf_counter()
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "blockprof",
                        "check",
                        "--suite",
                        str(SUITE),
                        "--baseline",
                        str(baseline),
                        *extra,
                    ],
                    cwd=ROOT,
                    capture_output=True,
                )
                walls.append(time.perf_counter() - start)
            lines.append(
                f"| `blockprof {label}` | {statistics.median(walls):.1f} | {min(walls):.1f}–{max(walls):.1f} | {repeats} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=10, help="checks per baseline (false alarms)")
    parser.add_argument("--baselines", type=int, default=2, help="fresh baselines (false alarms)")
    parser.add_argument("--trials", type=int, default=8, help="trials per injected slowdown")
    parser.add_argument("--durations", type=int, default=3, help="end-to-end runs of the CLI check")
    parser.add_argument("--runs", type=int, default=8, help="runs per mode, quiet (modes)")
    parser.add_argument("--hog-runs", type=int, default=4, help="runs per mode beside a CPU hog (modes)")
    parser.add_argument("--ab-trials", type=int, default=3, help="A/B detection trials per slowdown (modes)")
    parser.add_argument(
        "--modes-rounds", type=int, default=None, help="rounds per check in 'modes' (default: the suite's)"
    )
    parser.add_argument("--modes-sample-time", type=float, default=None, help="seconds per cell per round in 'modes'")
    parser.add_argument(
        "--sections",
        default="allocator,false-alarms,detection,duration",
        help="comma-separated sections to run (also: modes, the CI modes' false alarms and A/B detection)",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    suite = load_suite(SUITE)
    cpu = torch.backends.cpu.get_cpu_capability()
    print(
        f"# blockprof check: false alarms, detection, duration\n\n{platform.machine()} ({cpu}), "
        f"{len(__import__('os').sched_getaffinity(0))} CPUs, torch {torch.__version__}, timing on {suite.timing.threads} thread(s), "
        f"Python {platform.python_version()}\n"
    )
    started = time.perf_counter()
    if "allocator" in sections:
        print("## The allocator: one block, glibc's default malloc vs the steady setting\n")
        print("\n".join(allocator_effect(builds=4, processes=4)) + "\n")
    if "false-alarms" in sections:
        print("## False alarms (unchanged code)\n")
        print("\n".join(false_alarms(suite, args.checks, args.baselines)) + "\n")
    if "detection" in sections:
        print("## Smallest slowdown detected\n")
        print("\n".join(detection(args.trials, suite.timing.rounds, suite.timing.sample_time)) + "\n")
    if "modes" in sections:
        print("## False alarms per CI mode, and A/B detection\n")
        plan = replace(
            suite.timing,
            rounds=args.modes_rounds or suite.timing.rounds,
            sample_time=args.modes_sample_time or suite.timing.sample_time,
        )
        print("\n".join(modes(replace(suite, timing=plan), args.runs, args.hog_runs, args.ab_trials)) + "\n")
    if "duration" in sections:
        print("## Duration of a check of the default suite (end to end, subprocess)\n")
        print("\n".join(duration(args.durations)) + "\n")
    print(f"\n(benchmark wall time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
