"""The variant fields of the MobileNetV3 / EfficientNet / RegNet blocks: their values and the SE styles.

``kernel`` (the depthwise or fused conv's side), ``activation`` (the block's own) and
``se_style`` (where the squeeze width comes from and which activations the SE uses) are
the fields of ``/work/coord/fields.md``. Each style's squeeze width is torchvision's:

* ``standard``     blockprof's SE: ``max(1, int(se · in_channels))``, ReLU + sigmoid;
* ``mobilenetv3``  ``make_divisible(int(se · expanded), 8)`` (``_make_divisible(expanded // 4, 8)``), ReLU + hardsigmoid;
* ``efficientnet`` ``max(1, int(se · in_channels))`` (``max(1, in_channels // 4)``), SiLU + sigmoid;
* ``regnet``       ``int(round(se · in_channels))`` of the block's input width, ReLU + sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from blockprof.blocks.shapes import make_divisible
from blockprof.errors import BlockprofError

KERNELS = (3, 5, 7)
ACTIVATIONS = ("relu", "relu6", "hardswish", "silu")
#: the squeeze ratio a torchvision SE style gets when the spec gives none
DEFAULT_SE = 0.25


@dataclass(frozen=True)
class SEStyle:
    """One squeeze-excitation style: its activations and its squeeze-width rule
    ``(block input width, width the SE sees, se ratio) → squeeze width``."""

    name: str
    act: str
    gate: str
    squeeze: Callable[[int, int, float], int]
    origin: str


SE_STYLES: dict[str, SEStyle] = {
    s.name: s
    for s in (
        SEStyle("standard", "relu", "sigmoid", lambda cin, seen, se: max(1, int(cin * se)), "blockprof's SE (Hu et al.)"),
        SEStyle(
            "mobilenetv3", "relu", "hardsigmoid", lambda cin, seen, se: make_divisible(int(seen * se), 8), "MobileNetV3"
        ),
        SEStyle("efficientnet", "silu", "sigmoid", lambda cin, seen, se: max(1, int(cin * se)), "EfficientNet"),
        SEStyle("regnet", "relu", "sigmoid", lambda cin, seen, se: int(round(se * cin)), "RegNetY"),
    )
}


def field(spec: object, name: str) -> object:
    """A variant field of ``spec``, None where the spec has no such field or leaves it unset."""
    return getattr(spec, name, None)


def kernel_of(spec: object, default: int = 3) -> int:
    value = field(spec, "kernel")
    return default if value is None else int(value)  # type: ignore[call-overload]


def activation_of(spec: object, default: str) -> str:
    value = field(spec, "activation")
    return default if value is None else str(value)


def se_style_of(spec: object, default: str = "standard") -> str:
    value = field(spec, "se_style")
    return default if value is None else str(value)


def check_kernel(block: str, spec: object) -> None:
    value = field(spec, "kernel")
    if value is not None and value not in KERNELS:
        raise BlockprofError(f"{block}: kernel {value!r} is not allowed; choose from {', '.join(map(str, KERNELS))}")


def check_activation(block: str, spec: object) -> None:
    value = field(spec, "activation")
    if value is not None and value not in ACTIVATIONS:
        raise BlockprofError(f"{block}: activation {value!r} is not allowed; choose from {', '.join(ACTIVATIONS)}")


def check_se_style(block: str, spec: object, allowed: tuple[str, ...]) -> None:
    value = field(spec, "se_style")
    if value is not None and value not in allowed:
        raise BlockprofError(f"{block}: se_style {value!r} is not allowed; choose from {', '.join(allowed)}")
