"""What differs between Customers and Companies, in one small descriptor each."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from .._core.request import path_segment
from ..models import Company, Customer

__all__ = ["COMPANY", "CUSTOMER", "ObjectKind", "ObjectType"]

ObjectType = Literal["customer", "company"]


@attrs.frozen
class ObjectKind:
    """Paths and model class for one standard object type."""

    name: ObjectType
    collection: str
    model: type[Customer] | type[Company]

    def item_path(self, object_id: str) -> str:
        """The path of one object by Kustomer id."""
        return f"{self.collection}/{path_segment(object_id)}"

    def from_api(self, resource: Mapping[str, Any]) -> Customer | Company:
        """Decode a JSON:API resource object into the model."""
        return self.model.from_api(resource)


CUSTOMER = ObjectKind("customer", "/v1/customers", Customer)
COMPANY = ObjectKind("company", "/v1/companies", Company)
