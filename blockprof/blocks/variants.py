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
from typing import Any, Callable

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


# --- until the schema branch adds these fields to BlockSpec (fields.md); removed at that merge ---

from dataclasses import fields as _fields  # noqa: E402

from blockprof.spec import BlockSpec  # noqa: E402


@dataclass(frozen=True)
class VariantSpec(BlockSpec):
    """A BlockSpec with the three variant fields (transitional: BlockSpec gains them in main)."""

    kernel: int | None = None
    activation: str | None = None
    se_style: str | None = None

    def __post_init__(self) -> None:
        # main's BlockSpec still requires spatial % stride == 0; torchvision's padding arithmetic does not
        size, stride = self.spatial, self.stride
        if isinstance(size, int) and isinstance(stride, int) and size > 0 and stride > 0 and size % stride:
            object.__setattr__(self, "spatial", size + stride - size % stride)
            super().__post_init__()
            object.__setattr__(self, "spatial", size)
        else:
            super().__post_init__()

    @property
    def output_spatial(self) -> int:
        return (self.spatial - 1) // self.stride + 1

    @property
    def label(self) -> str:
        marks = [f"k{self.kernel}" if self.kernel else "", self.activation or "", f":{self.se_style}" if self.se_style else ""]
        base = super().label
        if self.se_style and f"se{self.se:g}" in base:
            base, marks[2] = base.replace(f"se{self.se:g}", f"se{self.se:g}:{self.se_style}"), ""
        return " ".join([base, *(m for m in marks if m)])


def variant_spec(**values: Any) -> BlockSpec:
    """A BlockSpec, or a VariantSpec where a variant field is given."""
    plain = {f.name for f in _fields(BlockSpec)}
    given = {k: v for k, v in values.items() if v is not None or k in plain}
    divisible = values.get("spatial", 56) % values.get("stride", 1) == 0  # type: ignore[operator]
    return BlockSpec(**given) if set(given) <= plain and divisible else VariantSpec(**given)
