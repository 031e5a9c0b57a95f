"""The block registry: a name → a definition that knows its layers and its module.

A :class:`BlockDef` has three duties, kept side by side so that adding a block
is one definition: ``defaults`` and ``accepts`` say what a spec resolves to and
which variant fields it may set, ``check`` rejects what the block cannot be; ``layers`` lists its ops by shape, in closed form and
without torch (the analytic counter sums them); ``module`` builds the
``torch.nn.Module`` that the tools count and the timer runs. The module is
written independently of ``layers``, so the tests comparing the two check
something real.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from blockprof import schema
from blockprof.counting.formulas import Layer
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec, ResolvedSpec

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
    #: the values this block's ``None`` fields resolve to (a field it does not accept
    #: may still be given when it equals its default here, e.g. basic's expansion 1)
    defaults: ClassVar[Mapping[str, Any]] = {"kernel": 3, "activation": "relu", "se_style": "standard"}

    def check(self, spec: ResolvedSpec) -> None:  # noqa: B027  (optional: most blocks need no check of their own)
        """Raise BlockprofError if the block cannot be ``spec`` (beyond the schema's bounds)."""

    @abstractmethod
    def layers(self, spec: ResolvedSpec) -> list[Layer]:
        """Every op of the block in forward order, described by shapes."""

    @abstractmethod
    def module(self, spec: ResolvedSpec) -> nn.Module:
        """A freshly initialised module (CPU, float32, train mode)."""

    def inner_widths(self, spec: ResolvedSpec) -> dict[str, int]:
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


def resolve(spec: BlockSpec | ResolvedSpec) -> tuple[BlockDef, ResolvedSpec]:
    """The definition of ``spec.block`` and the spec with its defaults filled in.

    A variant field the block does not accept must be unset (or equal to the
    block's default); otherwise one line names the blocks that take it.
    """
    definition = get(spec.block)
    if isinstance(spec, ResolvedSpec):
        return definition, spec
    defaults = dict(definition.defaults)
    for f in schema.VARIANT_FIELDS:
        value = getattr(spec, f.name)
        if not definition.analytic or f.name in definition.accepts or value is None or value == defaults.get(f.name, f.default):
            continue
        takers = [n for n in names() if f.name in _REGISTRY[n].accepts]
        who = f"only {', '.join(takers)} take{'s' if len(takers) == 1 else ''} it" if takers else "no block takes it yet"
        raise BlockprofError(f"{spec.block} does not take {f.name} ({f.option} {value}); {who}")
    values: dict[str, Any] = spec.as_dict()
    if values["se_style"] not in (None, "standard") and not values["se"]:
        values["se"] = 0.25  # the torchvision styles' squeeze ratio, when only the style is given
    for name, default in defaults.items():
        if values.get(name) is None:
            values[name] = default
    if not values["se"] and defaults.get("se"):
        values["se"] = defaults["se"]  # a block that always has an SE (regnet_y): its ratio
    resolved = ResolvedSpec(**values, defaults=defaults)
    definition.check(resolved)
    return definition, resolved


def defaults_of(block: str) -> dict[str, Any]:
    """The values ``block``'s unset fields resolve to ({} for a user block or an unknown name):
    what a label or a record's description leaves out."""
    if ":" in block:
        return {}
    _load_builtins()
    definition = _REGISTRY.get(block)
    return {**{f.name: f.default for f in schema.VARIANT_FIELDS}, **definition.defaults} if definition else {}


def build(spec: BlockSpec | ResolvedSpec) -> nn.Module:
    """Build the module for ``spec`` (defaults filled in first)."""
    definition, spec = resolve(spec)
    return definition.module(spec)


def _load_builtins() -> None:
    # Imported here, not at the top, so that the registry module has no import cycle.
    from blockprof.blocks import resnet  # noqa: F401  (first: the registry lists in import order)
    from blockprof.blocks import mobilenet  # noqa: F401
    from blockprof.blocks import regnet  # noqa: F401
