"""Verdicts: counts exactly, times by asv's rule (a size AND a significance), and when times may be judged at all.

* counts (params, params_conv, MACs, train FLOPs) are deterministic: any change fails, whichever way it goes;
* a time is slower only when the ratio of medians exceeds ``1 + tolerance`` AND a one-sided Mann–Whitney U
  test says so at level ``alpha``; a large change that is not significant is ``~`` and passes;
* a stored baseline's times are judged only on its own machine class (CPU model, cores, torch build, threads):
  elsewhere they are reported as ``unjudged`` with the reason, unless the rules ask otherwise
  (``across_machines``); counts are always judged;
* a time that cannot be computed (no samples, a non-finite or non-positive one) is an ``error``, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from blockprof.errors import BlockprofError
from blockprof.regress.baseline import Snapshot, load_baseline, machine_class, median
from blockprof.regress.suite import TIME_METRIC, Rules, Suite

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

#: verdicts that fail a check
FAILING = frozenset({"changed", "slower", "error"})
ACROSS_FLAG = "--judge-across-machines"


@dataclass(frozen=True)
class Verdict:
    """One cell × metric. ``old``/``new``: the exact counts, or the time medians (seconds
    for ``raw``, multiples of the reference kernel for ``normalised``, instructions per call
    for ``instructions``); ``change`` is new/old − 1; ``ci`` the 95% interval of the time
    ratio from :func:`ratio_interval`."""

    cell: str
    metric: str
    status: str
    old: float | None = None
    new: float | None = None
    change: float | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None
    runs: tuple[int, int] | None = None
    comparison: str | None = None
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status in FAILING


@dataclass(frozen=True)
class CheckResult:
    """Every verdict of a check, the comparison its times used and why, and both snapshots (``--update``
    rewrites the baseline from the current one)."""

    verdicts: tuple[Verdict, ...]
    comparison: str | None
    reason: str
    baseline: Snapshot
    current: Snapshot
    mode: str = "baseline"

    @property
    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.failed]

    @property
    def improvements(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "faster"]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def exit_code(self) -> int:
        """0 when it passed, 1 on any regression (input errors raise before a result exists)."""
        return 0 if self.passed else 1

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [{**vars(v), "failed": v.failed} for v in self.verdicts]
        return pd.DataFrame.from_records(rows, columns=[*Verdict.__dataclass_fields__, "failed"])


def check(
    suite: Suite, baseline: Snapshot | str | Path, *, progress: Callable[[int, int], None] | None = None
) -> CheckResult:
    """Measure ``suite`` now and judge it against ``baseline`` (a snapshot or a path),
    confirming any slower time with a second measurement when the rules say so."""
    from blockprof.regress.measure import measure

    if not isinstance(baseline, Snapshot):
        baseline = load_baseline(baseline)
    ensure_comparable(suite, baseline)
    result = judge_snapshots(baseline, measure(suite, progress=progress))
    return confirm(result, progress=progress) if suite.rules.confirm else result


def suspects(result: CheckResult) -> list[str]:
    """The cells whose time was judged slower: the ones a confirming measurement re-times."""
    return [
        v.cell
        for v in result.verdicts
        if v.metric == TIME_METRIC and v.status == "slower" and v.comparison != "instructions"
    ]


def confirm(result: CheckResult, *, progress: Callable[[int, int], None] | None = None) -> CheckResult:
    """Time the cells judged slower once more (with the reference, fresh rounds) and keep
    ``slower`` only where the second measurement is slower too; elsewhere the
    verdict becomes ``~``. Contention that comes and goes must strike twice to fail
    a check; a real slowdown shows both times."""
    from blockprof.regress.measure import measure

    cells_again = suspects(result)
    if not cells_again:
        return result
    suite = result.current.suite
    cells = dict(zip(suite.ids, suite.cells, strict=True))
    again = measure(
        replace(suite, cells=tuple(cells[c] for c in cells_again), metrics=(TIME_METRIC,)), progress=progress
    )
    return settle(result, judge_snapshots(result.baseline, again))


def settle(first: CheckResult, second: CheckResult) -> CheckResult:
    """The first result with each slower time kept only where ``second`` (a re-measurement) finds it slower too."""
    again = {v.cell: v for v in second.verdicts if v.metric == TIME_METRIC}
    verdicts = []
    for v in first.verdicts:
        if v.metric == TIME_METRIC and v.status == "slower" and v.cell in again:
            w = again[v.cell]
            seen = (
                f"second measurement {w.change:+.1%}, p={w.p_value:.2g}"
                if w.change is not None and w.p_value is not None
                else f"second measurement: {w.note}"
            )
            if w.status == "slower":
                v = replace(v, note=f"{v.note}; confirmed ({seen})")
            else:
                v = replace(v, status="~", note=f"slower in the first measurement only ({seen}): passes as noise")
        verdicts.append(v)
    return replace(first, verdicts=tuple(verdicts))


def ensure_comparable(suite: Suite, baseline: Snapshot) -> None:
    """Refuse a baseline that measured something else: cells of the suite it does not hold (another suite,
    or cells added since), or another timing step. Decided before anything is measured."""
    new = [i for i in suite.ids if i not in baseline.cells]
    if len(new) == len(suite.ids):
        raise BlockprofError(
            f"the baseline was taken from a different suite ({baseline.suite.name!r}): "
            f"none of its {len(baseline.cells)} cells "
            f"is among this suite's {len(suite.cells)}; run the check with --update to record a new baseline"
        )
    if new:
        more = f" and {len(new) - 1} more" if len(new) > 1 else ""
        raise BlockprofError(
            f"the baseline (suite {baseline.suite.name!r}) has no entry for {len(new)} "
            f"of this suite's {len(suite.ids)} cells "
            f"({new[0]}{more}): they cannot be judged; run with --update to record them"
        )
    if suite.timed and baseline.reference is not None:
        old, new_plan = baseline.suite.timing, suite.timing
        for attr in ("mode", "device", "dtype", "clock"):
            if getattr(old, attr) != getattr(new_plan, attr):
                raise BlockprofError(
                    f"the baseline timed {attr} {getattr(old, attr)!r} "
                    f"and this suite times {getattr(new_plan, attr)!r}; "
                    f"the times are not comparable: run with --update to record a new baseline"
                )


def judge_snapshots(baseline: Snapshot, current: Snapshot, *, mode: str = "baseline") -> CheckResult:
    """Judge ``current`` against ``baseline`` under the current suite's rules (pure: measures nothing).
    ``mode``: ``baseline`` (a stored snapshot) or ``ab`` (both measured now, interleaved, on this machine)."""
    suite = current.suite
    comparison, reason = choose_comparison(suite.rules.comparison, baseline, current)
    if mode == "ab":
        reason = reason.replace("same environment as the baseline", "base and change measured here, interleaved")
    judged, why_not = judged_here(suite.rules, baseline, current, mode)
    if comparison is not None and not judged:
        reason = f"{reason}; NOT JUDGED: {why_not}"
    verdicts: list[Verdict] = []
    for key in suite.ids:
        new = current.cells[key]
        old = baseline.cells.get(key)
        for metric in suite.metrics:
            if old is None:
                verdicts.append(Verdict(key, metric, "new", note="not in the baseline; --update records it"))
            elif metric == TIME_METRIC:
                verdict = _time_verdict(key, baseline, current, comparison, suite.rules)
                if not judged and verdict.status in ("ok", "slower", "faster", "~"):
                    verdict = replace(
                        verdict,
                        status="unjudged",
                        note="reported, not judged: the baseline is from another machine class",
                    )
                verdicts.append(verdict)
            else:
                verdicts.append(_count_verdict(key, metric, old.counts.get(metric), new.counts.get(metric)))
    for key in baseline.cells:
        if key not in current.cells:
            verdicts += [
                Verdict(key, m, "missing", note="in the baseline but not in this suite; --update drops it")
                for m in suite.metrics
            ]
    return CheckResult(tuple(verdicts), comparison, reason, baseline, current, mode)


def judged_here(rules: Rules, baseline: Snapshot, current: Snapshot, mode: str) -> tuple[bool, str]:
    """Whether stored times may be judged on this machine: only within the baseline's machine class
    (or when the rules say ``across_machines``); A/B times, measured side by side, always are."""
    if mode == "ab":
        return True, ""
    old, new = machine_class(baseline.environment), machine_class(current.environment)
    differs = ", ".join(f"{k} {old[k]} → {new[k]}" for k in old if old[k] != new[k])
    if not differs:
        return True, ""
    if rules.across_machines:
        return True, ""
    return False, (
        f"the baseline was taken on another machine class ({differs}), where times differ for reasons no "
        f"normalisation removes; counts are judged; for times use 'check --against REF' (A/B on this machine), "
        f"a baseline taken on this class, or {ACROSS_FLAG}"
    )


def choose_comparison(requested: str, baseline: Snapshot, current: Snapshot) -> tuple[str | None, str]:
    """The comparison the rules ask for (``auto``: ``raw`` on the baseline's own
    environment, else ``normalised``), with the reason in words."""
    if current.reference is None or baseline.reference is None:
        return None, "not compared: " + (
            "this check does not time" if current.reference is None else "the baseline holds no times"
        )
    if current.suite.timing.clock == "instructions":
        return (
            "instructions",
            "instructions per call (valgrind, deterministic): compared by size alone, no significance test",
        )
    differences = environment_differences(baseline.environment or {}, current.environment or {})
    if requested == "raw":
        return "raw", "raw times" + (
            f", although the environment differs from the baseline's: {differences}"
            if differences
            else ": same environment as the baseline"
        )
    if requested == "normalised":
        where = (
            f"the environment differs from the baseline's: {differences}"
            if differences
            else "same environment as the baseline"
        )
        return "normalised", f"times ÷ reference kernel in the same round ({where})"
    if differences:
        return (
            "normalised",
            "times ÷ reference kernel in the same round, because the environment differs from the baseline's: "
            + differences,
        )
    return "raw", "raw times: same environment as the baseline"


#: environment fields that make raw times incomparable when they differ
_ENV_KEYS = (
    "torch_version",
    "device",
    "device_name",
    "cpu_model",
    "cpu_count",
    "threads",
    "dtype",
    "memory_format",
    "cuda_version",
    "cudnn_version",
    "python_version",
    "host",
    "allocator",
)


def environment_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The fields that differ, as ``field old → new``, comma-separated ('' when none)."""
    return ", ".join(f"{k} {old.get(k)} → {new.get(k)}" for k in _ENV_KEYS if old.get(k) != new.get(k))


