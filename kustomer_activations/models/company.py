"""The :class:`Company` record, decoded from Kustomer's JSON:API resource."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._decode import decode_record, int_or_none, strings_of
from .contact import Email, Phone

__all__ = ["Company"]


@attrs.frozen(kw_only=True)
class Company:
    """A Kustomer company as read from the API.

    :attr:`domains` flattens Kustomer's ``[{"domain": ...}]``. :attr:`attributes`
    keeps every attribute Kustomer sent, known or not.
    """

    id: str
    name: str | None = None
    external_id: str | None = None
    domains: tuple[str, ...] = ()
    emails: tuple[Email, ...] = ()
    phones: tuple[Phone, ...] = ()
    tags: tuple[str, ...] = ()
    custom: Mapping[str, Any] = attrs.field(factory=dict)
    employee_count: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    rev: int | None = None
    attributes: Mapping[str, Any] = attrs.field(factory=dict)
    relationships: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_api(cls, resource: Mapping[str, Any]) -> Company:
        """Decode a resource object; a ``{"data": {...}}`` envelope is unwrapped.

        Missing, null and unknown fields are tolerated; unknown ones stay in
        :attr:`attributes`.
        """
        a, common = decode_record(resource)
        return cls(
            **common,
            domains=strings_of(a.get("domains"), "domain"),
            employee_count=int_or_none(a.get("employeeCount")),
        )
