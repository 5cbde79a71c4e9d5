"""Local validation of write bodies, field by field, before anything is sent.

The rules come from the request schemas of ``POST``/``PUT /v1/customers`` and
``POST``/``PUT /v1/companies`` in Kustomer's OpenAPI description (unknown
top-level fields are refused there, so they are refused here too). A bad
record fails alone, here, instead of making Kustomer refuse a whole bulk
request. Each field has one precomputed checker that returns the normalised
value, so validating a row is one dict lookup and one call per field.

Normalisation: date-time fields become ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (datetime,
date and ISO strings accepted), email and phone items get their default
``type`` (``home`` / ``mobile``), :class:`Email`/:class:`Phone` objects and
bare strings become items, repeated emails (case-insensitive), phones and tags
are dropped (Kustomer wants unique items), company ``domains`` may be bare
strings, and custom values go through :func:`coerce_custom`.

Deliberate differences from the published schema, both stricter:

* company ``name`` is 3 to 255 characters (the API notes say 255; the schema
  says 256), and ``externalId`` is at least 1 character for companies too
  (an empty key can never be matched).
* arrays the SDK does not model (``socials``, ``urls``, ``locations``, ...)
  are checked for shape and size only; Kustomer checks their items.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Literal, TypeGuard

from ..errors import InvalidRecordError, UnknownFieldError
from ._time import format_utc_or_none
from .contact import Email, Phone
from .custom import coerce_custom
from .metadata import closest

__all__ = [
    "COMPANY_FIELDS",
    "COMPANY_NAME_MAX",
    "COMPANY_NAME_MIN",
    "CUSTOMER_FIELDS",
    "CUSTOM_MAX_KEYS",
    "DATETIME_FIELDS",
    "ObjectType",
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
    return InvalidRecordError(reason, field=path, value=value)


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

    return check


def _datetime(nullable: bool = True) -> _Checker:
    def check(path: str, value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise _bad(path, value, "may not be null")
        text = format_utc_or_none(value)
        if text is None:
            raise _bad(path, value, "must be an ISO-8601 date-time (or a datetime/date)")
        return text

    return check


def _enum(values: tuple[str, ...], nullable: bool = True) -> _Checker:
    allowed = frozenset(values)

    def check(path: str, value: Any) -> Any:
        if value is None and nullable:
            return None
        if value not in allowed:
            raise _bad(path, value, f"must be one of {', '.join(values)}")
        return value

    return check


def _number(path: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise _bad(path, value, "must be a number")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _bad(path, value, "must be a finite number")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise _bad(path, value, "must be a finite number")
    return value


def _nullable_bool(path: str, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    raise _bad(path, value, "must be true, false or null")


def _object(path: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise _bad(path, value, "must be an object")
    return dict(value)


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
                f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})",
                field=f"{path}.{key}",
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

    return check


def _is_email(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and "@" in value


def _is_phone(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


def _as_written(text: str) -> str:
    return text


# Emails are unique case-insensitively; phones exactly as written.
_emails = _contacts(
    "email", Email, _is_email, "must be an email address", str.lower,
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


def validate_payload(
    object_type: ObjectType, payload: Mapping[str, Any], *, parse_strings: bool = False
) -> dict[str, Any]:
    """Check and normalise a write body for ``object_type``; returns a new dict.

    Raises:
        UnknownFieldError: a top-level (or item) field Kustomer does not take,
            with the closest known name.
        CustomFieldError: a custom value that does not fit its type.
        InvalidRecordError: any other rule; ``field`` names the path
            (``"emails[0].email"``).
    """
    if not isinstance(payload, Mapping):
        raise InvalidRecordError(f"a {object_type} body must be a mapping", value=payload)
    fields = _FIELDS[object_type]
    out: dict[str, Any] = {}
    for name, value in payload.items():
        try:
            checker = fields[name]
        except (KeyError, TypeError):
            guess = closest(str(name), fields)
            hint = f"; did you mean {guess!r}?" if guess else ""
            raise UnknownFieldError(
                f"unknown {object_type} field {name!r}{hint}", field=str(name)
            ) from None
        out[name] = _custom(value, parse_strings) if checker is None else checker(name, value)
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