def _count_verdict(cell: str, metric: str, old: int | None, new: int | None) -> Verdict:
    if old == new:
        return Verdict(cell, metric, "ok", old, new, 0.0 if old is not None else None)
    change = (new / old - 1) if old and new is not None else None
    return Verdict(
        cell, metric, "changed", old, new, change, note="counts must match exactly; --update if the change is intended"
    )


def _time_verdict(cell: str, baseline: Snapshot, current: Snapshot, comparison: str | None, rules: Rules) -> Verdict:
    old_cell, new_cell = baseline.cells[cell], current.cells[cell]
    if comparison is None:
        return Verdict(cell, TIME_METRIC, "new" if baseline.reference is None else "missing", note="times not compared")
    if new_cell.error:
        return Verdict(cell, TIME_METRIC, "error", note=new_cell.error)
    if old_cell.rounds is None:
        return Verdict(
            cell, TIME_METRIC, "new", note=f"the baseline has no time for this cell ({old_cell.error or 'not timed'})"
        )
    if comparison in ("raw", "instructions"):
        old, new = old_cell.samples(), new_cell.samples()
    else:
        old, new = baseline.normalised(cell), current.normalised(cell)
    return judge_samples(cell, old, new, rules, comparison)


def unusable(samples: Sequence[float]) -> str | None:
    """Why a set of samples cannot be compared (too few, or a value that is not a finite positive number), or None."""
    if len(samples) < 2:
        return f"{len(samples)} sample(s)"
    bad = [s for s in samples if not (isinstance(s, (int, float)) and math.isfinite(s) and s > 0)]
    return f"a sample of {bad[0]!r}" if bad else None


