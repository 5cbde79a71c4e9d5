"""Validation rules for request bodies: field schemas and custom-attribute types.

The schemas are written here by hand from Kustomer's published request
schemas (the OpenAPI "Core Resources" description) rather than loaded from
the spec file, so the emulator has no runtime dependency on test data or
``jsonschema``, and the contract test (which does read the spec) checks the
SDK independently of this module.

A schema is a small dict in a JSON-Schema-like dialect understood by
:func:`check`: ``type`` (one name), ``nullable``, ``minLength``/``maxLength``,
``enum``, ``pattern``, ``format`` (``date-time``, ``uri``, ``email-relaxed``),
``minimum``/``maximum``, ``items``/``maxItems``/``uniqueItems`` and
``properties``/``required``/``closed`` (``closed`` = no other keys).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "CUSTOM_SUFFIXES",
    "Problem",
    "check",
    "check_custom",
    "custom_suffix",
    "is_relaxed_email",
    "parse_datetime",
    "validate_body",
]

Problem = tuple[str, str]
"""A validation failure: (JSON pointer, message)."""

Schema = dict[str, Any]


def _s(max_length: int | None = None, *, min_length: int | None = None,
       nullable: bool = False, **extra: Any) -> Schema:
    schema: Schema = {"type": "string", "nullable": nullable, **extra}
    if max_length is not None:
        schema["maxLength"] = max_length
    if min_length is not None:
        schema["minLength"] = min_length
    return schema


def _obj(props: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    return {"type": "object", "properties": props, "required": required, "closed": True}


def _arr(item: Schema, max_items: int = 10) -> Schema:
    return {"type": "array", "items": item, "maxItems": max_items, "uniqueItems": True}


_BOOL: Schema = {"type": "boolean"}
_NUM: Schema = {"type": "number"}
_DT: Schema = _s(format="date-time", nullable=True)
_EMAIL_TYPES = ("home", "work", "other")
_PHONE_TYPES = ("mobile", "home", "work", "fax", "other")

_EMAIL = _obj({"type": _s(enum=_EMAIL_TYPES), "email": _s(format="email-relaxed"),
               "verified": _BOOL}, ("email",))
_PHONE = _obj({"type": _s(enum=_PHONE_TYPES), "phone": _s(min_length=1),
               "verified": _BOOL}, ("phone",))
_WHATSAPP = _obj({"type": _s(enum=("mobile",)), "phone": _s(min_length=1),
                  "verified": _BOOL}, ("phone",))
_EXTERNAL_ID = _obj({"externalId": _s(255, min_length=1), "verified": _BOOL}, ("externalId",))
_SOCIAL = _obj({"type": _s(enum=("twitter", "facebook", "instagram", "linkedin", "pinterest")),
                "userid": _s(256), "username": _s(256, min_length=1),
                "url": _s(format="uri"), "verified": _BOOL}, ("type", "username"))
_URL = _obj({"type": _s(enum=("website", "blog", "other")), "url": _s(format="uri")}, ("url",))
_LOCATION = _obj({
    "type": _s(enum=_EMAIL_TYPES, nullable=True), "name": _s(nullable=True),
    "address": _s(256, nullable=True), "address2": _s(256, nullable=True),
    "address3": _s(256, nullable=True),
    "latitude": {"type": "number", "nullable": True},
    "longitude": {"type": "number", "nullable": True},
    "countryCode": _s(2, min_length=2, nullable=True), "countryName": _s(64, nullable=True),
    "regionCode": _s(2, nullable=True), "regionName": _s(128, nullable=True),
    "cityName": _s(128, nullable=True), "zipCode": _s(30, nullable=True),
    "areaCode": _s(30, nullable=True),
})
_TAG = _s(64, min_length=1, pattern=r"^[0-9a-zA-ZÀ-ÿ_/<>\-.][0-9a-zA-ZÀ-ÿ _/<>\-.]{0,63}$")
# ``custom`` is checked by :func:`check_custom` (the published schema, with
# ``additionalProperties: false``, would forbid every custom attribute).
_CUSTOM: Schema = {"type": "object", "custom": True}

CUSTOMER_FIELDS: dict[str, Schema] = {
    "name": _s(256, nullable=True),
    "company": _s(nullable=True),
    "externalId": _s(256, min_length=1, nullable=True),
    "username": _s(256, nullable=True),
    "signedUpAt": _DT, "lastActivityAt": _DT, "lastCustomerActivityAt": _DT, "lastSeenAt": _DT,
    "avatarUrl": _s(format="uri", nullable=True),
    "externalIds": _arr(_EXTERNAL_ID), "sharedExternalIds": _arr(_EXTERNAL_ID),
    "emails": _arr(_EMAIL), "sharedEmails": _arr(_EMAIL),
    "phones": _arr(_PHONE), "sharedPhones": _arr(_PHONE),
    "whatsapps": _arr(_WHATSAPP),
    "facebookIds": _arr(_obj({"pageId": _s(255), "userId": _s(255), "name": _s(255)},
                             ("pageId", "userId"))),
    "instagramIds": _arr(_obj({"pageId": _s(255), "threadId": _s(255), "username": _s(255),
                               "instagramId": _s(255)}, ("pageId", "threadId", "username"))),
    "socials": _arr(_SOCIAL), "sharedSocials": _arr(_SOCIAL),
    "urls": _arr(_URL), "locations": _arr(_LOCATION),
    "locale": _s(16, nullable=True), "timeZone": _s(64, nullable=True),
    "tags": _arr(_TAG, 20),
    "sentiment": _obj({"polarity": {"type": "number", "enum": (-1, 0, 1)},
                       "confidence": {"type": "number", "minimum": -1, "maximum": 1}},
                      ("polarity", "confidence")),
    "custom": _CUSTOM,
    "birthdayAt": _DT,
    "gender": _s(enum=("m", "f"), nullable=True),
    "createdAt": _s(format="date-time"), "importedAt": _s(format="date-time"),
    "rev": _NUM,
    "defaultLang": _s(100, nullable=True),
}

COMPANY_FIELDS: dict[str, Schema] = {
    "name": _s(256, min_length=3),
    "externalId": _s(256, nullable=True),
    "avatarUrl": _s(format="uri", nullable=True),
    "emails": _arr(_EMAIL), "phones": _arr(_PHONE), "whatsapps": _arr(_WHATSAPP),
    "socials": _arr(_SOCIAL), "urls": _arr(_URL),
    "domains": _arr(_obj({"domain": _s()}, ("domain",))),
    "locations": _arr(_LOCATION),
    "employeeCount": _NUM,
    "tags": _arr(_TAG, 20),
    "createdAt": _s(format="date-time"), "importedAt": _s(format="date-time"),
    "rev": _NUM,
    "custom": _CUSTOM,
    "defaultLang": _s(100, nullable=True),
    "deleted": {"type": "boolean", "nullable": True},
}

# Company names: the request schema says 3-256, Kustomer's guide says 3-255;
# the stricter guide wins so that what passes here passes there.
COMPANY_NAME_MAX = 255

CUSTOM_SUFFIXES = ("Str", "Txt", "Num", "At", "Bool", "Url", "Id")
_SUFFIX_RE = re.compile(r"^[a-z][A-Za-z0-9_]*?(Str|Txt|Num|At|Bool|Url|Id)$")
CUSTOM_MAX_KEYS = 100
CUSTOM_STR_MAX = 1024
"""Longest ``Str`` and ``Txt`` custom value (the reference limits both to 1024 characters)."""


def custom_suffix(name: str) -> str | None:
    """The type suffix of a custom attribute name, or ``None`` when it has none."""
    m = _SUFFIX_RE.match(name)
    return m.group(1) if m else None


def parse_datetime(value: str) -> float | None:
    """Epoch seconds of an ISO-8601 date-time string, or ``None`` if it is not one."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        # A date-time without an offset is read as UTC, as Kustomer stores UTC.
        text += "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
    return parsed.timestamp()


