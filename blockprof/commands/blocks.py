"""``blockprof blocks``: the registered blocks and the inner widths that follow from a width."""

from __future__ import annotations

import click


@click.command("blocks")
@click.option(
    "--channels", type=click.IntRange(min=1), default=256, show_default=True, help="Width to show inner widths at."
)
def cli_command(channels: int) -> None:
    """List the registered blocks, what they take, and their inner width at --channels."""
    from blockprof.blocks.registry import names, resolve
    from blockprof.spec import BlockSpec

    for name in names():
        definition, spec = resolve(BlockSpec(name, channels))
        inner = definition.inner_widths(spec).get("inner", channels)
        takes = ", ".join(sorted(definition.accepts))
        click.echo(
            f"{name:<18} {definition.summary}\n{'':<18} at {channels}: {channels}→{inner}→{channels}; options: {takes}"
        )
