"""Local validation of write bodies, field by field, before anything is sent.

The rules come from the request schemas of ``POST``/``PUT /v1/customers`` and
``POST``/``PUT /v1/companies`` in Kustomer's OpenAPI description (unknown
top-level fields are refused there, so they are refused here too). A bad
record fails alone, here, instead of making Kustomer refuse a whole bulk
request. Each field has one precomputed checker that returns the normalised
value, so validating a row is one dict lookup and one call per field.

Normalisation: date-time fields become ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (datetime,
date and ISO strings accepted), number fields take ``Decimal`` like ``Num``
attributes do (one rule for both: :func:`.custom.json_number`), email and
phone items get their default
``type`` (``home`` / ``mobile``), :class:`Email`/:class:`Phone` objects and
bare strings become items, repeated emails (case-insensitive), phones and tags
are dropped (Kustomer wants unique items), company ``domains`` may be bare
strings, and custom values go through :func:`coerce_custom`.

Emails are checked by :func:`is_email` (Kustomer's ``email-relaxed`` format,
read relaxed but real), in ``emails``, ``sharedEmails`` and company
``emails`` alike.

Strict JSON: every body :func:`validate_payload` returns is plain JSON data
(``dict`` with ``str`` keys, ``list``, ``str``, ``int``, finite ``float``,
``bool``, ``None``) that ``json.dumps(body, allow_nan=False)`` and UTF-8
encoding accept. After a field's checker has coerced what its known type
allows, :func:`strict_json` walks the result, free-form fields included
(``sentiment``, ``locations``, ``socials``, ...): any other value (an object,
NaN or infinity, ``bytes``, a ``set``, a ``Decimal`` or ``datetime`` where the
type is unknown, an unpaired surrogate, an integer a double cannot hold
exactly, a non-string key, a value that holds itself, nesting beyond
:data:`JSON_MAX_DEPTH`) is an
:class:`InvalidRecordError` whose ``field`` is its path
(``sentiment.polarity``, ``locations[0].latitude``). Nothing else is ever
raised for a value: a value whose own methods fail is refused the same way.

Deliberate differences from the published schema, all stricter:

* company ``name`` is 3 to 255 characters (the API notes say 255; the schema
  says 256), and ``externalId`` is at least 1 character for companies too
  (an empty key can never be matched).
* arrays the SDK does not model (``socials``, ``urls``, ``locations``, ...)
  are checked for shape, size and strict JSON only; Kustomer checks their items.
* integers beyond 2**53 that a double cannot hold exactly are refused
  (Kustomer would store a different number).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Final, Literal, TypeGuard

from ..errors import InvalidRecordError, UnknownFieldError
from ._time import format_utc
from .contact import Email, Phone
from .custom import (
    _FALSE,
    _TRUE,
    CUSTOM_STR_MAX,
    CustomType,
    coerce_custom,
    custom_type,
    error_value,
    json_number,
    label,
    utc_text,
)
from .metadata import closest

__all__ = [
    "COMPANY_FIELDS",
    "COMPANY_NAME_MAX",
    "COMPANY_NAME_MIN",
    "CUSTOMER_FIELDS",
    "CUSTOM_MAX_KEYS",
    "DATETIME_FIELDS",
    "JSON_MAX_DEPTH",
    "ObjectType",
    "custom_check",
    "field_check",
    "is_email",
    "strict_json",
    "validate_company_payload",
    "validate_customer_payload",
    "validate_payload",
    "writable_fields",
]

ObjectType = Literal["customer", "company"]

#: The most keys ``custom`` may hold in one write.
CUSTOM_MAX_KEYS = 100
#: Company name length bounds (see the module notes on 255).
COMPANY_NAME_MIN = 3
COMPANY_NAME_MAX = 255

_Checker = Callable[[str, Any], Any]


def _bad(path: str, value: Any, reason: str) -> InvalidRecordError:
    return InvalidRecordError(reason, field=path, value=error_value(value))


# -- strict JSON ----------------------------------------------------------------------

#: The deepest nesting a write body may hold (Kustomer's own objects nest 3 levels).
JSON_MAX_DEPTH: Final = 32
# Every integer up to this magnitude is exact as a double (how Kustomer reads numbers).
_EXACT_INT: Final = 2**53
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def strict_json(value: Any, path: str) -> Any:
    """``value`` as plain JSON data, or :class:`InvalidRecordError` at the first bad path.

    The result holds only ``dict`` (``str`` keys), ``list``, ``str``, ``int``,
    finite ``float``, ``bool`` and ``None``, so ``json.dumps(result,
    allow_nan=False)`` and its UTF-8 encoding succeed. Subclasses of these
    become the base type and tuples become lists (both lossless); nothing
    else is coerced: a field whose type is known coerces before this (see
    the checkers). ``path`` names ``value`` in errors (``"sentiment"``); nested
    values extend it (``"sentiment.polarity"``, ``"locations[0].latitude"``).
    """
    return _plain(value, path, ())


def _plain(value: Any, path: str, parents: tuple[int, ...]) -> Any:
    # ``parents``: the ids of the containers above ``value``, to tell a cycle
    # (a value that holds itself) from deep nesting.
    kind = type(value)
    if kind is str:
        if value.isascii() or _SURROGATE.search(value) is None:
            return value
        raise _bad(path, value, "holds an unpaired surrogate: not valid Unicode text")
    if value is None or kind is bool:
        return value
    if kind is int:
        if -_EXACT_INT <= value <= _EXACT_INT:
            return value
        return _big_int(path, value)
    if kind is float:
        if value - value == 0.0:  # finite; NaN and infinities give NaN
            return value
        raise _bad(path, value, "must be a finite number (NaN and infinity are not JSON)")
    if kind is dict or kind is list or kind is tuple or isinstance(value, (Mapping, list, tuple)):
        if id(value) in parents:
            raise _bad(path, None, "holds itself (a cycle): it cannot be written as JSON")
        if len(parents) >= JSON_MAX_DEPTH:
            raise _bad(path, None, f"nests deeper than {JSON_MAX_DEPTH} levels")
        inside = (*parents, id(value))
        # Plain scalars (nearly every item) are taken inline, without a call or a
        # path string: this walk runs over every body the SDK sends.
        if kind is dict or (kind is not list and isinstance(value, Mapping)):
            out: dict[str, Any] = {}
            for key, item in value.items():
                name = key if type(key) is str and key.isascii() else _key(key, path)
                k = type(item)
                if ((k is str and item.isascii()) or item is None or k is bool
                        or (k is int and -_EXACT_INT <= item <= _EXACT_INT)
                        or (k is float and item - item == 0.0)):
                    out[name] = item
                else:
                    out[name] = _plain(item, f"{path}.{name}" if path else name, inside)
            return out
        items: list[Any] = []
        for i, item in enumerate(value):
            k = type(item)
            if ((k is str and item.isascii()) or item is None or k is bool
                    or (k is int and -_EXACT_INT <= item <= _EXACT_INT)
                    or (k is float and item - item == 0.0)):
                items.append(item)
            else:
                items.append(_plain(item, f"{path}[{i}]", inside))
        return items
    # Subclasses of the JSON types, as their base value (what json.dumps would write).
    if isinstance(value, str):
        return _plain(str.__str__(value), path, parents)
    if isinstance(value, int):  # IntEnum and friends (bool cannot be subclassed)
        return _plain(int.__int__(value), path, parents)
    if isinstance(value, float):  # numpy.float64 and friends
        return _plain(float.__float__(value), path, parents)
    raise _bad(path, value, f"is not a JSON value ({_type_name(value)}): only strings, "
               "finite numbers, true/false, null, lists and objects can be sent here"
               + _HINTS.get(kind.__name__, ""))


_HINTS: Final = {
    "set": " (a set has no order: pass a list)",
    "frozenset": " (a set has no order: pass a list)",
    "bytes": " (decode bytes to text first)",
    "bytearray": " (decode bytes to text first)",
    "datetime": " (only date-time fields and *At attributes take a datetime: "
                "pass an ISO-8601 string)",
    "date": " (only date-time fields and *At attributes take a date: pass an ISO-8601 string)",
    "Decimal": " (only number fields and *Num attributes take a Decimal: pass a float)",
}


def _type_name(value: Any) -> str:
    kind = type(value)
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _key(key: Any, path: str) -> str:
    if type(key) is str:
        if key.isascii() or _SURROGATE.search(key) is None:
            return key
    elif not isinstance(key, str):
        raise _bad(f"{path}[{label(key)}]" if path else label(key), key,
                   "an object key must be a string")
    text: str = _plain(str.__str__(key), f"{path}.<key>" if path else "<key>", ())
    return text


def _big_int(path: str, value: int) -> int:
    try:
        exact = float(value) == value
    except OverflowError:
        exact = False
    if exact:
        return value
    raise _bad(path, None, "is an integer a JSON number cannot hold exactly (Kustomer reads "
               f"numbers as doubles, exact up to 2**53; this one has {value.bit_length()} "
               "bits): send it as a string")


# The bounds of each string checker, so field_check can compile a check without a call.
_STRING_SPECS: dict[_Checker, tuple[int, int | None]] = {}


def _string(min_len: int, max_len: int | None, nullable: bool = True) -> _Checker:
    def check(path: str, value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise _bad(path, value, "may not be null")
        if not isinstance(value, str):
            raise _bad(path, value, "must be a string")
        n = len(value)
        if n < min_len or (max_len is not None and n > max_len):
            limit = f"at most {max_len}" if min_len == 0 else f"{min_len} to {max_len}"
            raise _bad(path, value, f"must be {limit} characters, not {n}")
        return value

    _STRING_SPECS[check] = (min_len, max_len)
    return check


def _datetime(nullable: bool = True) -> _Checker:
    def check(path: str, value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise _bad(path, value, "may not be null")
        text = utc_text(value)
        if text is None:
            raise _bad(path, value, "must be an ISO-8601 date-time (or a datetime/date)")
        return text

    return check


def _enum(values: tuple[str, ...], nullable: bool = True) -> _Checker:
    def check(path: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        # A tuple, not a set: an unhashable value must fail as a bad value.
        if not isinstance(value, str) or value not in values:
            raise _bad(path, value, f"must be one of {', '.join(values)}")
        return value

    return check


def _number(path: str, value: Any) -> Any:
    try:
        return json_number(value)
    except ValueError as exc:
        raise _bad(path, value, str(exc)) from None


def _nullable_bool(path: str, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    raise _bad(path, value, "must be true, false or null")


def _object(path: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise _bad(path, value, "must be an object")
    return value  # copied into a plain dict by the strict JSON walk


def _list(path: str, value: Any, max_items: int) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise _bad(path, value, "must be a list")
    if len(value) > max_items:
        raise _bad(path, None, f"holds at most {max_items} items (got {len(value)})")
    return list(value)


def _objects(max_items: int) -> _Checker:
    def check(path: str, value: Any) -> Any:
        items = _list(path, value, max_items)
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise _bad(f"{path}[{i}]", item, "must be an object")
        return [dict(i) for i in items]

    return check


def _check_item_keys(path: str, item: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for key in item:
        if key not in allowed:
            raise UnknownFieldError(
                f"unknown key {label(key)} (allowed: {', '.join(sorted(allowed))})",
                field=f"{path}.{key}" if isinstance(key, str) else f"{path}[{label(key)}]",
            )


def _contacts(
    key: str,
    model: type[Email] | type[Phone],
    is_valid: Callable[[Any], TypeGuard[str]],
    invalid: str,
    dedupe_key: Callable[[str], str],
    types: tuple[str, ...],
    bad_verified: str,
) -> _Checker:
    """A checker for a list of contact items (``emails``, ``phones``, ``whatsapps``).

    An item is a bare string, a ``model`` object or a mapping of ``type``,
    ``key`` and ``verified``; ``is_valid`` checks the ``key`` value, ``type``
    defaults to ``types[0]``, and items whose ``dedupe_key`` was already seen
    are dropped.
    """
    allowed_keys = frozenset({"type", key, "verified"})

    def check(path: str, value: Any) -> Any:
        items = _list(path, value, 10)
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, item in enumerate(items):
            where = f"{path}[{i}]"
            if isinstance(item, str):
                item = {key: item}
            elif isinstance(item, model):
                item = item.to_api()
            elif not isinstance(item, Mapping):
                raise _bad(where, item, f"must be an object with {key!r}")
            else:
                _check_item_keys(where, item, allowed_keys)
            text = item.get(key)
            if not is_valid(text):
                raise _bad(f"{where}.{key}", text, invalid)
            kind = item.get("type") or types[0]
            # A tuple, not a set: an unhashable ``type`` must fail as a bad value.
            if kind not in types:
                raise _bad(f"{where}.type", kind, f"must be one of {', '.join(types)}")
            seen_as = dedupe_key(text)
            if seen_as in seen:
                continue
            seen.add(seen_as)
            entry: dict[str, Any] = {"type": kind, key: text}
            verified = item.get("verified")
            if verified is not None:
                if not isinstance(verified, bool):
                    raise _bad(f"{where}.verified", verified, bad_verified)
                entry["verified"] = verified
            out.append(entry)
        return out

    _CONTACT_SPECS[check] = (key, is_valid, types)
    return check


#: The contact checkers (``emails``, ``phones``, ...) and what field_check compiles them from.
_CONTACT_SPECS: dict[_Checker, tuple[str, Callable[[Any], bool], tuple[str, ...]]] = {}


# Unicode categories that never belong in an address: controls, format
# characters (zero-width ones) and unpaired surrogates.
_NOT_IN_EMAIL: Final = frozenset({"Cc", "Cf", "Cs"})


def is_email(value: Any) -> TypeGuard[str]:
    """Whether ``value`` is an email address, by Kustomer's ``email-relaxed`` format.

    Relaxed but real: exactly one ``@``; a non-empty local part; a domain
    holding a dot that is neither its first nor its last character; no
    whitespace and no control, format or surrogate character anywhere.
    Everything else (quoting, comments, internationalised parts) is left to
    Kustomer. ``"user@example.com"`` and ``"o'neil+tag@sub.example.co"`` pass;
    ``"@"``, ``"user@"``, ``"@example.com"``, ``"a@@b.com"``, ``"a b@c.com"``,
    ``"a@localhost"`` and ``"a@example.com."`` do not.

    Every email the SDK validates goes through this one function: the
    ``email`` mapping shortcut, ``emails[]``, ``sharedEmails[]`` and company
    ``emails``.
    """
    if not isinstance(value, str):
        return False
    local, at, domain = value.partition("@")
    if not at or not local or "@" in domain:
        return False
    if "." not in domain or domain[0] == "." or domain[-1] == ".":
        return False
    if value.isascii():  # printable ASCII is every character but controls, DEL, tab, ...
        return value.isprintable() and " " not in value
    return not any(c.isspace() or unicodedata.category(c) in _NOT_IN_EMAIL for c in value)


def _is_phone(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _as_written(text: str) -> str:
    return text


# Emails are unique case-insensitively; phones exactly as written.
_emails = _contacts(
    "email", Email, is_email, "must be an email address", str.lower,
    ("home", "work", "other"), "must be true or false",
)

_PHONE_TYPES = ("mobile", "home", "work", "fax", "other")


def _phones(types: tuple[str, ...]) -> _Checker:
    return _contacts(
        "phone", Phone, _is_phone, "must be a phone number string", _as_written,
        types, "must be true, false or null",
    )


# From the schema: a tag is 1-64 of letters, digits, Latin-1 letters, _/<>-. and
# spaces, and does not start with a space.
_TAG = re.compile(r"[0-9a-zA-Z\u00c0-\u00ff_/<>\-.][0-9a-zA-Z\u00c0-\u00ff _/<>\-.]{0,63}")


def _tags(path: str, value: Any) -> Any:
    items = _list(path, value, 20)
    out: list[str] = []
    for i, tag in enumerate(items):
        if not isinstance(tag, str) or _TAG.fullmatch(tag) is None:
            raise _bad(
                f"{path}[{i}]",
                tag,
                "a tag is 1-64 letters, digits, spaces or _/<>-. (not starting with a space)",
            )
        if tag not in out:
            out.append(tag)
    return out


def _domains(path: str, value: Any) -> Any:
    items = _list(path, value, 10)
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        domain = item.get("domain") if isinstance(item, Mapping) else item
        if isinstance(item, Mapping):
            _check_item_keys(f"{path}[{i}]", item, frozenset({"domain"}))
        if not isinstance(domain, str) or "." not in domain or any(c.isspace() for c in domain):
            raise _bad(f"{path}[{i}].domain", domain, "must be a domain name")
        low = domain.lower()
        if low not in seen:
            seen.add(low)
            out.append({"domain": domain})
    return out


_NULLABLE_DT = _datetime()
_REQUIRED_DT = _datetime(nullable=False)
_OBJECTS = _objects(10)

#: Writable customer fields (``POST``/``PUT /v1/customers``) and their checkers.
#: ``custom`` is checked by the validator itself (it needs ``parse_strings``).
CUSTOMER_FIELDS: Mapping[str, _Checker | None] = {
    "name": _string(0, 256),
    "company": _string(1, None),
    "externalId": _string(1, 256),
    "username": _string(0, 256),
    "signedUpAt": _NULLABLE_DT,
    "lastActivityAt": _NULLABLE_DT,
    "lastCustomerActivityAt": _NULLABLE_DT,
    "lastSeenAt": _NULLABLE_DT,
    "avatarUrl": _string(0, None),
    "externalIds": _OBJECTS,
    "sharedExternalIds": _OBJECTS,
    "emails": _emails,
    "sharedEmails": _emails,
    "phones": _phones(_PHONE_TYPES),
    "sharedPhones": _phones(_PHONE_TYPES),
    "whatsapps": _phones(("mobile",)),
    "facebookIds": _OBJECTS,
    "instagramIds": _OBJECTS,
    "socials": _OBJECTS,
    "sharedSocials": _OBJECTS,
    "urls": _OBJECTS,
    "locations": _OBJECTS,
    "locale": _string(0, 16),
    "timeZone": _string(0, 64),
    "tags": _tags,
    "sentiment": _object,
    "custom": None,
    "birthdayAt": _NULLABLE_DT,
    "gender": _enum(("m", "f")),
    "createdAt": _REQUIRED_DT,
    "importedAt": _REQUIRED_DT,
    "rev": _number,
    "defaultLang": _string(0, 100),
}

#: Writable company fields: ``POST /v1/companies`` plus ``deleted`` from ``PUT``.
COMPANY_FIELDS: Mapping[str, _Checker | None] = {
    "name": _string(COMPANY_NAME_MIN, COMPANY_NAME_MAX, nullable=False),
    "externalId": _string(1, 256),
    "avatarUrl": _string(0, None),
    "emails": _emails,
    "phones": _phones(_PHONE_TYPES),
    "whatsapps": _phones(("mobile",)),
    "socials": _OBJECTS,
    "urls": _OBJECTS,
    "domains": _domains,
    "locations": _OBJECTS,
    "employeeCount": _number,
    "tags": _tags,
    "createdAt": _REQUIRED_DT,
    "importedAt": _REQUIRED_DT,
    "rev": _number,
    "custom": None,
    "defaultLang": _string(0, 100),
    "deleted": _nullable_bool,
}

#: Fields whose values are date-times (compared as instants by the merge).
DATETIME_FIELDS = frozenset(
    {"signedUpAt", "lastActivityAt", "lastCustomerActivityAt", "lastSeenAt", "birthdayAt",
     "createdAt", "importedAt"}
)

_FIELDS: Mapping[str, Mapping[str, _Checker | None]] = {
    "customer": CUSTOMER_FIELDS,
    "company": COMPANY_FIELDS,
}


def writable_fields(object_type: ObjectType) -> frozenset[str]:
    """The top-level field names a write body may hold for ``object_type``."""
    return frozenset(_FIELDS[object_type])


def _custom(value: Any, parse_strings: bool) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad("custom", value, "must be an object of custom attributes")
    if len(value) > CUSTOM_MAX_KEYS:
        raise _bad("custom", None, f"holds at most {CUSTOM_MAX_KEYS} keys (got {len(value)})")
    return {
        name: coerce_custom(name, v, parse_strings=parse_strings) for name, v in value.items()
    }


def _check_field(name: str, checker: _Checker | None, value: Any, parse_strings: bool) -> Any:
    """One top-level field as :func:`validate_payload` checks it (``None``: ``custom``)."""
    try:
        checked: Any = _custom(value, parse_strings) if checker is None else checker(name, value)
        kind = type(checked)
        # strict JSON (see strict_json); plain strings, the most common value, inline
        return (checked if (kind is str and checked.isascii()) or checked is None
                else _plain(checked, name, ()))
    except InvalidRecordError:
        raise
    except Exception as exc:  # a value whose own methods fail (__eq__, __len__, ...)
        raise _bad(name, None, f"could not be checked ({type(exc).__name__}: {exc})") from exc


def field_check(object_type: ObjectType, name: str) -> Callable[[Any], Any]:
    """The check :func:`validate_payload` applies to top-level field ``name``, as one function.

    ``check(value)`` returns the normalised, strict JSON value or raises what
    :func:`validate_payload` would raise for a body holding only this field.
    A mapping compiles it once per destination; string fields take a plain
    ``str`` inline, without the generic checker.

    Raises:
        KeyError: ``name`` is not a writable field of ``object_type`` (or is ``custom``).
    """
    checker = _FIELDS[object_type][name]
    if checker is None:
        raise KeyError(name)

    def generic(value: Any) -> Any:
        return _check_field(name, checker, value, False)

    contact = _CONTACT_SPECS.get(checker)
    if contact is not None:
        return _contact_check(contact, generic)
    spec = _STRING_SPECS.get(checker)
    if spec is None:
        return generic
    low, high = spec
    high_n = -1 if high is None else high

    def check(value: Any) -> Any:
        if type(value) is str:
            n = len(value)
            if low <= n and (high_n < 0 or n <= high_n) and value.isascii():
                return value
        return generic(value)

    return check


def _contact_check(
    spec: tuple[str, Callable[[Any], bool], tuple[str, ...]], generic: Callable[[Any], Any],
) -> Callable[[Any], Any]:
    """A contact list's check, with the usual value inline: one ``{type, <key>}`` item.

    Its answer is the generic check's for such an item (ASCII text is strict
    JSON as it is); every other value goes to the generic check.
    """
    key, is_valid, types = spec
    default = types[0]

    def check(value: Any) -> Any:
        if type(value) is list and len(value) == 1:
            item = value[0]
            if type(item) is dict and key in item and (
                    len(item) == 1 or (len(item) == 2 and "type" in item)):
                text = item[key]
                kind = item.get("type") or default
                if (type(text) is str and text.isascii() and is_valid(text)
                        and type(kind) is str and kind in types):
                    return [{"type": kind, key: text}]
        return generic(value)

    return check


def custom_check(name: str, *, parse_strings: bool = False) -> Callable[[Any], Any]:
    """The check of custom attribute ``name``'s value inside :func:`validate_payload`, compiled.

    ``check(value)`` returns what ``validate_payload`` writes at
    ``custom.<name>`` (coerced by :func:`coerce_custom`, strict JSON) or raises
    what it would raise for that value alone. The usual values of each type
    (text for ``Str``/``Txt``, numbers and, with ``parse_strings``, numeric
    text for ``Num``, ...) are taken inline.

    Raises:
        UnknownFieldError: ``name`` has no valid type suffix.
    """
    kind = custom_type(name)
    path = f"custom.{name}"

    def generic(value: Any) -> Any:
        try:
            checked = coerce_custom(name, value, parse_strings=parse_strings)
            k = type(checked)
            return (checked if (k is str and checked.isascii()) or checked is None
                    else _plain(checked, path, ()))
        except InvalidRecordError:
            raise
        except Exception as exc:
            raise _bad("custom", None, f"could not be checked ({type(exc).__name__}: {exc})") from exc

    if kind is CustomType.STR or kind is CustomType.TXT:
        def text(value: Any) -> Any:
            if type(value) is str and len(value) <= CUSTOM_STR_MAX and value.isascii():
                return value
            return generic(value)
        return text
    if kind is CustomType.NUM:
        def number(value: Any) -> Any:
            n, k = value, type(value)
            if k is str and parse_strings:
                text = value.strip()
                try:
                    # int() refuses any text with a point: skip its exception, the slow part
                    n, k = (float(text), float) if "." in text else (int(text), int)
                except ValueError:
                    try:
                        n, k = float(text), float
                    except ValueError:
                        return generic(value)
            if k is int:
                if -_EXACT_INT <= n <= _EXACT_INT:
                    return n
            elif k is float and n - n == 0.0:
                return n
            # anything else (and every error) as coerce_custom words it, from the value given
            return generic(value)
        return number
    if kind is CustomType.BOOL:
        def boolean(value: Any) -> Any:
            if value is True or value is False:
                return value
            if parse_strings and type(value) is str:
                text = value.strip().lower()
                if text in _TRUE:
                    return True
                if text in _FALSE:
                    return False
            return generic(value)
        return boolean
    if kind is CustomType.AT:
        def instant(value: Any) -> Any:
            k = type(value)
            if k is date:
                return format_utc(value)  # never fails for a date: no utc_text guard needed
            if k is datetime or k is str:
                text = utc_text(value)
                if text is not None:
                    return text
            return generic(value)
        return instant
    return generic


def validate_payload(
    object_type: ObjectType, payload: Mapping[str, Any], *, parse_strings: bool = False
) -> dict[str, Any]:
    """Check and normalise a write body for ``object_type``; returns a new dict.

    The result is plain JSON data (see :func:`strict_json`): nothing but an
    :class:`InvalidRecordError` is raised for a value, whatever it is.

    Raises:
        UnknownFieldError: a top-level (or item) field Kustomer does not take,
            with the closest known name.
        CustomFieldError: a custom value that does not fit its type.
        InvalidRecordError: any other rule, a value that is not strict JSON;
            ``field`` names the path (``"emails[0].email"``,
            ``"locations[0].latitude"``).
    """
    if not isinstance(payload, Mapping):
        raise InvalidRecordError(f"a {object_type} body must be a mapping", value=payload)
    fields = _FIELDS[object_type]
    out: dict[str, Any] = {}
    for name, value in payload.items():
        if not isinstance(name, str):
            raise UnknownFieldError(f"a {object_type} field name must be a string",
                                    field=label(name), value=error_value(name))
        try:
            checker = fields[name]
        except KeyError:
            guess = closest(name, fields)
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise UnknownFieldError(
                f"unknown {object_type} field {name!r}{hint}", field=str(name)
            ) from None
        out[name] = _check_field(name, checker, value, parse_strings)
    return out


def validate_customer_payload(
    payload: Mapping[str, Any], *, parse_strings: bool = False
) -> dict[str, Any]:
    """Check and normalise a customer write body (see :func:`validate_payload`)."""
    return validate_payload("customer", payload, parse_strings=parse_strings)


def validate_company_payload(
    payload: Mapping[str, Any], *, for_create: bool, parse_strings: bool = False
) -> dict[str, Any]:
    """Check and normalise a company write body (see :func:`validate_payload`).

    With ``for_create=True`` a ``name`` (3 to 255 characters) is required, as
    Kustomer requires it to create a company.
    """
    out = validate_payload("company", payload, parse_strings=parse_strings)
    if for_create and out.get("name") is None:
        raise InvalidRecordError(
            f"a company needs a name ({COMPANY_NAME_MIN} to {COMPANY_NAME_MAX} characters) "
            "to be created",
            field="name",
        )
    return out
