"""The :class:`Customer` record, decoded from Kustomer's JSON:API resource."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._decode import as_mapping, decode_record, str_or_none
from .contact import Email, Phone

__all__ = ["Customer", "company_id_of"]


def company_id_of(attributes: Mapping[str, Any], relationships: Mapping[str, Any]) -> str | None:
    """The linked company's id: ``relationships.company.data.id`` or attribute ``company``.

    Both shapes are read because the reference shows the relationship while
    write bodies use the flat attribute; the relationship wins when both exist.
    """
    data = as_mapping(as_mapping(relationships.get("company")).get("data"))
    rel_id = data.get("id")
    if isinstance(rel_id, str) and rel_id:
        return rel_id
    flat = attributes.get("company")
    if isinstance(flat, str) and flat:
        return flat
    return None


@attrs.frozen(kw_only=True)
class Customer:
    """A Kustomer customer as read from the API.

    The typed fields are the ones this SDK reasons about; :attr:`attributes`
    keeps every attribute Kustomer sent (including ones this SDK does not
    know), and :attr:`relationships` the raw relationships.
    """

    id: str
    name: str | None = None
    external_id: str | None = None
    username: str | None = None
    emails: tuple[Email, ...] = ()
    phones: tuple[Phone, ...] = ()
    company_id: str | None = None
    tags: tuple[str, ...] = ()
    custom: Mapping[str, Any] = attrs.field(factory=dict)
    locale: str | None = None
    time_zone: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    rev: int | None = None
    attributes: Mapping[str, Any] = attrs.field(factory=dict)
    relationships: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_api(cls, resource: Mapping[str, Any]) -> Customer:
        """Decode a resource object ``{"type", "id", "attributes", "relationships", "links"}``.

        A ``{"data": {...}}`` envelope is unwrapped. Missing, null and unknown
        fields are tolerated; unknown ones stay in :attr:`attributes`.
        """
        a, common = decode_record(resource)
        return cls(
            **common,
            username=str_or_none(a.get("username")),
            company_id=company_id_of(a, common["relationships"]),
            locale=str_or_none(a.get("locale")),
            time_zone=str_or_none(a.get("timeZone")),
        )

    @property
    def default_email(self) -> str | None:
        """The default email (Kustomer's first ``emails`` entry), or ``None``."""
        return self.emails[0].email if self.emails else None
