"""Input adapters: any iterable or async iterable of mappings, DataFrames, CSV files."""

from __future__ import annotations

import csv
import math
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["aiter_rows", "count_hint", "iter_rows", "read_csv"]


def _is_dataframe(obj: Any) -> bool:
    package = type(obj).__module__.partition(".")[0]
    return package in ("pandas", "polars") and hasattr(obj, "columns")


def _clean(value: Any) -> Any:
    # DataFrames use NaN / NaT / pd.NA for "no value"; mapping treats None as that.
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def _dataframe_rows(frame: Any) -> Iterator[dict[str, Any]]:
    if type(frame).__module__.partition(".")[0] == "polars":
        for row in frame.iter_rows(named=True):
            yield {k: _clean(v) for k, v in row.items()}
        return
    columns = [str(c) for c in frame.columns]
    for values in frame.itertuples(index=False, name=None):
        yield {c: _clean(v) for c, v in zip(columns, values, strict=True)}


def iter_rows(rows: Any) -> Iterator[Mapping[str, Any]]:
    """Rows from an iterable of mappings or a pandas/polars DataFrame, lazily."""
    if _is_dataframe(rows):
        return _dataframe_rows(rows)
    if isinstance(rows, Mapping):
        raise TypeError("pass an iterable of rows (e.g. a list of dicts), not a single mapping")
    if not isinstance(rows, Iterable):
        raise TypeError(f"rows must be iterable, got {type(rows).__name__}")
    return iter(rows)


async def aiter_rows(rows: Any) -> AsyncIterator[Mapping[str, Any]]:
    """Rows from an async iterable, or from anything :func:`iter_rows` takes."""
    if isinstance(rows, AsyncIterable):
        async for row in rows:
            yield row
        return
    for row in iter_rows(rows):
        yield row


def count_hint(rows: Any) -> int | None:
    """The number of rows when the input knows it (lists, DataFrames), else ``None``."""
    try:
        return len(rows)
    except TypeError:
        return None


def read_csv(path: str | Path, *, encoding: str = "utf-8") -> Iterator[dict[str, Any]]:
    """Rows of a CSV file with a header line; empty cells become ``None``."""
    with Path(path).open(encoding=encoding, newline="") as fh:
        for row in csv.DictReader(fh):
            yield {k: (v if v != "" else None) for k, v in row.items()}
