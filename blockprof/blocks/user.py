"""User blocks: any ``package.module:callable`` that builds a ``torch.nn.Module``.

The callable takes ``(in_channels, out_channels, stride)``: a factory function
or an ``nn.Module`` class with that signature. A user block has no closed form,
so it is counted by the tracer (:mod:`blockprof.counting.trace`: every op of its
forward priced by the same formulas); it is built, checked and timed like the registered blocks. Every way
it can go wrong (a bad path, a missing module or attribute, a callable that
raises, a module whose output has the wrong shape) is one BlockprofError line
that names the block.

Like ``python -m``, the current directory is searched for the module (appended
to ``sys.path``, so it never shadows an installed package).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from blockprof.blocks.base import BlockDef
from blockprof.counting.formulas import Layer
from blockprof.errors import BlockprofError, one_line
from blockprof.spec import ResolvedSpec, shape_text, split_target

if TYPE_CHECKING:
    from torch import nn

EXAMPLE = "examples.user_blocks:convnext_block"
#: BlockSpec fields that describe built-in blocks only; a user block's callable takes none of them
_NOT_APPLICABLE = {
    "expansion": None,
    "groups": 1,
    "width_per_group": None,
    "se": 0.0,
    "kernel": None,
    "activation": None,
    "se_style": None,
}


class UserBlock(BlockDef):
    """A block named by ``"package.module:callable"``; imported on first use."""

    analytic = False
    accepts = frozenset({"stride", "out_channels"})
    defaults: ClassVar[Mapping[str, Any]] = {}  # nothing to fill in: the callable has its own

    def __init__(self, path: str) -> None:
        self.name = path  # type: ignore[misc]  # per instance: each path is its own block
        self._factory: Callable[..., Any] | None = None

    @property
    def summary(self) -> str:  # type: ignore[override]
        doc = (getattr(self.factory(), "__doc__", None) or "").strip().splitlines()
        return f"user block{': ' + doc[0] if doc else ''} (no closed form; counted by tracing its forward op by op)"

    def factory(self) -> Callable[..., Any]:
        """The callable the path names, imported once."""
        if self._factory is None:
            self._factory = load_target(self.name)
        return self._factory

    def check(self, spec: ResolvedSpec) -> None:
        given = [k for k, default in _NOT_APPLICABLE.items() if getattr(spec, k) != default]
        if given:
            raise BlockprofError(
                f"user block {self.name!r} takes only (in_channels, out_channels, stride); "
                f"drop {', '.join(given)} (build such options into the callable instead)"
            )
        self.factory()

    def layers(self, spec: ResolvedSpec) -> list[Layer]:
        raise BlockprofError(
            f"user block {self.name!r} has no analytic formula: it is counted by tracing its forward op by op"
        )

    def module(self, spec: ResolvedSpec) -> nn.Module:
        from torch import nn

        call = (
            f"calling it with (in_channels={spec.in_channels}, out_channels={spec.out_channels}, stride={spec.stride})"
        )
        try:
            block = self.factory()(spec.in_channels, spec.out_channels, spec.stride)
        except Exception as e:  # the user's code: its failure is bad input, reported in one line
            raise BlockprofError(f"user block {self.name!r}: {call} raised {one_line(e)}") from None
        if not isinstance(block, nn.Module):
            raise BlockprofError(
                f"user block {self.name!r}: {call} returned a {type(block).__name__}, not a torch.nn.Module"
            )
        _check_outputshape_text(self.name, block, spec)
        return block


def load_target(
    path: str, what: str = "user block", example: str = EXAMPLE, takes: str = "(in_channels, out_channels, stride)"
) -> Callable[..., Any]:
    """The callable ``path`` (``package.module:callable``) names; every failure one line naming ``what``."""
    module_name, attr = split_target(path, what, example)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise BlockprofError(
                f"{what} {path!r}: no module named {e.name!r}; run from the directory that holds it or pip install it"
            ) from None
        raise BlockprofError(f"{what} {path!r}: importing {module_name} failed: {one_line(e)}") from None
    except Exception as e:  # a syntax or runtime error in the user's module
        raise BlockprofError(f"{what} {path!r}: importing {module_name} raised {one_line(e)}") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            offered = sorted(
                n
                for n, v in vars(module).items()
                if callable(v) and not n.startswith("_") and getattr(v, "__module__", None) == module_name
            )
            hint = f"; it defines {', '.join(offered)}" if offered else ""
            raise BlockprofError(f"{what} {path!r}: module {module_name} has no attribute {attr!r}{hint}")
        target = getattr(target, part)
    if not callable(target):
        raise BlockprofError(
            f"{what} {path!r}: {attr} is of type {type(target).__name__}, not callable; "
            f"name a function or an nn.Module class taking {takes}"
        )
    return target


def _check_outputshape_text(name: str, block: nn.Module, spec: ResolvedSpec) -> None:
    """The block must map (N, C_in, H, W) to (N, C_out, H/stride, W/stride).

    Checked on the meta device (shapes without memory or compute); a forward that
    needs values (``.item()``, numpy) cannot run there, so it gets one real sample."""
    import torch

    from blockprof.counting.tools import fresh_copy

    s = spec.output_spatial
    try:
        with torch.no_grad():
            y = fresh_copy(block, "meta")(torch.empty(spec.input_shape, device="meta"))
        batch = spec.batch
    except Exception:
        batch, shape = 1, (1, *spec.input_shape[1:])
        try:  # on the CPU even when called inside a torch.device("meta") context (as build_meta does)
            with torch.no_grad(), torch.device("cpu"):
                y = fresh_copy(block, "cpu")(torch.zeros(shape))
        except Exception as e:
            raise BlockprofError(
                f"user block {name!r}: its forward on a {shape_text(shape)} input raised {one_line(e)}"
            ) from None
    expected = (batch, spec.out_channels, s, s)
    if not isinstance(y, torch.Tensor):
        raise BlockprofError(
            f"user block {name!r}: its forward returned a {type(y).__name__}; expected one tensor of shape {shape_text(expected)}"
        )
    if tuple(y.shape) != expected:
        raise BlockprofError(
            f"user block {name!r}: output shape {shape_text(y.shape)} for input {shape_text((batch, *spec.input_shape[1:]))}, "
            f"expected {shape_text(expected)} (batch, out_channels, spatial/stride, spatial/stride)"
        )
