"""``blockprof check``: counts exactly, times with a statistical rule, against a saved baseline.

Exit codes: 0 passed, 1 a regression (a changed count, a significantly slower
time, a cell that failed to run), 2 bad input (suite, baseline, options).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

from blockprof import schema
from blockprof.commands import options

if TYPE_CHECKING:
    from blockprof.regress import Suite

_INLINE = ("blocks", "extra_blocks", "channels", "spatial", "batch", *schema.VARIANT_NAMES)
_RULES = ("tolerance", "alpha", "comparison", "confirm")
_TIMING = ("rounds", "sample_time", "threads", "mode")


def suite_from_options(ctx: click.Context, params: dict[str, Any]) -> Suite:
    """The suite named by ``--suite``, or built from the inline sweep options; the
    overrides (``--tolerance``, ``--rounds``, ...) replace the suite's own values."""
    from dataclasses import replace

    from blockprof.regress import inline_suite, load_suite

    given = [name for name in _INLINE if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if params["suite"] is not None:
        if given:
            flags = ", ".join("--" + ("block" if n == "extra_blocks" else n.replace("_", "-")) for n in given)
            raise click.BadParameter(f"give the cells either in the suite file or inline, not both (drop {flags})", param_hint="--suite")
        suite = load_suite(params["suite"])
    else:
        suite = inline_suite((*params["blocks"], *params["extra_blocks"]), params["channels"], params["spatial"], params["batch"],
                             options.variant_options(**params))
    rules = {k: params[k] for k in _RULES if params.get(k) is not None}
    timing = {k: params[k] for k in _TIMING if params.get(k) is not None}
    suite = replace(suite, rules=replace(suite.rules, **rules), timing=replace(suite.timing, **timing))
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
    from blockprof.errors import BlockprofError

    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise BlockprofError(f"cannot write {what} to {path}: {e.strerror}; give a writable path") from None
    click.echo(f"wrote {what} to {path}", err=True)


@click.command("check")
@options.suite
@click.option("--baseline", "baseline_path", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Baseline JSON written by 'blockprof baseline save'.")
@click.option("--no-time", is_flag=True, help="Compare counts only (seconds instead of a timing run).")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), help="Also write the summary as Markdown (e.g. for $GITHUB_STEP_SUMMARY).")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML: one testcase per cell × metric.")
@click.option("--update", is_flag=True, help="Rewrite the baseline with this run's measurements (deliberately accept the changes).")
@click.pass_context
def cli_command(ctx: click.Context, baseline_path: Path, markdown: Path | None, junit: Path | None, update: bool, **params: Any) -> None:
    """Check counts and times against a baseline; exit 1 on a regression.

    Counts (params, conv weights, MACs, train FLOPs) must match exactly. A time
    is slower only when its median (over the reference kernel's, by default) is
    more than the tolerance slower AND a Mann–Whitney U test over the timing
    rounds says it is significant, in a first and in a confirming measurement.

    Example: blockprof check --suite benchmarks/suite.toml --baseline benchmarks/baseline.json
    """
    from blockprof.errors import BlockprofError
    from blockprof.regress import check, ensure_comparable, load_baseline, measure, write_baseline
    from blockprof.regress_report import to_junit, to_markdown, to_text

    suite = suite_from_options(ctx, params)
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
    click.echo(to_text(result))
    if markdown is not None:
        _write(markdown, to_markdown(result), "the Markdown summary")
    if junit is not None:
        _write(junit, to_junit(result), "JUnit XML")
    if update:
        accepted = len(result.failures) + len(result.improvements)
        sessions = suite.timing.baseline_sessions if suite.timed else 1
        with progress_bar(f"timing the new baseline ({sessions} sessions)") as progress:
            write_baseline(measure(suite, sessions=sessions, progress=progress), baseline_path)
        click.echo(f"--update: rewrote {baseline_path} ({accepted} change(s) accepted)", err=True)
        return
    ctx.exit(result.exit_code)
