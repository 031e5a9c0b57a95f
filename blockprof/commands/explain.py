"""``blockprof explain``: the closed-form derivation of a block's counts, numbers in place."""

from __future__ import annotations

from typing import Any

import click

from blockprof.commands import options


@click.command("explain")
@click.argument("block")
@click.option("--channels", type=click.IntRange(min=1), default=256, show_default=True, help="Residual-stream width C.")
@click.option("--spatial", type=click.IntRange(min=1), help="Input height = width.  [default: 56 for a block, 224 for a network]")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Batch size.")
@options.variants
def cli_command(block: str, channels: int, spatial: int | None, batch: int, **variant: Any) -> None:
    """Show how BLOCK's params, MACs and training FLOPs are derived; BLOCK may
    also be a network (resnet18 ... mobilenet_v2), derived stage by stage.

    Example: blockprof explain bottleneck --channels 256
    """
    from blockprof.networks import explain_network, names

    if block in names():
        given = [f"--{k.replace('_', '-')}" for k in ("channels", *variant) if _given(k)]
        if given:
            raise click.BadParameter(
                f"a network takes only --spatial and --batch; drop {', '.join(given)} "
                f"(to swap its blocks: blockprof network {block} --block BLOCK --explain)", param_hint=given[0])
        click.echo(explain_network(block, spatial=spatial or 224, batch=batch))
        return
    from blockprof.api import explain
    from blockprof.spec import BlockSpec

    spec = BlockSpec(block, channels, spatial=spatial or 56, batch=batch, **options.variant_options(**variant))
    click.echo(explain(spec))


def _given(param: str) -> bool:
    source = click.get_current_context().get_parameter_source(param)
    return source is not None and source != click.core.ParameterSource.DEFAULT