def judge_samples(cell: str, old: Sequence[float], new: Sequence[float], rules: Rules, comparison: str) -> Verdict:
    """asv's rule on two sets of samples: slower/faster only when the ratio of medians is
    beyond the tolerance AND a one-sided Mann–Whitney U test is significant; ``~`` when
    only the first holds. Instruction counts (deterministic) are judged by the ratio alone.
    Samples that cannot be compared give an ``error``: nothing that cannot be computed passes."""
    for side, samples in (("baseline", old), ("current", new)):
        why = unusable(samples)
        if why:
            return Verdict(
                cell,
                TIME_METRIC,
                "error",
                runs=(len(old), len(new)),
                comparison=comparison,
                note=f"the time cannot be judged: the {side} has {why}",
            )
    from scipy.stats import mannwhitneyu

    old_median, new_median = median(old), median(new)
    ratio = new_median / old_median
    factor = 1 + rules.tolerance
    p: float | None = None
    if comparison == "instructions":  # deterministic counts: judged by size alone, no significance test
        status = "slower" if ratio > factor else "faster" if ratio < 1 / factor else "ok"
        note = {
            "slower": f"more than {rules.tolerance:.0%} more instructions per call",
            "faster": f"more than {rules.tolerance:.0%} fewer instructions per call: --update to lock it in",
            "ok": f"instructions within ±{rules.tolerance:.0%}",
        }[status]
    else:
        p_slower = float(mannwhitneyu(new, old, alternative="greater").pvalue)
        p_faster = float(mannwhitneyu(new, old, alternative="less").pvalue)
        if ratio > factor:
            status, p = ("slower" if p_slower < rules.alpha else "~"), p_slower
        elif ratio < 1 / factor:
            status, p = ("faster" if p_faster < rules.alpha else "~"), p_faster
        else:
            status, p = "ok", min(p_slower, p_faster)
        note = {
            "slower": f"slower by more than {rules.tolerance:.0%} and significant (p < {rules.alpha:g})",
            "faster": f"faster by more than {rules.tolerance:.0%} and significant: --update to lock it in",
            "~": f"beyond ±{rules.tolerance:.0%} but not significant (p ≥ {rules.alpha:g}): noise, passes",
            "ok": f"within ±{rules.tolerance:.0%}",
        }[status]
    return Verdict(
        cell,
        TIME_METRIC,
        status,
        old_median,
        new_median,
        ratio - 1,
        p,
        None if p is None else ratio_interval(old, new),
        (len(old), len(new)),
        comparison,
        note,
    )


def ratio_interval(old: Sequence[float], new: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """The distribution-free interval of the time ratio new/old that inverts the
    Mann–Whitney test (Hodges–Lehmann, on log times): the order statistics of all
    pairwise log-ratios at the test's normal-approximation critical value."""
    import numpy as np
    from scipy.stats import norm

    diffs = np.sort((np.log(np.asarray(new))[:, None] - np.log(np.asarray(old))[None, :]).ravel())
    n, m = len(new), len(old)
    pairs = n * m
    k = int(pairs / 2 - norm.ppf(0.5 + confidence / 2) * math.sqrt(pairs * (n + m + 1) / 12))
    k = min(max(k, 0), pairs - 1)
    return float(np.exp(diffs[k])), float(np.exp(diffs[pairs - 1 - k]))
