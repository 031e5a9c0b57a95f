"""A grid of block specs: blocks × widths × input sizes × batches, with variant options.

A variant option (``expansion``, ``groups``, ...) is applied only to the blocks
that take it (see ``BlockDef.accepts``), so ``--expansion 4`` over the three
default blocks changes the bottleneck and the inverted residual and leaves the
BasicBlock as it is; an option that no chosen block takes is an error.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec

DEFAULT_BLOCKS = ("basic", "bottleneck", "inverted_residual")
VARIANT_OPTIONS = ("out_channels", "stride", "expansion", "groups", "width_per_group", "se")


@dataclass(frozen=True)
class Grid:
    blocks: tuple[str, ...] = DEFAULT_BLOCKS
    channels: tuple[int, ...] = (256,)
    spatial: tuple[int, ...] = (56,)
    batch: tuple[int, ...] = (1,)
    options: dict[str, object] = field(default_factory=dict)

    def specs(self) -> list[BlockSpec]:
        """Every cell, block-major order; raises BlockprofError on the first invalid one."""
        from blockprof.blocks.registry import get

        unknown = set(self.options) - set(VARIANT_OPTIONS)
        if unknown:
            raise BlockprofError(f"unknown option(s) {sorted(unknown)}; known: {', '.join(VARIANT_OPTIONS)}")
        given = {k: v for k, v in self.options.items() if v is not None}
        definitions = {name: get(name) for name in self.blocks}
        for option in given:
            if not any(option in d.accepts for d in definitions.values()):
                raise BlockprofError(f"option {option!r} applies to none of the blocks {', '.join(self.blocks)}")
        cells = []
        for name, c, s, n in itertools.product(self.blocks, self.channels, self.spatial, self.batch):
            applicable = {k: v for k, v in given.items() if k in definitions[name].accepts}
            cells.append(BlockSpec(name, c, spatial=s, batch=n, **applicable))
        return cells
