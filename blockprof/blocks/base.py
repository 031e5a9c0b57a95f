"""The base of every block definition: what a block must say about itself.

A :class:`BlockDef` has three duties, kept side by side so that adding a block
is one definition: ``defaults`` and ``accepts`` say what a spec resolves to and
which variant fields it may set, ``check`` rejects what the block cannot be;
``layers`` lists its ops by shape, in closed form and
without torch (the analytic counter sums them); ``module`` builds the
``torch.nn.Module`` that the tools count and the timer runs. The module is
written independently of ``layers``, so the tests comparing the two check
something real.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from blockprof.counting.formulas import Layer
from blockprof.spec import ResolvedSpec

if TYPE_CHECKING:
    from torch import nn


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
