"""Block definitions: the registry and the built-in ResNet and MobileNetV2 blocks."""

from blockprof.blocks.registry import BlockDef, build, defaults_of, get, names, register, resolve

__all__ = ["BlockDef", "build", "defaults_of", "get", "names", "register", "resolve"]
