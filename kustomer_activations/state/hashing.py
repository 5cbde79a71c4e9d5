"""Stable hashes of mapped payloads and of mappings.

The state store remembers, per row, a hash of the last mapped payload
Kustomer accepted; the next run hashes the row again and, when the two are
equal, sends nothing. So the hash must depend on the *values* only, never on
how they happen to be spelled:

* **Canonical JSON.** Object keys sorted, no whitespace, UTF-8, lists kept in
  order (array order is data). Keys are compared as text.
* **Numbers.** A float is first rounded to 15 significant digits (``"%.15g"``),
  the precision every IEEE double holds exactly: a value anyone typed or
  stored as decimal text with up to 15 digits survives unchanged, while the
  noise of binary arithmetic and text round trips (``0.1 + 0.2``,
  ``1.0000000000000002``) disappears. A result with no fractional part is
  written as an integer, so ``1``, ``1.0`` and ``1.0000000000000002`` hash the
  same, as do ``-0.0`` and ``0``. Integers are exact at any size. NaN and the
  infinities (which a validated payload never holds) get a tagged spelling of
  their own. ``Decimal`` follows the float rule; ``bool`` stays a boolean.
* **Other scalars.** ``date``/``datetime``/``time`` are written as their ISO
  text; any other type is refused (``TypeError``) rather than hashed through a
  ``repr`` that may change between runs.
* **Digest.** BLAKE2b, 16 bytes, as 32 hex characters.

:func:`mapped_hash` also covers what a :class:`~kustomer_activations.mapping.MappedRecord`
carries beside its payload (the company link to resolve, the ``set_if_empty``
paths, the explicit nulls), since those change what is written too.

:func:`mapping_fingerprint` describes a mapping's *structure* (destinations,
sources, options). Values are already covered by the row hashes, so the
fingerprint is for what a row's values cannot show, plus any engine option
passed as ``extra`` (say, how arrays are merged). Callables are named by
module and qualified name only: a changed function body changes the values it
returns, which the row hashes see; hashing its bytecode would instead
invalidate every row on each Python upgrade.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import json
import math
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from ..mapping import Field, FieldMapping, MappedRecord

__all__ = ["canonical_json", "mapped_hash", "mapping_fingerprint", "pack", "payload_hash", "unpack"]

_DIGEST_SIZE = 16


def _float(value: float) -> Any:
    if not math.isfinite(value):
        # strict JSON has no NaN: tag it so it cannot collide with the text "nan"
        return {"\u0000float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    rounded = float(f"{value:.15g}")
    if rounded.is_integer():
        return int(rounded)
    return rounded  # json writes repr(): the shortest text that reads back to it


def _normalise(value: Any) -> Any:
    # bool before int: True is an int in Python but a distinct JSON value
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, Mapping):
        return {str(k): _normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return _float(float(value))
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    raise TypeError(f"cannot hash a value of type {type(value).__name__}: {value!r}")


def canonical_json(value: Any) -> str:
    """The canonical JSON text of ``value`` that :func:`payload_hash` digests (see the module notes)."""
    return json.dumps(
        _normalise(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=_DIGEST_SIZE).hexdigest()


def payload_hash(payload: Mapping[str, Any]) -> str:
    """A stable 32-hex-character hash of a mapped payload.

    Independent of dict order and of float formatting noise (see the module
    notes for the exact rule).

    Raises:
        TypeError: the payload holds a value with no stable text form.
    """
    return _digest(canonical_json(payload))


def mapped_hash(record: MappedRecord) -> str:
    """The hash of everything a mapped row asks to write: payload, company link, options.

    Equal to :func:`payload_hash` of the payload when the record has no
    company link, no ``set_if_empty`` paths and no explicit nulls beyond the
    payload's own, so the two can be mixed only for such plain records; an
    engine should pick one and stick to it.
    """
    if record.company_external_id is None and not record.set_if_empty and not record.nulls:
        return payload_hash(record.payload)
    return _digest(canonical_json({
        "payload": record.payload,
        "companyExternalId": record.company_external_id,
        "setIfEmpty": sorted(record.set_if_empty),
        "nulls": sorted(record.nulls),
    }))


def _source(source: Any) -> Any:
    if isinstance(source, str):
        return {"column": source}
    if isinstance(source, Field):
        return {
            "source": _source(source.source),
            "skipNull": source.skip_null,
            "setIfEmpty": source.set_if_empty,
            "transform": None if source.transform is None else _callable(source.transform),
        }
    if callable(source):
        return {"callable": _callable(source)}
    return {"value": repr(source)}


def _callable(func: Callable[..., Any]) -> str:
    module = getattr(func, "__module__", None) or "?"
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    return f"{module}.{name}"


def mapping_fingerprint(
    mapping: FieldMapping | Mapping[str, Any] | None, *, extra: Mapping[str, Any] | None = None
) -> str:
    """A stable hash of a mapping's structure and of engine options that change what is written.

    Args:
        mapping: a :class:`~kustomer_activations.mapping.FieldMapping`, a raw
            spec (destination -> source), or ``None`` (identity rows).
        extra: JSON-able options outside the mapping that change the writes
            (e.g. ``{"arrays": "merge"}``); part of the fingerprint.

    Returns:
        32 hex characters. Equal for equal structures regardless of spec order.
    """
    described: dict[str, Any]
    if isinstance(mapping, FieldMapping):
        described = {
            "objectType": mapping.object_type,
            "identity": mapping.is_identity,
            "skipNulls": mapping.skip_nulls,
            "parseStrings": mapping.parse_strings,
            "spec": None if mapping.spec is None else {k: _source(v) for k, v in mapping.spec.items()},
        }
    elif mapping is None:
        described = {"identity": True}
    else:
        described = {"spec": {str(k): _source(v) for k, v in mapping.items()}}
    described["extra"] = dict(extra) if extra else {}
    return _digest(canonical_json(described))


def pack(document: Mapping[str, Any]) -> bytes:
    """A compact, stable encoding of a snapshot (zlib-compressed canonical JSON)."""
    return zlib.compress(json.dumps(document, separators=(",", ":"), sort_keys=True,
                                    default=str).encode("utf-8"), 6)


def unpack(blob: bytes) -> dict[str, Any]:
    """The snapshot :func:`pack` encoded.

    Raises:
        ValueError: the blob is not a packed snapshot.
    """
    try:
        value = json.loads(zlib.decompress(blob).decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a packed snapshot: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("not a packed snapshot: not an object")
    return value
