"""Typed write inputs, :class:`CustomerInput` and :class:`CompanyInput`.

Every field defaults to :data:`UNSET`, which means "do not touch"; ``None``
means "set to null" (clear it). ``custom`` holds only the attributes to
write; a ``None`` value in it clears that attribute. :meth:`to_payload`
gives the Kustomer-shaped body (Kustomer field names), unvalidated: pass it
to :func:`validate_customer_payload` / :func:`validate_company_payload` (the
engine does).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
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


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not UNSET:
        out[key] = value


def _listed(value: Any) -> Any:
    return value if value is UNSET or value is None else list(value)


def _contacts(value: Any) -> Any:
    if value is UNSET or value is None:
        return value
    return [v.to_api() if isinstance(v, (Email, Phone)) else v for v in value]


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
        out: dict[str, Any] = {}
        _put(out, "name", self.name)
        _put(out, "externalId", self.external_id)
        _put(out, "username", self.username)
        _put(out, "company", self.company)
        _put(out, "emails", _contacts(self.emails))
        _put(out, "phones", _contacts(self.phones))
        _put(out, "tags", _listed(self.tags))
        _put(out, "locale", self.locale)
        _put(out, "timeZone", self.time_zone)
        _put(out, "gender", self.gender)
        _put(out, "birthdayAt", self.birthday_at)
        _put(out, "signedUpAt", self.signed_up_at)
        _put(out, "avatarUrl", self.avatar_url)
        _put(out, "defaultLang", self.default_lang)
        if self.custom:
            out["custom"] = dict(self.custom)
        return out


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
        out: dict[str, Any] = {}
        _put(out, "name", self.name)
        _put(out, "externalId", self.external_id)
        if self.domains is not UNSET:
            out["domains"] = (
                None if self.domains is None else [{"domain": d} for d in self.domains]
            )
        _put(out, "emails", _contacts(self.emails))
        _put(out, "phones", _contacts(self.phones))
        _put(out, "tags", _listed(self.tags))
        _put(out, "employeeCount", self.employee_count)
        _put(out, "avatarUrl", self.avatar_url)
        _put(out, "defaultLang", self.default_lang)
        if self.custom:
            out["custom"] = dict(self.custom)
        return out
