"""Input adapters: any iterable or async iterable of mappings, DataFrames, CSV files."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["aiter_rows", "as_rows", "count_hint", "iter_rows", "read_csv", "read_jsonl"]

#: File extensions ``upsert_many(path)`` reads, and the delimiter each CSV flavour uses.
_CSV_DELIMITERS = {".csv": ",", ".tsv": "\t"}
_JSONL = (".jsonl", ".ndjson")


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


def as_rows(rows: Any) -> Any:
    """``rows`` itself, or the rows of the file it names (a ``str`` or ``os.PathLike`` path).

    ``.csv`` and ``.tsv`` are read with :func:`read_csv`, ``.jsonl`` and
    ``.ndjson`` with :func:`read_jsonl`; the file is checked now (so a typo
    fails before any request) and read lazily. Any other extension raises
    ``ValueError`` saying what to call instead.
    """
    if not isinstance(rows, (str, os.PathLike)):
        return rows
    path = Path(rows)
    suffix = path.suffix.lower()
    if suffix not in _CSV_DELIMITERS and suffix not in _JSONL:
        raise ValueError(
            f"upsert_many() reads rows from .csv, .tsv, .jsonl or .ndjson files, not {path.name!r}: "
            "for another format load it first (e.g. pandas.read_excel(path) or "
            "pandas.read_parquet(path)) and pass the DataFrame, or pass an iterable of dicts"
        )
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    if suffix in _JSONL:
        return read_jsonl(path)
    return read_csv(path, delimiter=_CSV_DELIMITERS[suffix])


def iter_rows(rows: Any) -> Iterator[Mapping[str, Any]]:
    """Rows from an iterable of mappings, a pandas/polars DataFrame or a file path, lazily."""
    rows = as_rows(rows)
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


def read_csv(
    path: str | os.PathLike[str], *, encoding: str = "utf-8-sig", delimiter: str = ","
) -> Iterator[dict[str, Any]]:
    """Rows of a CSV file with a header line; empty cells become ``None``.

    The default ``utf-8-sig`` reads plain UTF-8 and also drops the byte-order
    mark Excel writes at the start of a "CSV UTF-8" file (which would
    otherwise become part of the first column's name). ``delimiter="\\t"``
    reads tab-separated files, ``";"`` the CSVs of European Excel locales.
    """
    with Path(path).open(encoding=encoding, newline="") as fh:
        for row in csv.DictReader(fh, delimiter=delimiter):
            yield {k: (v if v != "" else None) for k, v in row.items()}


def read_jsonl(path: str | os.PathLike[str], *, encoding: str = "utf-8-sig") -> Iterator[dict[str, Any]]:
    """Rows of a JSON Lines file: one JSON object per line (blank lines are skipped)."""
    with Path(path).open(encoding=encoding) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{Path(path).name} line {number} is not JSON: {exc}") from None
