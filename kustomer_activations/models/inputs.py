"""Typed write inputs, :class:`CustomerInput` and :class:`CompanyInput`.

Every field defaults to :data:`UNSET`, which means "do not touch"; ``None``
means "set to null" (clear it). ``custom`` holds only the attributes to
write; a ``None`` value in it clears that attribute. :meth:`to_payload`
gives the Kustomer-shaped body (Kustomer field names), unvalidated: pass it
to :func:`validate_customer_payload` / :func:`validate_company_payload` (the
engine does). :meth:`to_payload` never raises: a value of the wrong shape
(``tags=5``, ``emails="a@x.io"``, ``custom=5``) is passed on as it is,
for validation to refuse with the field's name.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Final, Literal, TypeVar, Union

import attrs

from .contact import Email, Phone
from .validation import validate_company_payload, validate_customer_payload

__all__ = [
    "UNSET",
    "CompanyInput",
    "CustomerInput",
    "Unset",
    "validate_company_payload",
    "validate_customer_payload",
]


class Unset(enum.Enum):
    """The type of :data:`UNSET`."""

    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


#: "Leave this field alone" (as opposed to ``None``: "clear it").
UNSET: Final = Unset.UNSET

_T = TypeVar("_T")
Opt = Union[_T, None, Unset]  # noqa: UP007 (a generic alias needs Union on 3.10)

_DateLike = Union[datetime, date, str]  # noqa: UP007


def _payload(fields: Mapping[str, Any], custom: Any) -> dict[str, Any]:
    # UNSET means "leave alone", so it must not reach the body at all; an empty
    # ``custom`` is left out for the same reason.
    out = {key: value for key, value in fields.items() if value is not UNSET}
    if isinstance(custom, Mapping):
        if custom:
            out["custom"] = dict(custom)
    elif custom is not None:  # not a mapping: validation refuses it as "custom"
        out["custom"] = custom
    return out


def _is_list(value: Any) -> bool:
    # A string (or bytes, or a mapping) is one value, not a list of them: left
    # as it is for validation to refuse, rather than split into characters.
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray, Mapping))


def _listed(value: Any) -> Any:
    return list(value) if _is_list(value) else value


def _contacts(value: Any) -> Any:
    if not _is_list(value):
        return value
    return [v.to_api() if isinstance(v, (Email, Phone)) else v for v in value]


def _domains(value: Any) -> Any:
    if not _is_list(value):
        return value
    return [{"domain": d} for d in value]


@attrs.frozen(kw_only=True)
class CustomerInput:
    """The customer fields to write; :data:`UNSET` ones are left as they are.

    ``emails``/``phones`` take :class:`Email`/:class:`Phone` objects or bare
    strings; the first email is the default one.
    """

    name: Opt[str] = UNSET
    external_id: Opt[str] = UNSET
    username: Opt[str] = UNSET
    company: Opt[str] = UNSET
    emails: Opt[Sequence[Email | str]] = UNSET
    phones: Opt[Sequence[Phone | str]] = UNSET
    tags: Opt[Sequence[str]] = UNSET
    locale: Opt[str] = UNSET
    time_zone: Opt[str] = UNSET
    gender: Opt[Literal["m", "f"]] = UNSET
    birthday_at: Opt[_DateLike] = UNSET
    signed_up_at: Opt[_DateLike] = UNSET
    avatar_url: Opt[str] = UNSET
    default_lang: Opt[str] = UNSET
    custom: Mapping[str, Any] = attrs.field(factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """The write body in Kustomer field names (only the fields that are set)."""
        return _payload(
            {
                "name": self.name,
                "externalId": self.external_id,
                "username": self.username,
                "company": self.company,
                "emails": _contacts(self.emails),
                "phones": _contacts(self.phones),
                "tags": _listed(self.tags),
                "locale": self.locale,
                "timeZone": self.time_zone,
                "gender": self.gender,
                "birthdayAt": self.birthday_at,
                "signedUpAt": self.signed_up_at,
                "avatarUrl": self.avatar_url,
                "defaultLang": self.default_lang,
            },
            self.custom,
        )


@attrs.frozen(kw_only=True)
class CompanyInput:
    """The company fields to write; :data:`UNSET` ones are left as they are.

    ``domains`` are bare domain names (``"example.com"``).
    """

    name: Opt[str] = UNSET
    external_id: Opt[str] = UNSET
    domains: Opt[Sequence[str]] = UNSET
    emails: Opt[Sequence[Email | str]] = UNSET
    phones: Opt[Sequence[Phone | str]] = UNSET
    tags: Opt[Sequence[str]] = UNSET
    employee_count: Opt[int] = UNSET
    avatar_url: Opt[str] = UNSET
    default_lang: Opt[str] = UNSET
    custom: Mapping[str, Any] = attrs.field(factory=dict)

    def to_payload(self) -> dict[str, Any]:
        """The write body in Kustomer field names (only the fields that are set)."""
        return _payload(
            {
                "name": self.name,
                "externalId": self.external_id,
                "domains": _domains(self.domains),
                "emails": _contacts(self.emails),
                "phones": _contacts(self.phones),
                "tags": _listed(self.tags),
                "employeeCount": self.employee_count,
                "avatarUrl": self.avatar_url,
                "defaultLang": self.default_lang,
            },
            self.custom,
        )
