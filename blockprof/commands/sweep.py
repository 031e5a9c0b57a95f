"""``blockprof sweep``: every cell of a grid into a run directory, saved as each finishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from blockprof import schema
from blockprof.commands import options
from blockprof.sweep import Settings
from blockprof.timing.harness import MAX_MIN_RUN_TIME, MAX_MIN_RUNS, MAX_ROUNDS, MAX_THREADS

GRID_PARAMS = (
    "blocks",
    "extra_blocks",
    "channels",
    "spatial",
    "batch",
    "dtype",
    "device",
    "models",
    "model_input",
    "no_blocks",
    *schema.VARIANT_NAMES,
)
SETTING_PARAMS = ("tools", "time", "modes", "threads", "min_run_time", "rounds", "min_runs")


def _given(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def _grid(ctx: click.Context, params: dict[str, Any], grid_file: Path | None, resume: bool) -> Any:
    """The grid from --grid and the axes given on the command line (these override
    the file's); None when resuming with no grid given (the run keeps its own)."""
    from blockprof.grid import Grid

    if resume and grid_file is None and not any(_given(ctx, p) for p in GRID_PARAMS):
        return None
    base = Grid.from_toml(grid_file) if grid_file else Grid()
    axes = {
        k: params[k] for k in ("channels", "spatial", "batch", "dtype", "device") if not grid_file or _given(ctx, k)
    }
    blocks = params["blocks"] if not grid_file or _given(ctx, "blocks") else base.blocks
    variant = {k: params[k] for k in options.variant_options(**params)}
    models = (*base.models, *options.model_specs(ctx, params))
    return base.replace(
        blocks=() if params["no_blocks"] else (*blocks, *params["extra_blocks"]),
        **axes,
        options={**base.options, **variant},
        models=models,
    )


@click.command("sweep")
@options.blocks
@options.models
@options.grid_axes
@options.variant_axes
@click.option(
    "--dtype",
    type=options.NameList(),
    default="float32",
    show_default=True,
    help="Timing dtype(s): float32, bfloat16, float16.",
)
@click.option(
    "--device", type=options.NameList(), default="auto", show_default=True, help="Timing device(s): auto, cpu, cuda."
)
@click.option(
    "--grid",
    "grid_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A grid file (TOML, see benchmarks/grids/); axes given as options override it.",
)
@click.option(
    "--tools",
    type=options.ToolList(),
    default=",".join(Settings.tools),
    show_default=True,
    help="Counting tools to cross-check each cell with (fvcore,thop,torch), or 'none' for the analytic count alone.",
)
@click.option(
    "--time",
    is_flag=True,
    help="Also time every cell: forward and training step, median and IQR of at least --min-runs samples.",
)
@click.option(
    "--allow-slow-dtype",
    is_flag=True,
    help="Time a 16-bit dtype even where the CPU only emulates it (refused otherwise).",
)
@click.option(
    "--modes", type=options.NameList(), default=",".join(Settings.modes), show_default=True, help="What --time times."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=MAX_THREADS),
    help="Torch threads for timing [default: torch.get_num_threads()].",
)
@click.option(
    "--min-run-time",
    type=options.seconds(MAX_MIN_RUN_TIME),
    default=Settings.min_run_time,
    show_default=True,
    help="Seconds of timed calls per cell and mode.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1, max=MAX_ROUNDS),
    default=Settings.rounds,
    show_default=True,
    help="Interleaved rounds over each group of timed cells.",
)
@click.option(
    "--min-runs",
    type=click.IntRange(min=4, max=MAX_MIN_RUNS),
    default=Settings.min_runs,
    show_default=True,
    help="Fewest samples behind a median.",
)
@click.option(
    "-o",
    "--output",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory to write (records.jsonl + meta.json).",
)
@click.option(
    "--resume", is_flag=True, help="Continue the run in -o: skip the cells it holds (its grid and settings are kept)."
)
@click.option("--retry-failed", is_flag=True, help="With --resume: run the failed cells again too.")
@click.option(
    "--shard",
    metavar="I/N",
    help="Run only the I-th of N disjoint parts of the grid (e.g. a CI matrix job); combine with 'blockprof merge'.",
)
@click.pass_context
def cli_command(
    ctx: click.Context,
    run_dir: Path,
    grid_file: Path | None,
    resume: bool,
    retry_failed: bool,
    shard: str | None,
    **params: Any,
) -> None:
    """Count (and with --time, time) every cell of a grid, saving each as it finishes.

    The grid is blocks × --channels × --spatial × --batch (× variant lists, × dtype ×
    device with --time), plus one cell per --model (a whole model at --input; with
    --no-blocks, the models alone). Ctrl-C stops after the cell in progress; run the
    same command with --resume to finish. A cell that fails is recorded with its error
    and the sweep goes on.

    \b
    Examples:
      blockprof sweep --channels 32,64,128,256 --spatial 56,28 -o runs/widths
      blockprof sweep --model examples.models:small_cnn --input 1,3,32,32 --no-blocks -o runs/cnn
    """
    from blockprof.sweep import SweepInterrupted, sweep

    if retry_failed and not resume:
        raise click.BadParameter("--retry-failed continues a run: add --resume", param_hint="--retry-failed")
    grid = _grid(ctx, params, grid_file, resume)
    settings = {k: params[k] for k in SETTING_PARAMS if _given(ctx, k)}
    if grid is not None:
        _check(ctx, grid, params, resume)
    bar = _ProgressBar()
    try:
        with bar:
            df = sweep(
                grid, run_dir, resume=resume, retry_failed=retry_failed, shard=shard, progress=bar.update, **settings
            )
    except SweepInterrupted as stop:
        from blockprof.commands.exits import interrupted

        p = stop.progress
        interrupted(
            f"interrupted: {p.skipped + p.done} of {p.total} cells are saved in {run_dir} ({p.failed} failed); "
            f"finish with: blockprof sweep -o {run_dir} --resume"
        )
    except KeyboardInterrupt:  # the second Ctrl-C: stopped at once
        from blockprof.commands.exits import interrupted

        interrupted(
            f"interrupted at once: the finished cells are saved in {run_dir}; finish with: blockprof sweep -o {run_dir} --resume"
        )
    _summary(df, bar.state, run_dir)
    if len(df) and (df["status"] != "ok").all():
        click.echo(f"every cell of {run_dir} failed", err=True)
        ctx.exit(1)


