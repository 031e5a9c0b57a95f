"""Shape-list builders shared by the block definitions (pure; no torch).

Each returns the :class:`~blockprof.counting.formulas.Layer` entries of one
familiar piece (conv, BN, activation, shortcut, squeeze-excitation) under the
same names the torch modules in :mod:`blockprof.blocks.nn` use.
"""

from __future__ import annotations

from blockprof.counting.formulas import Layer, conv_output_size


def conv(name: str, cin: int, cout: int, size: int, kernel: int, stride: int = 1, groups: int = 1, bias: bool = False) -> Layer:
    out = conv_output_size(size, kernel, stride)
    return Layer(name, "conv2d", cin, cout, size, out, kernel, stride, groups, bias)


def pointwise(name: str, op: str, channels: int, size: int) -> Layer:
    """An op that keeps the shape: BN, activation, add, multiply."""
    return Layer(name, op, channels, channels, size, size)


def conv_bn(conv_name: str, bn_name: str, cin: int, cout: int, size: int, kernel: int, stride: int = 1, groups: int = 1) -> list[Layer]:
    c = conv(conv_name, cin, cout, size, kernel, stride, groups)
    return [c, pointwise(bn_name, "batchnorm2d", cout, c.out_size)]


def squeeze_excite(prefix: str, channels: int, rd_channels: int, size: int, act: str = "relu", gate: str = "sigmoid") -> list[Layer]:
    """SE (Hu et al.): global pool, 1×1 reduce + ``act``, 1×1 expand + ``gate``, rescale.
    MobileNetV3 gates with hardsigmoid, EfficientNet reduces with SiLU."""
    return [
        Layer(f"{prefix}.pool", "avgpool", channels, channels, size, 1),
        conv(f"{prefix}.fc1", channels, rd_channels, 1, 1, bias=True),
        pointwise(f"{prefix}.act", act, rd_channels, 1),
        conv(f"{prefix}.fc2", rd_channels, channels, 1, 1, bias=True),
        pointwise(f"{prefix}.gate", gate, channels, 1),
        pointwise(f"{prefix}.mul", "mul", channels, size),
    ]


def projection_shortcut(cin: int, cout: int, size: int, stride: int) -> list[Layer]:
    """ResNet's 'downsample': 1×1 conv (carrying the stride) + BN; none when the shapes match."""
    if stride == 1 and cin == cout:
        return []
    return conv_bn("downsample.0", "downsample.1", cin, cout, size, 1, stride)


def squeeze_channels(in_channels: int, se: float) -> int:
    """SE squeeze width: ``max(1, int(in_channels · se))`` (se=0.25 is EfficientNet's MBConv, 1/16 SENet's)."""
    return max(1, int(in_channels * se))


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """The TF MobileNet rounding torchvision uses for widths (``_make_divisible``): the nearest
    multiple of ``divisor`` (at least ``min_value``), one step up if that lost more than 10%."""
    floor = divisor if min_value is None else min_value
    rounded = max(floor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded
