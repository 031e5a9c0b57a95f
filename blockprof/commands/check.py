"""``blockprof check``: counts exactly, times with a statistical rule, against a base commit or a saved baseline.

Exit codes: 0 passed, 1 a regression (a changed count, a significantly slower
time, a cell that failed to run, a time that cannot be judged), 2 bad input
(suite, baseline, options, an output path that cannot be written), all decided
before "passed" is printed: every output path is checked before measuring.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from blockprof import schema
from blockprof.commands import options

if TYPE_CHECKING:
    from blockprof.regress import Suite

_INLINE = (
    "blocks",
    "extra_blocks",
    "channels",
    "spatial",
    "batch",
    "models",
    "model_input",
    "no_blocks",
    *schema.VARIANT_NAMES,
)
_RULES = ("tolerance", "alpha", "comparison", "confirm", "across_machines")
_TIMING = ("rounds", "sample_time", "threads", "mode", "clock")


def suite_from_options(ctx: click.Context, params: dict[str, Any]) -> Suite:
    """The suite named by ``--suite``, or built from the inline sweep options; the
    overrides (``--tolerance``, ``--rounds``, ...) replace the suite's own values."""
    from blockprof.regress import inline_suite, load_suite

    given = [name for name in _INLINE if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if params["suite"] is not None:
        if given:
            names = {"extra_blocks": "block", "models": "model", "model_input": "input"}
            flags = ", ".join("--" + names.get(n, n.replace("_", "-")) for n in given)
            raise click.BadParameter(
                f"give the cells either in the suite file or inline, not both (drop {flags})", param_hint="--suite"
            )
        suite = load_suite(params["suite"])
    else:
        models = options.model_specs(ctx, params)
        suite = inline_suite(
            () if params["no_blocks"] else (*params["blocks"], *params["extra_blocks"]),
            params["channels"],
            params["spatial"],
            params["batch"],
            options.variant_options(**params),
            models=models,
        )
    chosen = {k: params[k] for k in _RULES if params.get(k) is not None}
    rules = {k: v for k, v in chosen.items() if k != "across_machines" or v}  # the flag's absence keeps the suite's
    timing = {k: params[k] for k in _TIMING if params.get(k) is not None}
    suite = replace(suite, rules=replace(suite.rules, **rules), timing=replace(suite.timing, **timing))
    if params.get("no_time") and params.get("only_time"):
        raise click.BadParameter("--no-time and --only-time leave nothing to check; give one", param_hint="--only-time")
    if params.get("only_time"):
        return suite.times_only()
    return suite.counts_only() if params.get("no_time") else suite


@contextlib.contextmanager
def progress_bar(what: str) -> Iterator[Callable[[int, int], None]]:
    """A transient rich progress bar on stderr, fed by ``(done, total)`` callbacks."""
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(what, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def _write(path: Path, text: str, what: str) -> None:
    from blockprof.io import write_output

    write_output(path, text, what)
    click.echo(f"wrote {what} to {path}", err=True)


def clock_option(f: Any) -> Any:
    """``--clock``: what a timing reads (the suite's ``[timing] clock``)."""
    return click.option(
        "--clock",
        type=click.Choice(("thread", "wall", "instructions")),
        default=None,
        help="thread: CPU time of the timing thread (default); wall; "
        "instructions: instructions per call "
        "under valgrind (deterministic counts of work; needs valgrind).",
    )(f)


@click.command("check")
@options.suite
@clock_option
@click.option(
    "--against",
    "against",
    metavar="REF",
    help="A/B: measure git REF (e.g. origin/main, HEAD~1) and this tree side by side, interleaved, in this "
    "job: no stored timing crosses machines (the recommended CI mode).",
)
@click.option(
    "--against-path",
    type=click.Path(file_okay=False, path_type=Path),
    help="A/B against a second checkout at DIR instead of a git ref.",
)
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Baseline JSON written by 'blockprof baseline save'.",
)
@click.option(
    "--fallback-baseline",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --against/--against-path: when the base predates A/B checks (its blockprof has no A/B worker), "
    "judge against this stored baseline instead, and say so.",
)
@click.option(
    "--judge-across-machines",
    "across_machines",
    is_flag=True,
    default=None,
    help="Judge times against a baseline of another machine class (CPU model, cores, torch build); "
    "by default they are only reported.",
)
@click.option("--no-time", is_flag=True, help="Compare counts only (seconds instead of a timing run).")
@click.option(
    "--only-time",
    is_flag=True,
    help="Compare times only (e.g. A/B times while counts are checked against the committed baseline).",
)
@click.option(
    "--markdown",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the summary as Markdown (e.g. for $GITHUB_STEP_SUMMARY).",
)
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write JUnit XML: one testcase per cell × metric.",
)
@click.option(
    "--update",
    is_flag=True,
    help="Rewrite the baseline with this run's measurements (deliberately accept the changes).",
)
@click.pass_context
def cli_command(
    ctx: click.Context,
    against: str | None,
    against_path: Path | None,
    baseline_path: Path | None,
    fallback_baseline: Path | None,
    markdown: Path | None,
    junit: Path | None,
    update: bool,
    **params: Any,
) -> None:
    """Check counts and times against a base commit (A/B) or a baseline; exit 1 on a regression.

    Counts (params, conv weights, MACs, train FLOPs) must match exactly. A time
    is slower only when its median is more than the tolerance slower AND a
    Mann–Whitney U test over the timing rounds says it is significant, in a
    first and in a confirming measurement. With --against the base and this
    tree are timed side by side in this job; a stored baseline's times are
    judged only on the machine class that took it.

    \b
    Examples:
      blockprof check --suite benchmarks/suite.toml --against origin/main
      blockprof check --suite benchmarks/suite.toml --baseline benchmarks/baseline.json
      blockprof check --suite benchmarks/suite.toml --against origin/main --fallback-baseline benchmarks/baseline.json
    """
    from blockprof.errors import BlockprofError
    from blockprof.io import check_writable
    from blockprof.regress import (
        BasePredatesAB,
        ab_check,
        base_tree,
        check,
        ensure_comparable,
        load_baseline,
        measure,
        write_baseline,
    )
    from blockprof.render.check import to_junit, to_markdown, to_text

    given = (("--against", against), ("--against-path", against_path), ("--baseline", baseline_path))
    sources = [flag for flag, value in given if value]
    if len(sources) != 1:
        hint = f"not {' and '.join(sources)}" if sources else "none was given"
        raise click.UsageError(f"give one of --against REF, --against-path DIR or --baseline FILE ({hint})")
    if update and baseline_path is None:
        raise click.BadParameter("--update rewrites a stored baseline; it needs --baseline", param_hint="--update")
    if fallback_baseline is not None and baseline_path is not None:
        raise click.BadParameter(
            "is what an A/B check falls back to; with --baseline give --against REF or --against-path DIR instead",
            param_hint="--fallback-baseline",
        )
    suite = suite_from_options(ctx, params)
    fallback = None
    if fallback_baseline is not None:  # checked now: a broken fallback fails every run, not only one that needs it
        fallback = load_baseline(fallback_baseline)
        ensure_comparable(suite, fallback)
    outputs = (
        (markdown, "the Markdown summary"),
        (junit, "JUnit XML"),
        (baseline_path if update else None, "the baseline"),
    )
    for path, what in outputs:
        if path is not None:
            check_writable(path, what)  # before any measuring: a bad path is exit 2 now, not after "passed"
    if suite.timed and suite.timing.clock == "instructions":
        from blockprof.regress import valgrind_missing

        if why := valgrind_missing():
            raise BlockprofError(why)
    if baseline_path is None:
        what = f"A/B: timing {len(suite.cells)} cells + reference, base and this tree interleaved"
        try:
            with progress_bar(what) as progress:
                if against_path is not None:
                    result = ab_check(suite, against_path, progress=progress)
                else:
                    with base_tree(against) as tree:  # type: ignore[arg-type]
                        result = ab_check(suite, tree, progress=progress)
        except BasePredatesAB:
            predates = BasePredatesAB.words(against or str(against_path))  # the ref, not its temporary worktree
            if fallback is None:
                raise BlockprofError(
                    f"{predates}; give --fallback-baseline FILE to judge against a stored baseline instead, "
                    "or a newer base"
                ) from None
            instead = f"the base predates A/B checks; judged against the stored baseline {fallback_baseline} instead"
            click.echo(f"note: {predates}; judged against the stored baseline {fallback_baseline} instead", err=True)
            with progress_bar(f"timing {len(suite.cells)} cells + reference") as progress:
                result = check(suite, fallback, progress=progress)
            result = replace(result, reason=f"{instead}; {result.reason}")
        _report(result, markdown, junit, to_text, to_markdown, to_junit)
        ctx.exit(result.exit_code)
    try:
        baseline = load_baseline(baseline_path)
        ensure_comparable(suite, baseline)
    except BlockprofError as e:
        if not update:
            raise
        click.echo(f"the baseline is not usable ({e}); --update records a new one", err=True)
        with progress_bar("measuring") as progress:
            write_baseline(measure(suite, sessions=suite.timing.baseline_sessions, progress=progress), baseline_path)
        click.echo(f"wrote a new baseline for {len(suite.cells)} cells to {baseline_path}", err=True)
        return
    with progress_bar(f"timing {len(suite.cells)} cells + reference") as progress:
        result = check(suite, baseline, progress=progress)
    _report(result, markdown, junit, to_text, to_markdown, to_junit)
    if update:
        accepted = len(result.failures) + len(result.improvements)
        sessions = suite.timing.baseline_sessions if suite.timed else 1
        with progress_bar(f"timing the new baseline ({sessions} sessions)") as progress:
            write_baseline(measure(suite, sessions=sessions, progress=progress), baseline_path)
        click.echo(f"--update: rewrote {baseline_path} ({accepted} change(s) accepted)", err=True)
        return
    ctx.exit(result.exit_code)


def _report(result: Any, markdown: Path | None, junit: Path | None, *renderers: Callable[[Any], str]) -> None:
    """Write the files first (their paths were checked before measuring), then print the verdict."""
    to_text, to_markdown, to_junit = renderers
    if markdown is not None:
        _write(markdown, to_markdown(result), "the Markdown summary")
    if junit is not None:
        _write(junit, to_junit(result), "JUnit XML")
    click.echo(to_text(result))