def _is_url(value: str) -> bool:
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc)


def is_relaxed_email(value: str) -> bool:
    """Kustomer's ``email-relaxed`` format: exactly one ``@``, a non-empty local
    part, a domain with a dot that is neither its first nor its last character,
    and no whitespace or control characters anywhere."""
    if any(ch.isspace() or ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in value):
        return False
    if value.count("@") != 1:
        return False
    local, _, domain = value.partition("@")
    return bool(local) and "." in domain and not domain.startswith(".") \
        and not domain.endswith(".")


def _type_ok(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "number":
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value))
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    raise AssertionError(kind)


def check(schema: Schema, value: Any, pointer: str, out: list[Problem],
          multi: AbstractSet[str] = frozenset()) -> None:
    """Append the problems of ``value`` against ``schema`` to ``out`` (``multi``:
    the custom ``Id`` attributes defined as multi-valued)."""
    if value is None:
        if not schema.get("nullable"):
            out.append((pointer, "must not be null"))
        return
    kind = schema["type"]
    if not _type_ok(kind, value):
        out.append((pointer, f"must be of type {kind}"))
        return
    if "enum" in schema and value not in schema["enum"]:
        out.append((pointer, f"must be one of {list(schema['enum'])}"))
    if kind == "string":
        if len(value) > schema.get("maxLength", len(value)):
            out.append((pointer, f"must be at most {schema['maxLength']} characters"))
        if len(value) < schema.get("minLength", 0):
            out.append((pointer, f"must be at least {schema['minLength']} characters"))
        if "pattern" in schema and not re.match(schema["pattern"], value):
            out.append((pointer, "does not match the allowed pattern"))
        fmt = schema.get("format")
        if fmt == "date-time" and parse_datetime(value) is None:
            out.append((pointer, "must be an ISO-8601 date-time"))
        elif fmt == "uri" and not _is_url(value):
            out.append((pointer, "must be a URL"))
        elif fmt == "email-relaxed" and not is_relaxed_email(value):
            out.append((pointer, "must be an email address"))
    elif kind == "number":
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            out.append((pointer, "is out of range"))
    elif kind == "array":
        if len(value) > schema["maxItems"]:
            out.append((pointer, f"must have at most {schema['maxItems']} items"))
        if len(value) > 1 and schema.get("uniqueItems"):
            seen = {json.dumps(v, sort_keys=True) for v in value}
            if len(seen) != len(value):
                out.append((pointer, "items must be unique"))
        for i, item in enumerate(value):
            check(schema["items"], item, f"{pointer}/{i}", out, multi)
    elif kind == "object":
        if schema.get("custom"):
            check_custom(value, pointer, out, multi)
            return
        validate_fields(schema["properties"], value, pointer, out, schema.get("required", ()),
                        multi)


