"""Block definitions: the registry and the built-in ResNet, MobileNetV2 and RegNet blocks.

The built-in blocks register themselves when imported, here, in the order the registry
lists them (timm's layout: the registry module imports no block module).
"""

from blockprof.blocks.base import BlockDef
from blockprof.blocks.registry import build, defaults_of, get, names, register, resolve

# registration order is listing order: ResNet's blocks first
# isort: off
from blockprof.blocks import resnet  # noqa: F401
from blockprof.blocks import mobilenet  # noqa: F401
from blockprof.blocks import regnet  # noqa: F401
# isort: on

__all__ = ["BlockDef", "build", "defaults_of", "get", "names", "register", "resolve"]
