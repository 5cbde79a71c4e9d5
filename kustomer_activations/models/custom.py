"""Custom attributes: the type a name's suffix declares, and value coercion.

Kustomer types a custom attribute by the suffix of its camelCase name
(``tierStr``, ``scoreNum``, ``signupAt``, ``isVipBool``, ``homepageUrl``,
``ownerId``, ``notesTxt``). :func:`coerce_custom` turns a Python value into the
JSON value Kustomer accepts for that type, or raises :class:`CustomFieldError`.

Decisions (strict by default, so a wrong column is caught, not written):

* ``None`` always passes through: it clears the attribute.
* ``Str`` / ``Txt`` / ``Id`` / ``Url`` accept ``str`` only. Numbers are never
  stringified silently (``42`` for a ``Str`` is refused): use a transform.
  ``Str`` and ``Txt`` are at most 1024 characters.
* ``Num`` accepts ``int``, ``float`` and ``Decimal`` (never ``bool``, never
  NaN or infinity, never beyond a double's range). An integral ``Decimal``
  becomes an ``int``, others a ``float``. With ``parse_strings=True`` numeric
  strings (``"12.5"``) are parsed. :func:`json_number` is that rule, shared
  with the standard number fields.
* ``At`` accepts ``datetime`` (naive = UTC, aware = converted to UTC), ``date``
  (midnight UTC) and ISO-8601 strings; the result is always
  ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (:func:`utc_text`, shared with the standard
  date-time fields). A date-time that falls outside years 1-9999 once in UTC
  is refused.
* ``Bool`` accepts ``bool``; with ``parse_strings=True`` also
  ``true/false/1/0/yes/no`` (case-insensitive).
* ``Url`` must be an absolute ``http``/``https`` URL with a host.
* ``Id`` references other objects; an ``Id`` attribute may be multi-valued
  (``"multi": true`` in the metadata), so a list (or tuple) of non-empty id
  strings is accepted too and sent as a list; anything nested in it is refused
  with its index (``custom.ordersId[1]``).

The value returned is always plain JSON data: the payload check in
:mod:`.validation` makes sure of it for the whole write body.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from ..errors import CustomFieldError, UnknownFieldError
from ._time import format_utc_or_none, parse_iso

__all__ = [
    "CUSTOM_STR_MAX",
    "CustomType",
    "coerce_custom",
    "custom_type",
    "json_number",
    "same_custom_value",
    "utc_text",
]

#: The longest value a ``Str`` attribute holds.
CUSTOM_STR_MAX = 1024


class CustomType(str, enum.Enum):
    """The type of a custom attribute, named by its suffix."""

    STR = "Str"
    TXT = "Txt"
    NUM = "Num"
    AT = "At"
    BOOL = "Bool"
    URL = "Url"
    ID = "Id"


# The suffix is the last capitalised segment, so "bigCat" is not an At field and
# a bare suffix ("Str") has no name in front of it.
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*?(Str|Txt|Num|At|Bool|Url|Id)$")
_VALID_SUFFIXES = ", ".join(t.value for t in CustomType)


@lru_cache(maxsize=4096)
def custom_type(name: str) -> CustomType:
    """The type that the suffix of custom attribute ``name`` declares.

    Raises:
        UnknownFieldError: the name does not end in a known suffix.
    """
    match = _NAME.match(name) if isinstance(name, str) else None
    if match is None:
        shown = name if isinstance(name, str) else label(name)
        raise UnknownFieldError(
            f"custom attribute name must be camelCase ending in one of {_VALID_SUFFIXES} "
            "(the suffix is its type)",
            field=f"custom.{shown}",
            value=error_value(name),
        )
    return CustomType(match.group(1))


def error_value(value: Any) -> Any:
    """``value`` for an error's ``value``, or a stand-in when it cannot be shown.

    An error's message shows ``repr(value)``; some values cannot be shown (an
    integer over 4300 digits, a list holding one, an object whose
    ``__repr__`` fails), and building the error must not fail for them.
    """
    try:
        repr(value)
    except Exception:
        return f"<a {type(value).__name__} that cannot be shown>"
    return value


def label(key: Any) -> str:
    """A short printable name for a key that is not a string, for an error's ``field``."""
    try:
        text = repr(key)
    except Exception:
        text = f"<{type(key).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _fail(name: str, value: Any, reason: str) -> CustomFieldError:
    return CustomFieldError(reason, field=f"custom.{name}", value=error_value(value))