def _check(ctx: click.Context, grid: Any, params: dict[str, Any], resume: bool) -> None:
    """What can be refused before the first cell: timing options without --time, a GPU
    that is not there, a dtype the CPU only emulates, a cell too large for memory; and
    the device peaks calibrated (saying so) before the progress bar starts."""
    timed = params["time"]
    if not resume:
        options.refuse_unused_timing(
            ctx, timed, ("modes", "threads", "min_run_time", "rounds", "min_runs", "allow_slow_dtype"), "--time"
        )
    options.check_devices(grid.device)
    if not timed:
        return
    from blockprof.commands.progress import ensure_peaks
    from blockprof.timing.harness import conditions
    from blockprof.timing.memory import check_fits, estimate

    for device in grid.device:
        for dtype in grid.dtype:
            options.check_timing(device, dtype, params["allow_slow_dtype"])
    sizes = {spec: need.total for spec in grid.specs() if (need := estimate([spec])) is not None}
    for device in grid.device:
        cond = conditions(device, grid.dtype[0], threads=params["threads"])
        if sizes:
            widest = "float32" if "float32" in grid.dtype else grid.dtype[0]  # 4 bytes a value: the most memory
            check_fits([max(sizes, key=sizes.__getitem__)], device=cond.device, dtype=widest)
        for dtype in grid.dtype:
            ensure_peaks(device, dtype, params["threads"])


def _summary(df: Any, state: Any, run_dir: Path) -> None:
    for note in state.notes:
        click.echo(f"note: {note}", err=True)
    failed = df[df["status"] != "ok"]
    click.echo(
        f"{state.total} cells in {run_dir}: {state.done} done now, {state.skipped} already done (skipped), "
        f"{state.failed} failed now; {len(failed)} failed in all",
        err=True,
    )
    from blockprof.records import describe

    for row in failed.head(5).to_dict(orient="records"):
        click.echo(f"  failed: {describe(row)}: {row['error']}", err=True)
    if len(failed) > 5:
        click.echo(f"  … and {len(failed) - 5} more (blockprof show {run_dir} --format json)", err=True)
    if len(failed) < len(df):
        from blockprof.records import block_rows

        ok_blocks = block_rows(df[df["status"] == "ok"])
        # plots compare blocks over widths; a run of models alone goes to the report (its per-module trees)
        then = (
            f"blockprof plot {run_dir} -o {run_dir}/plots.html"
            if len(ok_blocks)
            else f"blockprof report {run_dir} -o {run_dir}/report.html"
        )
        click.echo(f"next: blockprof show {run_dir}   |   {then}", err=True)


class _ProgressBar:
    """A rich progress bar on stderr, fed by the sweep's progress callback."""

    def __init__(self) -> None:
        from blockprof.commands.progress import rich_bar

        self.progress = rich_bar("sweep", bar_width=24, transient=False)
        self.task: Any = None
        self.state: Any = None

    def __enter__(self) -> _ProgressBar:
        if self.progress.console.is_terminal:  # off a terminal, update() writes plain lines instead
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress.console.is_terminal:
            self.progress.stop()

    def _line(self, text: str) -> None:
        # plain text: a cell's label is no markup, and rich's lazily imported emoji table is never loaded here,
        # where a Ctrl-C landing inside that import would leave it half-initialised for the next line
        self.progress.console.print(text, markup=False, emoji=False, highlight=False)

    def update(self, state: Any) -> None:
        if self.task is None:
            if state.skipped:
                self._line(f"resuming: {state.skipped} of {state.total} cells already done")
            self.task = self.progress.add_task("", total=state.total - state.skipped)
        if state.stopping and not (self.state and self.state.stopping):
            self._line(
                "stopping after the cell in progress (with --time: the group timed together); "
                "Ctrl-C again stops at once. Finished cells are saved."
            )
        if not self.progress.console.is_terminal:  # a log: one plain line per finished cell
            if state.done and (self.state is None or state.done != self.state.done):
                failed = f", {state.failed} failed" if state.failed else ""
                self._line(f"sweep {state.done}/{state.total - state.skipped}{failed}: {state.last}")
            self.state = state
            return
        self.state = state
        failed = f"[red]{state.failed} failed[/red] " if state.failed else ""
        self.progress.update(self.task, completed=state.done, description=f"{failed}{state.last or ''}")
