"""Regression checks for CI: exact counts, noise-aware timings, judged only where they compare.

A :class:`Suite` names the cells (block specs) and the rules (:mod:`.suite`). :func:`measure` takes a
:class:`Snapshot` of the code as it is now: each cell's counts and, per timing round, its raw per-call times,
with a fixed reference kernel timed in the same rounds (:mod:`.measure`). A baseline is a snapshot saved as
plain JSON and validated field by field when read (:mod:`.baseline`). :func:`check` measures a fresh snapshot
and :func:`judge_snapshots` judges it against the baseline (:mod:`.judge`); :func:`ab_check` measures a base tree and
this one side by side instead, so no timing crosses machines (:mod:`.ab`, the recommended CI mode).

Each round gives one sample per cell (the median of its calls in that round): samples within a round share
the machine's state, so rounds, not calls, are the independent replicates the test counts.
"""

from blockprof.regress.ab import BasePredatesAB, ab_check, base_tree
from blockprof.regress.baseline import (
    REFERENCE,
    SCHEMA_VERSION,
    CellResult,
    Snapshot,
    load_baseline,
    machine_class,
    validate,
    write_baseline,
)
from blockprof.regress.judge import (
    FAILING,
    CheckResult,
    Verdict,
    check,
    choose_comparison,
    confirm,
    ensure_comparable,
    environment_differences,
    judge_samples,
    judge_snapshots,
    ratio_interval,
)
from blockprof.regress.measure import git_info, measure, reference_module, save_baseline, valgrind_missing
from blockprof.regress.suite import (
    CLOCKS,
    COMPARISONS,
    COUNT_METRICS,
    METRICS,
    TIME_METRIC,
    Rules,
    Suite,
    TimingPlan,
    cell_id,
    inline_suite,
    load_suite,
    suite_from_toml,
)

__all__ = [
    "CLOCKS",
    "COMPARISONS",
    "COUNT_METRICS",
    "FAILING",
    "METRICS",
    "REFERENCE",
    "SCHEMA_VERSION",
    "TIME_METRIC",
    "BasePredatesAB",
    "CellResult",
    "CheckResult",
    "Rules",
    "Snapshot",
    "Suite",
    "TimingPlan",
    "Verdict",
    "ab_check",
    "base_tree",
    "cell_id",
    "check",
    "choose_comparison",
    "confirm",
    "ensure_comparable",
    "environment_differences",
    "git_info",
    "inline_suite",
    "judge_samples",
    "judge_snapshots",
    "load_baseline",
    "load_suite",
    "machine_class",
    "measure",
    "ratio_interval",
    "reference_module",
    "save_baseline",
    "suite_from_toml",
    "valgrind_missing",
    "validate",
    "write_baseline",
]
