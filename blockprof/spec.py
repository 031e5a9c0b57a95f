"""What to build and at which input: a frozen, hashable :class:`BlockSpec` (or a whole :class:`ModelSpec`).

A spec is the key of every record: the counters, the timer, sweeps and baselines
all take one, so it holds only plain values. Block-specific rules (which
expansions a block accepts, the inner width that follows) live with the block in
:mod:`blockprof.blocks`; this module checks what holds for every block, and the
form of a model target (importing it is :mod:`blockprof.models`' job).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self, cast

from blockprof import schema
from blockprof.errors import BlockprofError

#: the largest input a cell may take (elements): 2³¹, 8 GiB of float32; beyond it a check or sweep would not end
MAX_INPUT_ELEMENTS = 2**31
#: the largest side of a model's input (the schema's width bound)
MAX_MODEL_DIM = 2**20
#: a model cell's input when none is given (an ImageNet classifier's)
DEFAULT_MODEL_INPUT = (1, 3, 224, 224)
MODEL_EXAMPLE = "torchvision.models:resnet50"


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


def split_target(target: str, what: str, example: str) -> tuple[str, str]:
    """``package.module:callable`` → (module, attribute); anything else is one line naming ``what``."""
    module_name, sep, attr = target.partition(":") if isinstance(target, str) else ("", "", "")
    if not sep or not module_name or not attr or ":" in attr:
        raise BlockprofError(f"{what} {target!r}: give it as 'package.module:callable', e.g. '{example}'")
    return module_name, attr


def _whole(value: Any) -> int | None:
    """A whole number (``4`` or ``4.0`` from a TOML file or a data frame) as an int, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value) if float(value).is_integer() else None


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


@dataclass(frozen=True)
class ModelSpec:
    """A whole model as a cell: ``target`` (``package.module:callable`` returning an ``nn.Module``
    when called with no arguments) at ``input_shape`` (batch first). Only the target's form and the
    shape are checked here; importing and building it happen when it is counted, so a spec can be
    read from a file or a run on a machine that lacks the model."""

    target: str
    input_shape: tuple[int, ...] = DEFAULT_MODEL_INPUT

    def __post_init__(self) -> None:
        split_target(self.target, "model", MODEL_EXAMPLE)
        shape = self.input_shape
        if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)) or not shape:
            raise BlockprofError(f"model {self.target!r}: input must be a list of sizes, e.g. [1, 3, 224, 224]")
        sizes = tuple(_whole(d) for d in shape)
        if any(d is None or not 1 <= d <= MAX_MODEL_DIM for d in sizes):
            raise BlockprofError(
                f"model {self.target!r}: input {list(shape)!r} must be whole sizes from 1 to {MAX_MODEL_DIM}, "
                "e.g. [1, 3, 224, 224]"
            )
        if math.prod(cast(tuple[int, ...], sizes)) > MAX_INPUT_ELEMENTS:
            raise BlockprofError(
                f"model {self.target!r}: the input {shape_text(cast(tuple[int, ...], sizes))} has more than "
                f"{MAX_INPUT_ELEMENTS:,} elements; use a smaller batch or image"
            )
        object.__setattr__(self, "input_shape", sizes)

    @property
    def label(self) -> str:
        """The cell's stable name (its id in reports and baselines): ``model torchvision.models:resnet50 @ 1×3×224×224``."""
        return f"model {self.target} @ {shape_text(self.input_shape)}"

    def as_dict(self) -> dict[str, Any]:
        """The record's first columns: ``model`` (the target) and ``input_shape`` (a list)."""
        return {"model": self.target, "input_shape": list(self.input_shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """The inverse of :meth:`as_dict`; BlockprofError on any other key."""
        unknown = sorted(set(data) - {"model", "input_shape"})
        if unknown or "model" not in data:
            raise BlockprofError(f"a model cell holds 'model' and 'input_shape', got {sorted(data)!r}")
        return cls(data["model"], tuple(data.get("input_shape") or DEFAULT_MODEL_INPUT))


#: what a cell of a sweep or a check is: a block at a width, or a whole model
CellSpec = BlockSpec | ModelSpec


def cell_spec(data: Mapping[str, Any]) -> CellSpec:
    """A cell's spec from its dict (a block's fields, or a model's ``model`` and ``input_shape``)."""
    return ModelSpec.from_dict(data) if "model" in data else BlockSpec(**data)
