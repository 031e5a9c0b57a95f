"""``blockprof explain``: the closed-form derivation of a block's counts, numbers in place."""

from __future__ import annotations

from typing import Any

import click

from blockprof.commands import options


@click.command("explain")
@click.argument("block")
@click.option("--channels", type=click.IntRange(min=1), default=256, show_default=True, help="Residual-stream width C.")
@click.option("--spatial", type=click.IntRange(min=1), default=56, show_default=True, help="Input height = width.")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Batch size.")
@options.variants
def cli_command(block: str, channels: int, spatial: int, batch: int, **variant: Any) -> None:
    """Show how BLOCK's params, MACs and training FLOPs are derived.

    Example: blockprof explain bottleneck --channels 256
    """
    from blockprof.api import explain
    from blockprof.spec import BlockSpec

    spec = BlockSpec(block, channels, spatial=spatial, batch=batch, **options.variant_options(**variant))
    click.echo(explain(spec))
