"""What to build and at which input: a frozen, hashable :class:`BlockSpec`.

A spec is the key of every record: the counters, the timer, sweeps and baselines
all take one, so it holds only plain values. Block-specific rules (which
expansions a block accepts, the inner width that follows) live with the block in
:mod:`blockprof.blocks`; this module checks what holds for every block.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from blockprof.errors import BlockprofError


@dataclass(frozen=True)
class BlockSpec:
    """One block at one width and one input size.

    ``block`` is a registry name (``basic``, ``bottleneck``,
    ``inverted_residual``) or a user block ``"package.module:callable"``.
    ``out_channels`` defaults to ``in_channels``; ``expansion`` and the other
    ``None`` fields default per block (see :func:`blockprof.blocks.resolve`).
    The input is ``batch × in_channels × spatial × spatial``.
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

    def __post_init__(self) -> None:
        for name in ("in_channels", "stride", "groups", "spatial", "batch"):
            _positive_int(name, getattr(self, name))
        if self.out_channels is None:
            object.__setattr__(self, "out_channels", self.in_channels)
        _positive_int("out_channels", self.out_channels)
        if self.width_per_group is not None:
            _positive_int("width_per_group", self.width_per_group)
        if self.expansion is not None and not self.expansion > 0:
            raise BlockprofError(f"expansion must be a positive number, got {self.expansion!r}")
        if not 0.0 <= self.se < 1.0:
            raise BlockprofError(f"se must be a squeeze ratio in [0, 1) (e.g. 0.25), got {self.se!r}")
        if self.spatial % self.stride:
            raise BlockprofError(
                f"spatial size {self.spatial} is not divisible by stride {self.stride}; "
                f"use a multiple of {self.stride}, e.g. {self.spatial + self.stride - self.spatial % self.stride}"
            )

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, self.in_channels, self.spatial, self.spatial)

    @property
    def output_spatial(self) -> int:
        return self.spatial // self.stride

    def replace(self, **changes: object) -> BlockSpec:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @property
    def label(self) -> str:
        """Short human name, e.g. ``bottleneck 256→256 s2 t4``."""
        parts = [self.block, f"{self.in_channels}→{self.out_channels}"]
        if self.stride != 1:
            parts.append(f"s{self.stride}")
        if self.expansion is not None and self.block != "basic":  # basic's expansion is always 1
            parts.append(f"t{self.expansion:g}")
        if self.groups != 1:
            parts.append(f"g{self.groups}")
        if self.width_per_group is not None:
            parts.append(f"w{self.width_per_group}")
        if self.se:
            parts.append(f"se{self.se:g}")
        return " ".join(parts)


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
            _positive_int(name, getattr(self, name))

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, 3, self.spatial, self.spatial)

    def replace(self, **changes: object) -> NetworkSpec:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @property
    def label(self) -> str:
        """``resnet50`` or ``resnet50 with inverted_residual``."""
        return self.network if self.block is None else f"{self.network} with {self.block}"


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BlockprofError(f"{name} must be a positive whole number, got {value!r}")
