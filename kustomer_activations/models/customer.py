"""The :class:`Customer` record, decoded from Kustomer's JSON:API resource."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._decode import as_mapping, decode_record, str_or_none
from .contact import Email, Phone

__all__ = ["Customer", "company_id_of", "company_link_of"]


def company_link_of(
    attributes: Mapping[str, Any], relationships: Mapping[str, Any]
) -> tuple[str | None, bool]:
    """The linked company's id, and whether the answer showed the link at all.

    No public Kustomer response shows where a customer's company link lives
    (KUSTOMER_API.md, "Company link in responses"), so both places are read:
    ``relationships.company.data`` (``null`` data: no company) and an
    attribute ``company`` (``null``: no company); the relationship wins when
    both exist. When neither is present the link is *unknown*, not "none":
    an update that omits ``company`` unlinks the customer, so an unknown link
    must never be treated as an empty one.
    """
    if "company" in relationships:
        rel = relationships.get("company")
        if rel is None:
            return None, True
        if isinstance(rel, Mapping) and "data" in rel:
            data = rel.get("data")
            if data is None:
                return None, True
            rel_id = as_mapping(data).get("id")
            if isinstance(rel_id, str) and rel_id:
                return rel_id, True
    if "company" in attributes:
        flat = attributes.get("company")
        if flat is None or flat == "":
            return None, True
        if isinstance(flat, str):
            return flat, True
        flat_id = as_mapping(flat).get("id")
        if isinstance(flat_id, str) and flat_id:
            return flat_id, True
    return None, False


def company_id_of(attributes: Mapping[str, Any], relationships: Mapping[str, Any]) -> str | None:
    """The linked company's id (``None`` when unlinked or unknown); see :func:`company_link_of`."""
    return company_link_of(attributes, relationships)[0]


@attrs.frozen(kw_only=True)
class Customer:
    """A Kustomer customer as read from the API.

    :attr:`company_known` is ``False`` when Kustomer's answer did not show
    the company link at all (then :attr:`company_id` is ``None`` but the
    customer may still be linked). The typed fields are the ones this SDK reasons about; :attr:`attributes`
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
    company_known: bool = True
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
        company_id, company_known = company_link_of(a, common["relationships"])
        return cls(
            **common,
            username=str_or_none(a.get("username")),
            company_id=company_id,
            company_known=company_known,
            locale=str_or_none(a.get("locale")),
            time_zone=str_or_none(a.get("timeZone")),
        )

    @property
    def default_email(self) -> str | None:
        """The default email (Kustomer's first ``emails`` entry), or ``None``."""
        return self.emails[0].email if self.emails else None
