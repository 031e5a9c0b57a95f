"""A grid of block specs: blocks × widths × input sizes × batches × variant options × dtypes × devices.

A variant option (``expansion``, ``groups``, ...) is applied only to the blocks
that take it (see ``BlockDef.accepts``), so ``--expansion 4`` over the three
default blocks changes the bottleneck and the inverted residual and leaves the
BasicBlock as it is; an option that no chosen block takes is an error. An
option given as several values is an axis, again only for the blocks that take
it: ``expansion = [2, 4]`` doubles the bottleneck cells, not the BasicBlock's.

``dtype`` and ``device`` are timing conditions, not part of the block: they
multiply the cells of a timed sweep (see :class:`Cell`).

``models`` are whole models (:class:`~blockprof.spec.ModelSpec`), one cell each
(× dtype × device): not an axis, since a model has no width or size to vary. A
grid of models alone has ``blocks = ()``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from blockprof import schema
from blockprof.errors import BlockprofError
from blockprof.spec import DEFAULT_MODEL_INPUT, BlockSpec, ModelSpec, cell_spec

DEFAULT_BLOCKS = ("basic", "bottleneck", "inverted_residual")
#: variant option → the type of its values (the BlockSpec field it sets), from the schema
OPTION_TYPES: dict[str, type] = {f.name: f.kind for f in schema.VARIANT_FIELDS}
VARIANT_OPTIONS = schema.VARIANT_NAMES
#: the keys a grid file may hold besides the variant options
GRID_KEYS = ("blocks", "channels", "spatial", "batch", "dtype", "device", "models")
#: the keys of a ``[[models]]`` table (grid and suite files alike)
MODEL_KEYS = ("target", "input")


@dataclass(frozen=True)
class Grid:
    """The axes of a sweep. Each axis is a tuple of values (a single value is
    accepted and becomes a 1-tuple); ``options`` maps a variant option to one
    value or a tuple of values. Values are checked here, so a bad grid fails
    before any cell runs."""

    blocks: tuple[str, ...] = DEFAULT_BLOCKS
    channels: tuple[int, ...] = (256,)
    spatial: tuple[int, ...] = (56,)
    batch: tuple[int, ...] = (1,)
    options: dict[str, Any] = field(default_factory=dict)
    dtype: tuple[str, ...] = ("float32",)
    device: tuple[str, ...] = ("auto",)
    models: tuple[ModelSpec, ...] = ()

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)
        models = (self.models,) if isinstance(self.models, (ModelSpec, dict)) else tuple(self.models)
        set_("models", tuple(dict.fromkeys(m if isinstance(m, ModelSpec) else ModelSpec.from_dict(m) for m in models)))
        no_blocks = self.models and (self.blocks == () or self.blocks == [])
        set_("blocks", () if no_blocks else _names("blocks", self.blocks))
        for axis, name in (("channels", "in_channels"), ("spatial", "spatial"), ("batch", "batch")):
            set_(axis, _values(axis, getattr(self, axis), name))
        unknown = sorted(set(self.options) - set(VARIANT_OPTIONS))
        if unknown:
            raise BlockprofError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(VARIANT_OPTIONS)}")
        # canonical: every given option a tuple of values of its type, in VARIANT_OPTIONS order
        set_("options", {k: _values(k, self.options[k]) for k in VARIANT_OPTIONS if self.options.get(k) is not None})
        set_("dtype", _choices("dtype", self.dtype, schema.DTYPES))
        set_("device", _choices("device", self.device, schema.DEVICES))

    def _spec_fields(self) -> Iterator[dict[str, Any]]:
        """The spec fields of every cell, block-major, each option only for the blocks that take it."""
        from blockprof.blocks.registry import get

        definitions = {name: get(name) for name in self.blocks}
        for option in self.options:
            if not any(option in d.accepts for d in definitions.values()):
                from blockprof.blocks.registry import names

                takers = [n for n in names() if option in get(n).accepts]
                raise BlockprofError(
                    f"option {option!r} applies to none of the blocks {', '.join(self.blocks)}; "
                    f"{'it applies to ' + ', '.join(takers) if takers else 'no block takes it yet'}"
                )
        for name in self.blocks:
            axes = {k: v for k, v in self.options.items() if k in definitions[name].accepts}
            for c, s, n, *values in itertools.product(self.channels, self.spatial, self.batch, *axes.values()):
                yield {
                    "block": name,
                    "in_channels": c,
                    "spatial": s,
                    "batch": n,
                    **dict(zip(axes, values, strict=False)),
                }

    def specs(self) -> list[BlockSpec]:
        """Every distinct block spec (dtype and device aside, models aside), block-major; raises
        BlockprofError on the first invalid one."""
        return [BlockSpec(**f) for f in self._spec_fields()] if self.blocks else []

    def cells(self) -> list[Cell]:
        """Every cell: each block spec's fields (unchecked: an invalid combination is a cell
        that fails when it runs) at each dtype and device, then each model's."""
        fields_ = [*(self._spec_fields() if self.blocks else ()), *(m.as_dict() for m in self.models)]
        return [
            Cell(tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in f.items()), dtype, device)
            for f in fields_
            for dtype, device in itertools.product(self.dtype, self.device)
        ]

    def replace(self, **changes: Any) -> Grid:
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe and canonical: equal grids give equal dicts."""
        out: dict[str, Any] = {
            f.name: list(getattr(self, f.name)) for f in fields(self) if f.name not in ("options", "models")
        }
        out["options"] = {k: list(v) for k, v in self.options.items()}
        if self.models:  # left out otherwise, so that a run of blocks alone reads as before
            out["models"] = [m.as_dict() for m in self.models]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grid:
        """The inverse of :meth:`as_dict` (a run's meta.json)."""
        data = dict(data)
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise BlockprofError(
                f"unknown grid key(s) {', '.join(unknown)}; known: {', '.join(f.name for f in fields(cls))}"
            )
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    @classmethod
    def from_toml(cls, path: str | Path) -> Grid:
        """Read a grid file: top-level keys ``blocks``, ``channels``, ``spatial``,
        ``batch``, ``dtype``, ``device``, any variant option (one value or a list),
        ``[[models]]`` tables (``target``, optional ``input``; ``blocks = []`` for
        models alone) and an optional ``description``. Every error names the file."""
        path = Path(path)
        data = read_toml(path, "grid file", "see benchmarks/grids/ for examples")
        data.pop("description", None)
        known = (*GRID_KEYS, *VARIANT_OPTIONS, "description")
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise BlockprofError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
        axes = {k: data[k] for k in GRID_KEYS if k in data}
        try:
            if "models" in axes:
                axes["models"] = models_from_toml(axes["models"])
            return cls(**axes, options={k: data[k] for k in VARIANT_OPTIONS if k in data})
        except BlockprofError as e:
            raise BlockprofError(f"{path}: {e}") from None


@dataclass(frozen=True)
class Cell:
    """One point of a grid: the spec's fields as the grid gives them (block
    defaults not filled in) and the timing conditions."""

    fields: tuple[tuple[str, Any], ...]
    dtype: str = "float32"
    device: str = "auto"

    def as_dict(self) -> dict[str, Any]:
        return {**dict(self.fields), "dtype": self.dtype, "device": self.device}

    @property
    def key(self) -> str:
        """Stable identity of the cell: the first 16 hex digits of the SHA-256 of
        :meth:`as_dict` as compact, key-sorted JSON. Only the fields the grid sets
        enter it, so adding a BlockSpec field later keeps old runs resumable."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def spec(self) -> BlockSpec | ModelSpec:
        """The cell's BlockSpec (or ModelSpec); raises BlockprofError for an invalid combination."""
        return cell_spec(dict(self.fields))

    @property
    def is_model(self) -> bool:
        return any(k == "model" for k, _ in self.fields)

    @property
    def label(self) -> str:
        """Short, for progress lines: ``bottleneck 256 @56² b32 t2 float32/cpu``, ``model pkg.mod:fn @ 1×3×32×32 float32/cpu``."""
        f = dict(self.fields)
        if self.is_model:
            return f"model {f['model']} @ {'×'.join(map(str, f['input_shape']))} {self.dtype}/{self.device}"
        parts = [f["block"], str(f["in_channels"]), f"@{f['spatial']}²", f"b{f['batch']}"]
        if "out_channels" in f:
            parts.append(f"→{f['out_channels']}")
        parts += schema.marks(
            {k: v for k, v in f.items() if k in VARIANT_OPTIONS}, defaults={k: None for k in VARIANT_OPTIONS}
        )
        return " ".join(parts) + f" {self.dtype}/{self.device}"


@dataclass(frozen=True)
class Shard:
    """The ``index``-th of ``count`` disjoint parts of a grid (1-based): the cells
    whose position in :meth:`Grid.cells` is ``index - 1`` modulo ``count``.
    Interleaved rather than contiguous, so every shard gets a similar mix of
    small and large cells."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (isinstance(self.count, int) and isinstance(self.index, int) and 1 <= self.index <= self.count):
            raise BlockprofError(f"shard must be i/n with 1 ≤ i ≤ n, e.g. 2/3; got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise BlockprofError(f"shard must be i/n with 1 ≤ i ≤ n, e.g. 2/3; got {text!r}") from None
        return cls(index, count)

    def holds(self, position: int) -> bool:
        return position % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def _names(axis: str, value: Any) -> tuple[str, ...]:
    values = (value,) if isinstance(value, str) else tuple(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise BlockprofError(
            f'{axis} must be a non-empty list of block names, e.g. ["basic", "bottleneck"]; got {value!r}'
        )
    return values


def _values(axis: str, value: Any, name: str | None = None) -> tuple:
    """One value or a list of them, each checked by the schema's rule for field ``name`` (default: ``axis``)."""
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    try:
        if not values:
            raise BlockprofError("no values")
        return tuple(schema.coerce(name or axis, v, axis) for v in values)
    except BlockprofError:
        raise BlockprofError(
            f"{axis} must be {schema.field(name or axis).rule()} (or a list of them); got {value!r}"
        ) from None


def _choices(axis: str, value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = (value,) if isinstance(value, str) else tuple(value)
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise BlockprofError(f"{axis} must be one or a list of {', '.join(allowed)}; got {value!r}")
    return values


def models_from_toml(tables: Any) -> tuple[ModelSpec, ...]:
    """``[[models]]`` tables (``target = "pkg.mod:callable"``, optional ``input = [1, 3, 224, 224]``) as specs."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise BlockprofError('models must be [[models]] tables, e.g. [[models]] target = "examples.models:small_cnn"')
    specs = []
    for i, table in enumerate(tables, 1):
        unknown = sorted(set(table) - set(MODEL_KEYS))
        if unknown or "target" not in table:
            raise BlockprofError(
                f"[[models]] #{i}: "
                + (f"unknown key(s) {', '.join(unknown)}" if unknown else "no 'target'")
                + f'; known: {", ".join(MODEL_KEYS)}, e.g. target = "examples.models:small_cnn", input = [1, 3, 32, 32]'
            )
        shape = table.get("input", list(DEFAULT_MODEL_INPUT))
        specs.append(ModelSpec(table["target"], tuple(shape) if isinstance(shape, list) else shape))
    return tuple(specs)


def read_toml(path: Path, what: str, example: str) -> dict[str, Any]:
    """A TOML file as a dict; every way it can fail is one line naming ``what`` and the file."""
    import tomllib

    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BlockprofError(f"{what} {path} does not exist; {example}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BlockprofError(f"cannot read {what} {path}: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise BlockprofError(f"{what} {path} is not valid TOML: {e}") from None
