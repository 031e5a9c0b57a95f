"""``blockprof explain``: the closed-form derivation of a block's counts, numbers in place."""

from __future__ import annotations

from typing import Any

import click

from blockprof import schema
from blockprof.commands import options
from blockprof.timing.harness import MAX_THREADS


@click.command("explain")
@click.argument("block")
@click.option("--channels", type=click.IntRange(min=1), default=256, show_default=True, help="Residual-stream width C.")
@click.option(
    "--spatial",
    type=click.IntRange(min=1),
    help="Input height = width.  [default: 56 for a block; for a network, the size torchvision evaluates it at]",
)
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Batch size.")
@options.variants
@click.option(
    "--time",
    "time_layers",
    is_flag=True,
    help="Also time each layer of the forward in place (torch.profiler) beside its share of the MACs.",
)
@click.option(
    "--device", type=click.Choice(schema.DEVICES), default="auto", show_default=True, help="Device for --time."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=MAX_THREADS),
    help="CPU threads for --time [default: torch's own default].",
)
def cli_command(
    block: str,
    channels: int,
    spatial: int | None,
    batch: int,
    time_layers: bool,
    device: str,
    threads: int | None,
    **variant: Any,
) -> None:
    """Show how BLOCK's params, MACs and training FLOPs are derived; BLOCK may
    also be a network (any of blockprof network's 43), derived stage by stage.
    With --time, where the forward's time goes, layer by layer.

    Example: blockprof explain inverted_residual --channels 256 --time
    """
    from blockprof.api import explain_network
    from blockprof.networks import names

    options.refuse_unused_timing(click.get_current_context(), time_layers, ("device", "threads"), "--time")
    options.check_devices(device)

    if block in names():
        given = [f"--{k.replace('_', '-')}" for k in ("channels", *variant) if _given(k)]
        if given:
            raise click.BadParameter(
                f"a network takes only --spatial and --batch; drop {', '.join(given)} "
                f"(to swap its blocks: blockprof network {block} --block BLOCK --explain)",
                param_hint=given[0],
            )
        click.echo(explain_network(block, spatial=spatial, batch=batch))  # None: the network's own size
        return
    from blockprof.api import explain
    from blockprof.spec import BlockSpec

    spec = BlockSpec(block, channels, spatial=spatial or 56, batch=batch, **options.variant_options(**variant))
    click.echo(explain(spec))
    if time_layers:
        from blockprof.timing.layers import LAYER_MIN_RUN_TIME

        click.echo(
            f"timing each layer of {spec.label}'s forward in place (torch.profiler): about {2 * LAYER_MIN_RUN_TIME:.0f} s "
            "of timed calls …",
            err=True,
        )
        click.echo("\n" + _layer_time_table(spec, device, threads))


def _layer_time_table(spec: Any, device: str, threads: int | None) -> str:
    """Each layer's share of the forward's time beside its share of the MACs."""
    from blockprof.render.tables import render
    from blockprof.timing import layer_times

    df = layer_times(spec, device=device, threads=threads)
    view = df[["layer", "op"]].copy()
    view["ms (IQR)"] = [
        f"{m:.3g} ({q:.2g}){' !' if n else ''}" for m, q, n in zip(df["ms"], df["iqr_ms"], df["noisy"], strict=False)
    ]
    view["time %"] = [f"{100 * t:.1f}%" for t in df["time_share"]]
    view["MACs %"] = ["-" if m != m or m is None else f"{100 * m:.1f}%" for m in df["macs_share"]]
    env = df.attrs.get("environment", {})
    where = f"{env.get('device', device)}, {env.get('threads', threads)} threads" if env else device
    footer = (
        f"Forward, eval mode; each layer timed in place under torch.profiler, median over {int(df['runs'].min())}+ runs. "
        "! = IQR over 10% of the median. Time outside modules is the residual add / SE rescale."
    )
    return render(view, "table", title=f"where the time goes — {where}") + "\n" + footer


def _given(param: str) -> bool:
    source = click.get_current_context().get_parameter_source(param)
    return source is not None and source != click.core.ParameterSource.DEFAULT
