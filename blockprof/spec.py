"""What to build and at which input: a frozen, hashable :class:`BlockSpec`.

A spec is the key of every record: the counters, the timer, sweeps and baselines
all take one, so it holds only plain values. Block-specific rules (which
expansions a block accepts, the inner width that follows) live with the block in
:mod:`blockprof.blocks`; this module checks what holds for every block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self, cast

from blockprof import schema
from blockprof.errors import BlockprofError


class _BlockInput:
    """What a block's spec says of its input, resolved or not: shared by BlockSpec and ResolvedSpec."""

    batch: int
    in_channels: int
    spatial: int
    stride: int

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.in_channels, self.spatial, self.spatial)

    @property
    def output_spatial(self) -> int:
        return output_side(self.spatial, self.stride)

    def replace(self, **changes: Any) -> Self:
        return cast(Self, dataclasses.replace(cast(Any, self), **changes))


@dataclass(frozen=True)
class BlockSpec(_BlockInput):
    """One block at one width and one input size, as the user gave it.

    ``block`` is a registry name (``basic``, ``bottleneck``,
    ``inverted_residual``) or a user block ``"package.module:callable"``.
    ``out_channels`` defaults to ``in_channels``; ``expansion`` and the other
    ``None`` fields default per block: :func:`blockprof.blocks.resolve` turns a
    BlockSpec into a :class:`ResolvedSpec`, the only thing ids, labels and keys
    are built from. The input is ``batch × in_channels × spatial × spatial``.
    Every value passes :func:`blockprof.schema.coerce` (type and bounds).
    """

    block: str
    in_channels: int
    out_channels: int | None = None
    stride: int = 1
    expansion: float | None = None
    groups: int = 1
    width_per_group: int | None = None
    se: float = 0.0
    spatial: int = 56
    batch: int = 1
    kernel: int | None = None
    activation: str | None = None
    se_style: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.block, str) or not self.block:
            raise BlockprofError(f"block must be a block name, got {self.block!r}")
        for f in dataclasses.fields(self):
            if f.name != "block":
                object.__setattr__(self, f.name, schema.coerce(f.name, getattr(self, f.name)))
        if self.out_channels is None:
            object.__setattr__(self, "out_channels", self.in_channels)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @property
    def label(self) -> str:
        """Short human name of the spec as given, e.g. ``bottleneck 256→256 s2 t2``; a cell's
        canonical name is its :class:`ResolvedSpec`'s label (block defaults left out)."""
        return schema.label(self.as_dict())


@dataclass(frozen=True)
class ResolvedSpec(_BlockInput):
    """A :class:`BlockSpec` with every default of its block filled in (made by
    :func:`blockprof.blocks.resolve` only): what the counters, the timer, records,
    ids and baselines use. Two specs that differ only in spelling a default
    (``bottleneck 64`` and ``bottleneck 64, expansion=4``) resolve to equal ones.

    ``defaults`` (the block's own defaults) is not part of the identity: it only
    lets :attr:`label` leave them out. ``None`` remains only where a value does not
    apply (``width_per_group`` unless given; a user block's kernel, activation, ...).
    """

    block: str
    in_channels: int
    out_channels: int
    stride: int
    expansion: float | None
    groups: int
    width_per_group: int | None
    se: float
    spatial: int
    batch: int
    kernel: int | None
    activation: str | None
    se_style: str | None
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The spec's fields (the record's first columns); ``defaults`` left out."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "defaults"}

    def unresolved(self) -> BlockSpec:
        """The same block as a BlockSpec (every value explicit)."""
        return BlockSpec(**self.as_dict())

    @property
    def label(self) -> str:
        """The cell's canonical name: ``bottleneck 256→256 s2 g32``; the block's defaults are left out."""
        return schema.label(self.as_dict(), self.defaults)


def output_side(size: int, stride: int, kernel: int = 3) -> int:
    """Output side of a conv with padding ``kernel // 2``: ``(size − 1) // stride + 1`` for odd kernels
    (57 → 29 at stride 2)."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


@dataclass(frozen=True)
class NetworkSpec:
    """A whole network at one input size: ``network`` is a name in
    :data:`blockprof.networks.NETWORKS`; ``block`` swaps the block type of every
    stage (``None``: the network's own blocks). The input is
    ``batch × 3 × spatial × spatial``."""

    network: str
    block: str | None = None
    spatial: int = 224
    batch: int = 1

    def __post_init__(self) -> None:
        for name in ("spatial", "batch"):
            object.__setattr__(self, name, schema.coerce(name, getattr(self, name)))

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, 3, self.spatial, self.spatial)

    def replace(self, **changes: Any) -> NetworkSpec:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @property
    def label(self) -> str:
        """``resnet50`` or ``resnet50 with inverted_residual``."""
        return self.network if self.block is None else f"{self.network} with {self.block}"