def json_number(value: Any) -> int | float:
    """The JSON number to send for ``value``: an ``int`` or a finite ``float``.

    Takes ``int``, ``float`` and finite ``Decimal`` (integral ones become
    ``int``, others ``float``) and numpy scalars; never ``bool``. The ``Num``
    attributes and the standard number fields (``employeeCount``, ``rev``)
    share this rule.

    Raises:
        ValueError: ``value`` is not a number, or not a finite one a double
            can hold; the message says which, for the caller's error.
    """
    kind = type(value)
    if kind is int:
        return int(value)
    if kind is float:
        if math.isfinite(value):
            return float(value)
        raise ValueError("must be a finite number (NaN and infinity are not JSON)")
    if isinstance(value, bool):
        raise ValueError("must be a number, not a bool")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite number (NaN and infinity are not JSON)")
        # float() first: it is cheap for any exponent, while int() of 1E+999999999
        # would build a billion-digit integer.
        as_float = float(value)
        if not math.isfinite(as_float):
            raise ValueError("must be a number within a double's range")
        return int(value) if value == value.to_integral_value() else as_float
    if isinstance(value, int):  # int subclasses (IntEnum, ...)
        return int(value)
    if isinstance(value, float):  # float subclasses (numpy.float64, ...)
        return json_number(float(value))
    # numpy scalars are neither int nor float subclasses in every version
    item = getattr(value, "item", None)
    if callable(item) and kind.__module__ == "numpy":
        plain = item()
        if type(plain) in (int, float):
            return json_number(plain)
    raise ValueError("must be a number")


def utc_text(value: Any) -> str | None:
    """Kustomer's date-time text for a datetime, a date or an ISO-8601 string.

    ``None`` when ``value`` is none of these, or when converting it to UTC
    leaves years 1-9999 (``9999-12-31T23:00:00-05:00``); the caller words
    the error. The ``At`` attributes and the standard date-time fields share it.
    """
    try:
        return format_utc_or_none(value)
    except (ArithmeticError, ValueError, TypeError):
        return None  # OverflowError out of datetime's range, a tzinfo that fails


def _str(name: str, value: Any, parse_strings: bool) -> Any:
    if not isinstance(value, str):
        raise _fail(name, value, "a Str attribute takes a string")
    if len(value) > CUSTOM_STR_MAX:
        raise _fail(name, value, f"a Str attribute holds at most {CUSTOM_STR_MAX} characters, "
                    f"not {len(value)}")
    return str(value)


def _txt(name: str, value: Any, parse_strings: bool) -> Any:
    if not isinstance(value, str):
        raise _fail(name, value, "a Txt attribute takes a string")
    # Kustomer's reference limits Txt values to 1024 characters too (KUSTOMER_API.md).
    if len(value) > CUSTOM_STR_MAX:
        raise _fail(name, value, f"a Txt attribute holds at most {CUSTOM_STR_MAX} characters, "
                    f"not {len(value)}")
    return str(value)


def _num(name: str, value: Any, parse_strings: bool) -> Any:
    kind = type(value)
    if kind is int:  # the common cases first: this runs once per value per row
        return value
    if kind is float and math.isfinite(value):
        return value
    if isinstance(value, str):
        if not parse_strings:
            raise _fail(name, value, "a Num attribute takes a number "
                        "(numeric strings need parse_strings=True)")
        text = value.strip()
        try:
            parsed: Any = int(text)
        except ValueError:
            try:
                parsed = float(text)
            except ValueError:
                raise _fail(name, value, "not a number") from None
        value = parsed
    try:
        return json_number(value)
    except ValueError as exc:
        raise _fail(name, value, f"a Num attribute's value {exc}") from None


