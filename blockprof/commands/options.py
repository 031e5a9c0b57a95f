"""Click options shared by the commands, each defined once (pip-tools style).

The variant options are one loop over :data:`blockprof.schema.VARIANT_FIELDS`;
the parameter types turn ``256`` or ``32,64,128`` into tuples and reject bad
values (by the schema's bounds) with click's BadParameter, which the CLI shows
as one line, exit 2.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from blockprof import schema
from blockprof.render.tables import TEXT_FORMATS
from blockprof.spec import DEFAULT_MODEL_INPUT
from blockprof.timing.harness import MAX_MIN_RUN_TIME, MAX_ROUNDS, MAX_THREADS

F = Callable[..., Any]


class Finite(click.FloatRange):
    """A FloatRange that also refuses nan and infinities (click's accepts both)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def seconds(maximum: float) -> Finite:
    """Seconds above 0 and at most ``maximum``."""
    return Finite(min=0, min_open=True, max=maximum)


class NameList(click.ParamType):
    name = "name list"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple:
        if isinstance(value, tuple):
            return value
        names = tuple(v.strip() for v in str(value).split(",") if v.strip())
        if not names:
            self.fail("give at least one block name", param, ctx)
        return names


class Shape(click.ParamType):
    """A tensor shape, comma-separated positive whole numbers: ``1,3,224,224``."""

    name = "shape"
    #: no dimension of a tensor blockprof can count is larger (the schema's width bound)
    LIMIT = 1 << 20

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple:
        if isinstance(value, tuple):
            return value
        items = [v.strip() for v in str(value).split(",")]
        if not all(item.isdigit() and 0 < int(item) <= self.LIMIT for item in items):
            self.fail(
                f"{value!r} is not a shape; give positive whole numbers up to {self.LIMIT}, e.g. 1,3,224,224",
                param,
                ctx,
            )
        return tuple(int(item) for item in items)


class ToolList(NameList):
    """Counting tools, comma-separated; ``none`` is the empty list (the analytic count alone)."""

    name = "tool list"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple:
        names = super().convert(value, param, ctx)
        if "none" in names and len(names) > 1:
            self.fail("'none' means no tool: give it alone, or name the tools", param, ctx)
        return () if names == ("none",) else names


def tools(f: F) -> F:
    return click.option(
        "--tools",
        "tools",
        type=ToolList(),
        default="fvcore,thop,torch",
        show_default=True,
        help="Counting tools to cross-check with (fvcore,thop,torch), or 'none' for the analytic count alone.",
    )(f)


def check_devices(devices: tuple[str, ...] | str, param_hint: str = "--device") -> None:
    """Refuse ``cuda`` on a machine without a usable GPU before any work starts (one line, exit 2)."""
    if "cuda" not in ((devices,) if isinstance(devices, str) else devices):
        return
    import torch

    if not torch.cuda.is_available():
        build = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise click.BadParameter(
            f"cuda: no CUDA GPU is available here (torch {torch.__version__}, {build}); use cpu or auto",
            param_hint=param_hint,
        )


def blocks(f: F) -> F:
    f = click.option(
        "--block",
        "extra_blocks",
        multiple=True,
        metavar="PKG.MODULE:CALLABLE",
        help="Add a block (a user block path, or a registered name); repeatable.",
    )(f)
    return click.option(
        "--blocks",
        type=NameList(),
        default="basic,bottleneck,inverted_residual",
        show_default=True,
        help="Comma-separated block names (see 'blockprof blocks') or 'package.module:callable'.",
    )(f)


def grid_axes(f: F) -> F:
    for name, field, default, helptext in reversed(
        (
            (
                "--channels",
                "in_channels",
                "256",
                "Residual-stream width(s): every block maps C → C (comma-separated list allowed).",
            ),
            ("--spatial", "spatial", "56", "Input height = width, e.g. 56 or 56,28."),
            ("--batch", "batch", "1", "Batch size(s)."),
        )
    ):
        f = click.option(name, type=FieldValue(field, many=True), default=default, show_default=True, help=helptext)(f)
    return f


class FieldValue(click.ParamType):
    """One value of a schema field (``blockprof.schema``), checked by the schema's own rule;
    with ``many``, a comma-separated list of them (an axis: ``--stride 1,2``)."""

    def __init__(self, name: str, many: bool = False, what: str | None = None) -> None:
        from blockprof import schema

        self.field = schema.field(name)
        self.many = many
        self.what = what
        kind = "int" if self.field.kind is int else "number" if self.field.kind is float else "name"
        self.name = f"{kind} list" if many else kind

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str | None:
        if self.field.choices is not None:
            return "[" + "|".join(map(str, self.field.choices)) + "]" + (",..." if self.many else "")
        return None

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from blockprof import schema
        from blockprof.errors import BlockprofError

        if self.many and isinstance(value, tuple):
            return value
        items = [v.strip() for v in str(value).split(",")] if self.many else [value]
        try:
            out = tuple(
                schema.coerce(self.field.name, item, self.what or (param.name if param else None)) for item in items
            )
        except BlockprofError as e:
            self.fail(str(e), param, ctx)
        return out if self.many else out[0]


def _variant_options(f: F, many: bool) -> F:
    from blockprof import schema

    for fld in reversed(schema.VARIANT_FIELDS):
        helptext = fld.help + (" A list sweeps it." if many else "")
        f = click.option(fld.option, fld.name, type=FieldValue(fld.name, many), default=None, help=helptext)(f)
    return f


def variants(f: F) -> F:
    """Variant options (one per schema variant field); each applies only to the blocks that take it."""
    return _variant_options(f, many=False)


def variant_axes(f: F) -> F:
    """Variant options as axes: each takes a comma-separated list (e.g. --stride 1,2)
    and applies only to the blocks that take it."""
    return _variant_options(f, many=True)


def output(formats: tuple[str, ...] = TEXT_FORMATS) -> Callable[[F], F]:
    def deco(f: F) -> F:
        f = click.option(
            "-o",
            "--output",
            type=click.Path(dir_okay=False, writable=True, path_type=Path),
            help="Write to this file instead of the terminal.",
        )(f)
        return click.option(
            "--format", "fmt", type=click.Choice(formats), default="table", show_default=True, help="Output format."
        )(f)

    return deco


def variant_options(**kwargs: Any) -> dict[str, Any]:
    """The variant options the user actually gave, keyed as BlockSpec fields."""
    from blockprof import schema

    return schema.variant_values(kwargs)


def models(f: F) -> F:
    """``--model`` (repeatable), ``--input`` and ``--no-blocks``: whole models as cells beside (or instead of) the blocks."""
    f = click.option(
        "--no-blocks",
        is_flag=True,
        help="Leave the block cells out: the --model cells alone.",
    )(f)
    f = click.option(
        "--input",
        "model_input",
        type=Shape(),
        default=",".join(map(str, DEFAULT_MODEL_INPUT)),
        show_default=True,
        help="Input shape of every --model, batch first.",
    )(f)
    return click.option(
        "--model",
        "models",
        multiple=True,
        metavar="PKG.MODULE:CALLABLE",
        help="Add a whole model as a cell (a callable returning an nn.Module when called with no arguments), "
        "beside the block cells; repeatable.",
    )(f)


def model_specs(ctx: click.Context, params: dict[str, Any]) -> tuple[Any, ...]:
    """The ``--model`` cells at ``--input``; ``--input`` or ``--no-blocks`` without a model is refused."""
    from blockprof.spec import ModelSpec

    if not params["models"]:
        for name, flag in (("model_input", "--input"), ("no_blocks", "--no-blocks")):
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT:
                raise click.BadParameter(f"{flag} goes with --model: name a model", param_hint=flag)
        return ()
    return tuple(dict.fromkeys(ModelSpec(target, params["model_input"]) for target in params["models"]))


def suite(f: F) -> F:
    """The cells of a regression check: ``--suite FILE``, or the sweep options inline,
    plus overrides of the suite's timing and rules."""
    for decl, kwargs in reversed(
        (
            (
                "--suite",
                dict(
                    type=click.Path(dir_okay=False, path_type=Path),
                    help="Suite TOML (cells, metrics, rules, timing); instead of the inline --blocks/--channels/--spatial/--batch.",
                ),
            ),
            (
                "--tolerance",
                dict(
                    type=Finite(min=0, min_open=True),
                    help="Time change that counts, as a fraction (suite default 0.10 = 10%).",
                ),
            ),
            (
                "--alpha",
                dict(
                    type=Finite(min=0, max=1, min_open=True, max_open=True),
                    help="Significance level of the Mann–Whitney U test (default 0.01).",
                ),
            ),
            (
                "--comparison",
                dict(
                    type=click.Choice(("auto", "raw", "normalised")),
                    help="Times over the reference kernel's (normalised, default), raw, or auto (raw on the baseline's own environment).",
                ),
            ),
            (
                "--confirm/--no-confirm",
                dict(help="Re-measure a slower time and fail only if it is slower again (default: confirm)."),
            ),
            (
                "--rounds",
                dict(type=click.IntRange(min=5, max=MAX_ROUNDS), help="Timing rounds (samples per cell; default 15)."),
            ),
            ("--sample-time", dict(type=seconds(MAX_MIN_RUN_TIME), help="Seconds per cell per round (default 0.05).")),
            (
                "--threads",
                dict(type=click.IntRange(min=1, max=MAX_THREADS), help="CPU threads for timing (default 1)."),
            ),
            (
                "--mode",
                dict(
                    type=click.Choice(("fwd", "train")),
                    help="Step timed: forward, or forward + backward (default fwd).",
                ),
            ),
        )
    ):
        f = click.option(decl, default=None, **kwargs)(f)
    return blocks(models(grid_axes(variants(f))))


def timing(f: F) -> F:
    """One timing condition (device, dtype, ...) for a command that times what it counts."""
    for decl, kwargs in reversed(
        (
            (
                "--time/--no-time",
                dict(default=True, show_default=True, help="Time forward and training step (torch.utils.benchmark)."),
            ),
            (
                "--device",
                dict(
                    type=click.Choice(schema.DEVICES),
                    default="auto",
                    show_default=True,
                    help="auto: CUDA when available.",
                ),
            ),
            (
                "--dtype",
                dict(
                    type=click.Choice(schema.DTYPES),
                    default="float32",
                    show_default=True,
                    help="Compute dtype (autocast for 16-bit).",
                ),
            ),
            (
                "--threads",
                dict(
                    type=click.IntRange(min=1, max=MAX_THREADS),
                    default=None,
                    help="CPU threads for timing [default: torch's own default].",
                ),
            ),
            (
                "--min-run-time",
                dict(
                    type=seconds(MAX_MIN_RUN_TIME),
                    default=0.2,
                    show_default=True,
                    help="Seconds of timed calls per block and mode (at least 10 samples).",
                ),
            ),
            ("--channels-last", dict(is_flag=True, help="Time in channels_last memory format.")),
            ("--compile", dict(is_flag=True, help="Time the block under torch.compile.")),
            (
                "--allow-slow-dtype",
                dict(is_flag=True, help="Time a 16-bit dtype even where the CPU only emulates it (refused otherwise)."),
            ),
        )
    ):
        f = click.option(decl, **kwargs)(f)
    return f


#: the options that only mean something when timing (refused with --no-time)
TIMING_PARAMS = ("device", "dtype", "threads", "min_run_time", "channels_last", "compile", "allow_slow_dtype")


def refuse_unused_timing(
    ctx: click.Context, time: bool, params: tuple[str, ...] = TIMING_PARAMS, switch: str = "--no-time"
) -> None:
    """Timing options given while not timing are a contradiction: say which, in one line.
    ``switch`` is how timing was turned off: ``--no-time`` given, or ``--time`` left out."""
    if time:
        return
    given = [p for p in params if ctx.get_parameter_source(p) not in (click.core.ParameterSource.DEFAULT, None)]
    if given:
        flags = ", ".join(f"--{p.replace('_', '-')}" for p in given)
        it = "it" if len(given) == 1 else "them"
        fix = f"drop {it} or drop --no-time" if switch == "--no-time" else f"add --time or drop {it}"
        raise click.BadParameter(
            f"{flags} only {'applies' if len(given) == 1 else 'apply'} when timing; {fix}", param_hint=switch
        )


def check_timing(device: str, dtype: str, allow_slow_dtype: bool) -> None:
    """Refuse, before any work, a device without a GPU and a dtype the CPU only emulates."""
    check_devices(device)
    from blockprof.timing.env import slow_dtype
    from blockprof.timing.harness import conditions

    resolved = conditions(device, dtype).device if device == "auto" else device
    if not allow_slow_dtype and (reason := slow_dtype(resolved, dtype)):
        raise click.BadParameter(
            f"{reason}; use --dtype float32, or add --allow-slow-dtype to time it anyway", param_hint="--dtype"
        )


def timing_options(**kwargs: Any) -> dict[str, Any]:
    """The timing keyword arguments of :func:`blockprof.timing.harness.time_blocks`, from the parsed options."""
    return {
        "device": kwargs["device"],
        "dtype": kwargs["dtype"],
        "threads": kwargs["threads"],
        "min_run_time": kwargs["min_run_time"],
        "channels_last": kwargs["channels_last"],
        "compile": kwargs["compile"],
    }
