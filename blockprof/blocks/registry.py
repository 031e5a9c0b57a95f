"""The block registry: a name → a definition that knows its layers and its module.

A :class:`BlockDef` has three duties, kept side by side so that adding a block
is one definition: ``check`` fills the block's defaults into a spec and rejects
what the block cannot be; ``layers`` lists its ops by shape, in closed form and
without torch (the analytic counter sums them); ``module`` builds the
``torch.nn.Module`` that the tools count and the timer runs. The module is
written independently of ``layers``, so the tests comparing the two check
something real.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from blockprof.counting.formulas import Layer
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec

if TYPE_CHECKING:
    from torch import nn

_REGISTRY: dict[str, BlockDef] = {}


class BlockDef(ABC):
    """One block type. Subclass, set ``name``/``summary``, implement the three methods."""

    name: ClassVar[str]
    summary: ClassVar[str]
    #: ``True`` when ``layers`` gives a closed form (user blocks have none)
    analytic: ClassVar[bool] = True
    #: the variant options (BlockSpec fields) this block takes; a grid applies each
    #: option only to the blocks that take it
    accepts: ClassVar[frozenset[str]] = frozenset({"stride", "out_channels", "se"})

    @abstractmethod
    def check(self, spec: BlockSpec) -> BlockSpec:
        """Return ``spec`` with this block's defaults filled in, or raise BlockprofError."""

    @abstractmethod
    def layers(self, spec: BlockSpec) -> list[Layer]:
        """Every op of the block in forward order, described by shapes."""

    @abstractmethod
    def module(self, spec: BlockSpec) -> nn.Module:
        """A freshly initialised module (CPU, float32, train mode)."""

    def inner_widths(self, spec: BlockSpec) -> dict[str, int]:
        """The widths inside the block that follow from the spec, for docs and tables."""
        return {}


def register(cls: type[BlockDef]) -> type[BlockDef]:
    """Class decorator: add a block definition under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise RuntimeError(f"block {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls()
    return cls


def names() -> list[str]:
    """Registered block names, in registration order."""
    _load_builtins()
    return list(_REGISTRY)


def get(name: str) -> BlockDef:
    """The definition for a registry name or a ``module:callable`` user block."""
    _load_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        from blockprof.blocks.user import UserBlock

        return UserBlock(name)
    raise BlockprofError(f"unknown block {name!r}; choose from {', '.join(_REGISTRY)} or give 'package.module:callable'")


def resolve(spec: BlockSpec) -> tuple[BlockDef, BlockSpec]:
    """The definition of ``spec.block`` and the spec with its defaults filled in."""
    definition = get(spec.block)
    return definition, definition.check(spec)


def build(spec: BlockSpec) -> nn.Module:
    """Build the module for ``spec`` (defaults filled in first)."""
    definition, spec = resolve(spec)
    return definition.module(spec)


def _load_builtins() -> None:
    # Imported here, not at the top, so that the registry module has no import cycle.
    from blockprof.blocks import resnet  # noqa: F401  (first: the registry lists in import order)
    from blockprof.blocks import mobilenet  # noqa: F401
    from blockprof.blocks import regnet  # noqa: F401
