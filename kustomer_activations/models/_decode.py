"""Tolerant readers for Kustomer response attributes (missing, null, odd types)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypedDict

from ._time import parse_iso_or_none
from .contact import Email, Phone

__all__ = [
    "RecordFields",
    "as_mapping",
    "decode_record",
    "emails_of",
    "int_or_none",
    "phones_of",
    "resource_of",
    "str_or_none",
    "strings_of",
]

_EMPTY: Mapping[str, Any] = {}


# Decoding runs for every search hit and read: the checks below take the types
# JSON decoding gives (dict, list, str) first, without an ABC isinstance check.

def resource_of(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    """The resource object, unwrapping a ``{"data": {...}}`` envelope if given one."""
    if "attributes" not in resource and isinstance(resource.get("data"), Mapping):
        data: Mapping[str, Any] = resource["data"]
        return data
    return resource


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one."""
    return value if type(value) is dict or isinstance(value, Mapping) else _EMPTY


def str_or_none(value: Any) -> str | None:
    """A string attribute; ``None`` for missing/null, ``str()`` for scalars."""
    if type(value) is str:
        return value
    if value is None or isinstance(value, (Mapping, list)):
        return None
    return value if isinstance(value, str) else str(value)


def int_or_none(value: Any) -> int | None:
    """An integer attribute (``rev``, ``employeeCount``); ``None`` when not a number."""
    if type(value) is int:
        return value
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
    items = value if type(value) is list else _items(value)
    if not items:
        return ()
    return tuple(
        Email.from_api(i)
        for i in items
        if (type(i) is dict or isinstance(i, Mapping)) and isinstance(i.get("email"), str)
        and i["email"]
    )


def phones_of(value: Any) -> tuple[Phone, ...]:
    """The ``phones`` list; entries without a number are dropped."""
    items = value if type(value) is list else _items(value)
    if not items:
        return ()
    return tuple(
        Phone.from_api(i)
        for i in items
        if (type(i) is dict or isinstance(i, Mapping)) and isinstance(i.get("phone"), str)
        and i["phone"]
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


class RecordFields(TypedDict):
    """The keyword arguments every record class (customer, company) takes alike."""

    id: str
    name: str | None
    external_id: str | None
    emails: tuple[Email, ...]
    phones: tuple[Phone, ...]
    tags: tuple[str, ...]
    custom: dict[str, Any]
    created_at: datetime | None
    updated_at: datetime | None
    rev: int | None
    attributes: dict[str, Any]
    relationships: dict[str, Any]


def decode_record(resource: Mapping[str, Any]) -> tuple[Mapping[str, Any], RecordFields]:
    """Unwrap ``resource`` and decode the fields customers and companies share.

    Returns the raw attributes (for the caller's own fields) and the shared
    fields as keyword arguments for the record class.
    """
    res = resource_of(resource)
    a = as_mapping(res.get("attributes"))
    return a, RecordFields(
        id=str(res.get("id") or ""),
        name=str_or_none(a.get("name")),
        external_id=str_or_none(a.get("externalId")),
        emails=emails_of(a.get("emails")),
        phones=phones_of(a.get("phones")),
        tags=strings_of(a.get("tags")),
        custom=dict(as_mapping(a.get("custom"))),
        created_at=parse_iso_or_none(a.get("createdAt")),
        updated_at=parse_iso_or_none(a.get("updatedAt")),
        rev=int_or_none(a.get("rev")),
        attributes=dict(a),
        relationships=dict(as_mapping(res.get("relationships"))),
    )