def _at(name: str, value: Any, parse_strings: bool) -> Any:
    text = utc_text(value)
    if text is not None:
        return text
    if isinstance(value, str):
        raise _fail(name, value, "an At attribute takes an ISO-8601 date-time")
    raise _fail(name, value, "an At attribute takes a datetime, a date or an ISO-8601 string")


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


def _bool(name: str, value: Any, parse_strings: bool) -> Any:
    if value is True or value is False:
        return value
    if isinstance(value, bool):
        return bool(value)
    if parse_strings and isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise _fail(name, value, "not a boolean (true/false/1/0/yes/no)")
    raise _fail(name, value, "a Bool attribute takes True or False"
                + ("" if parse_strings else " (strings need parse_strings=True)"))


def _url(name: str, value: Any, parse_strings: bool) -> Any:
    if not isinstance(value, str):
        raise _fail(name, value, "a Url attribute takes a string")
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() for c in value)
    ):
        raise _fail(name, value, "a Url attribute takes an absolute http(s) URL")
    return str(value)


def _id(name: str, value: Any, parse_strings: bool) -> Any:
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (list, tuple)):
        # A multi-valued Id attribute ("multi": true in the metadata): a flat list of ids.
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise CustomFieldError(
                    "a multi-valued Id attribute takes a list of non-empty id strings",
                    field=f"custom.{name}[{i}]", value=error_value(item),
                )
        return [str(v) for v in value]
    raise _fail(name, value, "an Id attribute takes an id string (or a list of them)")


def _id_list(value: Any) -> list[str] | None:
    """An ``Id`` value as a list of ids (one id is a list of one; null is none), else ``None``."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


_COERCERS: dict[CustomType, Callable[[str, Any, bool], Any]] = {
    CustomType.STR: _str,
    CustomType.TXT: _txt,
    CustomType.NUM: _num,
    CustomType.AT: _at,
    CustomType.BOOL: _bool,
    CustomType.URL: _url,
    CustomType.ID: _id,
}


def coerce_custom(name: str, value: Any, *, parse_strings: bool = False) -> Any:
    """The JSON value to send for custom attribute ``name`` (see the module rules).

    Raises:
        UnknownFieldError: the name has no valid type suffix.
        CustomFieldError: the value does not fit the type (``field`` is ``custom.<name>``).
    """
    if value is None:
        return None
    return _COERCERS[custom_type(name)](name, value, parse_strings)


# Kinds whose two string values are the same exactly when they are equal strings.
_TEXT_KINDS = frozenset({CustomType.STR, CustomType.TXT, CustomType.URL, CustomType.ID})


def same_custom_value(name: str, current: Any, new: Any) -> bool:
    """Whether ``current`` (as read from Kustomer) already holds ``new`` (coerced).

    ``At`` values compare as instants (``...00Z`` equals ``...00.000Z``), ``Num``
    values numerically (``5`` equals ``5.0``; bools never equal numbers).
    ``Id`` values compare as ordered lists of ids, since a multi-valued ``Id``
    attribute holds a list: ``"a"`` equals ``["a"]``, ``None`` equals ``[]``,
    ``["a", "b"]`` differs from ``["b", "a"]`` (a reorder is written).
    Values of the wrong type never compare equal, so they get rewritten.
    """
    if current is None and new is None:
        return True
    kind = custom_type(name)
    if type(new) is str and type(current) is str and kind in _TEXT_KINDS:
        return current == new  # the usual text attribute, without the chain below
    if kind is CustomType.ID:
        ids = _id_list(current)
        return ids is not None and ids == _id_list(new)
    if current is None or new is None:
        return False
    if kind is CustomType.NUM:
        if isinstance(current, bool) or isinstance(new, bool):
            return False
        if isinstance(current, (int, float, Decimal)) and isinstance(new, (int, float, Decimal)):
            return bool(current == new)
        return False
    if kind is CustomType.AT:
        if current == new:
            return True
        if isinstance(current, str) and isinstance(new, str):
            try:
                return parse_iso(current) == parse_iso(new)
            except ValueError:
                return False
        return False
    if kind is CustomType.BOOL:
        return current is new or (isinstance(current, bool) and current == new)
    return type(current) is type(new) and bool(current == new)
