"""Tolerant readers for Kustomer response attributes (missing, null, odd types)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .contact import Email, Phone

__all__ = [
    "as_mapping",
    "emails_of",
    "int_or_none",
    "phones_of",
    "resource_of",
    "str_or_none",
    "strings_of",
]

_EMPTY: Mapping[str, Any] = {}


def resource_of(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    """The resource object, unwrapping a ``{"data": {...}}`` envelope if given one."""
    if "attributes" not in resource and isinstance(resource.get("data"), Mapping):
        data: Mapping[str, Any] = resource["data"]
        return data
    return resource


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if isinstance(value, Mapping) else _EMPTY


def str_or_none(value: Any) -> str | None:
    """A string attribute; ``None`` for missing/null, ``str()`` for scalars."""
    if value is None or isinstance(value, (Mapping, list)):
        return None
    return value if isinstance(value, str) else str(value)


def int_or_none(value: Any) -> int | None:
    """An integer attribute (``rev``, ``employeeCount``); ``None`` when not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return int(value)
    except (OverflowError, ValueError):
        return None


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def emails_of(value: Any) -> tuple[Email, ...]:
    """The ``emails`` list; entries without an address are dropped."""
    return tuple(
        Email.from_api(i)
        for i in _items(value)
        if isinstance(i, Mapping) and isinstance(i.get("email"), str) and i["email"]
    )


def phones_of(value: Any) -> tuple[Phone, ...]:
    """The ``phones`` list; entries without a number are dropped."""
    return tuple(
        Phone.from_api(i)
        for i in _items(value)
        if isinstance(i, Mapping) and isinstance(i.get("phone"), str) and i["phone"]
    )


def strings_of(value: Any, key: str | None = None) -> tuple[str, ...]:
    """A list of strings, or of ``{key: str}`` objects when ``key`` is given."""
    out: list[str] = []
    for item in _items(value):
        if key is not None and isinstance(item, Mapping):
            item = item.get(key)
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            out.append(str(item))
    return tuple(out)
