"""The sync key: which field identifies "the same" object in Kustomer.

Key values are compared as strings: :meth:`SyncKey.normalise` turns ``42``,
``42.0`` and ``"42"`` into ``"42"``, so a custom ``Num`` key read back from
Kustomer matches the row that wrote it. Emails compare case-insensitively
(lower-cased); nothing else is changed (no trimming: ``" a"`` and ``"a"`` are
different keys, as they are to Kustomer).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

import attrs

from ..errors import MissingKeyError
from .company import Company
from .custom import custom_type
from .customer import Customer

__all__ = ["SyncKey", "SyncKeyKind"]

SyncKeyKind = Literal["external_id", "email", "custom"]


def _key_string(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return None
        return str(int(value)) if value == value.to_integral_value() else str(value.normalize())
    return str(value)


@attrs.frozen
class SyncKey:
    """The field an upsert matches on: ``externalId``, the default email, or a custom attribute.

    Build one with :meth:`external_id`, :meth:`email`, :meth:`custom` or :meth:`parse`.

    Attributes:
        kind: ``"external_id"``, ``"email"`` or ``"custom"``.
        field: the custom attribute name, for ``custom`` keys; else ``None``.
    """

    kind: SyncKeyKind
    field: str | None = None

    @classmethod
    def external_id(cls) -> SyncKey:
        """Match on ``externalId`` (unique per object type in Kustomer)."""
        return cls("external_id")

    @classmethod
    def email(cls) -> SyncKey:
        """Match customers on their default (first) email; customers only."""
        return cls("email")

    @classmethod
    def custom(cls, name: str) -> SyncKey:
        """Match on custom attribute ``name`` (not unique in Kustomer: 2+ hits can happen).

        Raises:
            UnknownFieldError: ``name`` has no valid type suffix.
        """
        custom_type(name)
        return cls("custom", name)

    @classmethod
    def parse(cls, value: str | SyncKey) -> SyncKey:
        """Read ``"externalId"``, ``"external_id"``, ``"email"`` or ``"custom.<name>"``.

        Raises:
            ValueError: for anything else (an unknown suffix raises
                :class:`UnknownFieldError`, a ``ValueError`` too).
        """
        if isinstance(value, SyncKey):
            return value
        if value in ("externalId", "external_id"):
            return cls.external_id()
        if value == "email":
            return cls.email()
        if isinstance(value, str) and value.startswith("custom.") and len(value) > 7:
            return cls.custom(value[7:])
        raise ValueError(
            f"unknown sync key {value!r}: use 'externalId', 'email' or 'custom.<name>'"
        )

    @property
    def label(self) -> str:
        """The key as written in messages and results (``externalId``, ``email``, ``custom.x``)."""
        if self.kind == "external_id":
            return "externalId"
        if self.kind == "email":
            return "email"
        return f"custom.{self.field}"

    def __str__(self) -> str:
        return self.label

    def check_supported(self, object_type: Literal["customer", "company"]) -> None:
        """Raise when this key cannot identify objects of ``object_type``.

        Raises:
            ValueError: for an email key on companies (Kustomer has no lookup of
                companies by email).
        """
        if self.kind == "email" and object_type != "customer":
            raise ValueError(
                "an email sync key works for customers only: Kustomer cannot look up "
                "companies by email; sync companies on externalId or a custom attribute"
            )

    def search_attribute(self, object_type: Literal["customer", "company"]) -> str:
        """The search attribute for this key (``customer_externalId``, ``company_custom_x``...)."""
        self.check_supported(object_type)
        if self.kind == "external_id":
            return f"{object_type}_externalId"
        if self.kind == "email":
            return "customer_email"
        return f"{object_type}_custom_{self.field}"

    def normalise(self, value: Any) -> str:
        """The comparable string form of a key value (emails lower-cased).

        Raises:
            MissingKeyError: the value is missing, empty, NaN or infinite.
        """
        text = _key_string(value)
        if not text:
            raise MissingKeyError(
                f"the sync key {self.label} has no value", field=self.label, value=value
            )
        return text.lower() if self.kind == "email" else text

    def _raw_in(self, payload: Mapping[str, Any]) -> Any:
        if self.kind == "external_id":
            return payload.get("externalId")
        if self.kind == "email":
            emails = payload.get("emails")
            if not emails:
                return None
            first = emails[0]
            if isinstance(first, Mapping):
                return first.get("email")
            return getattr(first, "email", first)
        custom = payload.get("custom")
        return custom.get(self.field) if isinstance(custom, Mapping) else None

    def value_in(self, payload: Mapping[str, Any]) -> str | None:
        """The normalised key value of a Kustomer-shaped write body, or ``None`` when absent.

        ``externalId`` reads ``payload["externalId"]``, email the first entry of
        ``emails``, custom ``payload["custom"][name]``. An empty value counts as
        absent; use :meth:`require_in` to get a :class:`MissingKeyError` instead.
        """
        text = _key_string(self._raw_in(payload))
        if not text:
            return None
        return text.lower() if self.kind == "email" else text

    def require_in(self, payload: Mapping[str, Any]) -> str:
        """Like :meth:`value_in`, but a missing or empty value raises :class:`MissingKeyError`."""
        return self.normalise(self._raw_in(payload))

    def value_of(self, obj: Customer | Company) -> list[str]:
        """The normalised key values an existing object holds.

        Every email of a customer (any of them may be what Kustomer matched),
        the one ``externalId``, or the custom attribute's value.
        """
        if self.kind == "email":
            return [e.email.lower() for e in obj.emails if e.email]
        raw = obj.external_id if self.kind == "external_id" else obj.custom.get(self.field or "")
        text = _key_string(raw)
        return [text] if text else []