def validate_fields(props: dict[str, Schema], body: dict[str, Any], pointer: str,
                    out: list[Problem], required: tuple[str, ...] = (),
                    multi: AbstractSet[str] = frozenset()) -> None:
    """Check an object against ``props``; unknown keys are problems."""
    for name in required:
        if name not in body:
            out.append((f"{pointer}/{name}", "is required"))
    for name, value in body.items():
        schema = props.get(name)
        if schema is None:
            out.append((f"{pointer}/{name}", "is not an allowed field"))
        else:
            check(schema, value, f"{pointer}/{name}", out, multi)


def check_custom(custom: dict[str, Any], pointer: str, out: list[Problem],
                 multi: AbstractSet[str] = frozenset()) -> None:
    """Check ``custom``: at most 100 keys, each name with a type suffix and a value of
    that type; ``null`` (clear the value) is always allowed. An ``Id`` attribute
    named in ``multi`` (defined with ``"multi": true``) takes a list of id strings."""
    if len(custom) > CUSTOM_MAX_KEYS:
        out.append((pointer, f"must have at most {CUSTOM_MAX_KEYS} keys"))
    for name, value in custom.items():
        where = f"{pointer}/{name}"
        suffix = custom_suffix(name)
        if suffix is None:
            out.append((where, f"unknown custom attribute type suffix (one of {CUSTOM_SUFFIXES})"))
            continue
        if value is None:
            continue
        if suffix == "Id" and name in multi:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                out.append((where, "a multi-valued Id attribute must be a list of id strings"))
            continue
        if suffix in ("Str", "Txt", "Id", "Url", "At") and not isinstance(value, str):
            out.append((where, f"a {suffix} attribute must be a string"))
        elif suffix in ("Str", "Txt") and len(value) > CUSTOM_STR_MAX:
            out.append((where, f"a {suffix} attribute must be at most {CUSTOM_STR_MAX} "
                               "characters"))
        elif suffix == "Num" and not _type_ok("number", value):
            out.append((where, "a Num attribute must be a number"))
        elif suffix == "Bool" and not isinstance(value, bool):
            out.append((where, "a Bool attribute must be true or false"))
        elif suffix == "At" and parse_datetime(value) is None:
            out.append((where, "an At attribute must be an ISO-8601 date-time"))
        elif suffix == "Url" and not _is_url(value):
            out.append((where, "a Url attribute must be a URL"))


def validate_body(kind: str, body: Any, *, pointer: str = "",
                  require_id: bool = False, partial: bool = False,
                  multi: AbstractSet[str] = frozenset()) -> list[Problem]:
    """Problems of one customer/company write body (empty list: valid).

    ``require_id`` is for bulk-update items (they carry ``id``); ``partial``
    relaxes ``required`` (company updates need no ``name``); ``multi`` names
    the custom ``Id`` attributes defined as multi-valued.
    """
    out: list[Problem] = []
    if not isinstance(body, dict):
        return [(pointer or "/", "must be a JSON object")]
    props = CUSTOMER_FIELDS if kind == "customer" else COMPANY_FIELDS
    fields = dict(body)
    if require_id:
        ident = fields.pop("id", None)
        if not isinstance(ident, str) or not ident:
            out.append((f"{pointer}/id", "is required"))
    required: tuple[str, ...] = ("name",) if kind == "company" and not partial else ()
    validate_fields(props, fields, pointer, out, required, multi)
    if kind == "company" and isinstance(fields.get("name"), str) \
            and len(fields["name"]) > COMPANY_NAME_MAX:
        out.append((f"{pointer}/name", f"must be at most {COMPANY_NAME_MAX} characters"))
    return out
