"""The block registry: a name → a :class:`~blockprof.blocks.base.BlockDef`.

As timm's ``_registry.py``: this module imports no built-in block module; each registers
itself with :func:`register` when imported, and ``blockprof.blocks`` imports them all
(resnet first: the registry lists blocks in registration order).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blockprof import schema
from blockprof.blocks.base import BlockDef
from blockprof.blocks.user import UserBlock
from blockprof.errors import BlockprofError
from blockprof.spec import BlockSpec, ResolvedSpec

if TYPE_CHECKING:
    from torch import nn

_REGISTRY: dict[str, BlockDef] = {}


def register(cls: type[BlockDef]) -> type[BlockDef]:
    """Class decorator: add a block definition under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise RuntimeError(f"block {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls()
    return cls


def names() -> list[str]:
    """Registered block names, in registration order."""
    return list(_REGISTRY)


def get(name: str) -> BlockDef:
    """The definition for a registry name or a ``module:callable`` user block."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        return UserBlock(name)
    raise BlockprofError(
        f"unknown block {name!r}; choose from {', '.join(_REGISTRY)} or give 'package.module:callable'"
    )


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
        if (
            not definition.analytic
            or f.name in definition.accepts
            or value is None
            or value == defaults.get(f.name, f.default)
        ):
            continue
        takers = [n for n in names() if f.name in _REGISTRY[n].accepts]
        who = (
            f"only {', '.join(takers)} take{'s' if len(takers) == 1 else ''} it" if takers else "no block takes it yet"
        )
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
    definition = _REGISTRY.get(block)
    return {**{f.name: f.default for f in schema.VARIANT_FIELDS}, **definition.defaults} if definition else {}


def build(spec: BlockSpec | ResolvedSpec) -> nn.Module:
    """Build the module for ``spec`` (defaults filled in first)."""
    definition, spec = resolve(spec)
    return definition.module(spec)
