"""The record: one flat, JSON-safe dict per counted block, and records → DataFrame.

The field list below is a public interface (``--format json``, CSV columns,
saved runs, baselines): add fields, never rename or drop one. Each field says
its unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from blockprof import schema

if TYPE_CHECKING:
    import pandas as pd

#: field → what it holds (the schema's record fields; docs/reference/schema.md is generated from them)
COUNT_FIELDS: dict[str, str] = schema.RECORD_FIELDS


def to_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records → DataFrame with the schema's columns first, in schema order."""
    import pandas as pd

    df = pd.DataFrame.from_records(records)
    known = [c for c in COUNT_FIELDS if c in df.columns]
    return df[known + [c for c in df.columns if c not in COUNT_FIELDS]]


def block_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The block cells of a frame (model cells left out): what comparisons across blocks, plots over
    widths and pivots by block may use."""
    return df[df["model"].isna()] if "model" in df.columns else df


def model_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The model cells of a frame (whole models, with no width to compare at)."""
    return df[df["model"].notna()] if "model" in df.columns else df.iloc[:0]


def describe(record: Mapping[str, Any]) -> str:
    """One line naming the cell a record is of: ``bottleneck C=256, input 32×256×56×56 (s2 t4 g32), float32 on cpu``,
    or ``model examples.models:small_cnn, input 1×3×32×32, float32 on cpu``."""

    def given(key: str) -> Any:
        value = record.get(key)
        return None if value is None or value != value else value  # None and NaN alike

    if given("model") is not None:
        text = f"model {record['model']}, input {'×'.join(f'{d:g}' for d in record.get('input_shape') or ())}"
        if given("dtype") and given("device"):
            text += f", {record['dtype']} on {record['device']}"
        return text
    text = f"{record['block']} C={record['in_channels']}"
    if given("out_channels") is not None and record["out_channels"] != record["in_channels"]:
        text += f"→{record['out_channels']:g}"
    if given("spatial") is not None and given("batch") is not None:
        text += f", input {record['batch']:g}×{record['in_channels']}×{record['spatial']:g}×{record['spatial']:g}"
    from blockprof.blocks.registry import defaults_of

    extra = schema.marks({k: given(k) for k in schema.VARIANT_NAMES}, defaults_of(str(record["block"])))
    if extra:
        text += f" ({' '.join(extra)})"
    if given("dtype") and given("device"):
        text += f", {record['dtype']} on {record['device']}"
    return text


def plain(value: Any) -> Any:
    """A JSON-safe Python value: numpy scalars unwrapped; NaN, NaT and pandas' NA to None."""
    import pandas as pd

    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy scalar
    if value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value))):
        return None
    return value


def to_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame → records, each value JSON-safe (see :func:`plain`)."""
    return [{k: plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
