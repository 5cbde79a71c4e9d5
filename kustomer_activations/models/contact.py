"""Contact points shared by Customers and Companies: :class:`Email` and :class:`Phone`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Email", "Phone"]


@attrs.frozen(slots=True)
class Email:
    """One entry of ``emails``: the address, its type and whether it is verified.

    ``type`` is kept as Kustomer sent it (``home``, ``work``, ``other``, or a
    value added later); ``verified`` is ``None`` when Kustomer did not say.
    """

    email: str
    type: str = "home"
    verified: bool | None = None

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> Email:
        """Decode one item of Kustomer's ``emails`` list."""
        verified = item.get("verified")
        email = item.get("email") or ""
        kind = item.get("type") or "home"
        return cls(
            email if type(email) is str else str(email),
            kind if type(kind) is str else str(kind),
            verified if verified is True or verified is False else None,
        )

    def to_api(self) -> dict[str, Any]:
        """The item as Kustomer takes it in a write body."""
        out: dict[str, Any] = {"type": self.type, "email": self.email}
        if self.verified is not None:
            out["verified"] = self.verified
        return out


@attrs.frozen(slots=True)
class Phone:
    """One entry of ``phones``: the number as written and its type."""

    phone: str
    type: str = "mobile"

    @classmethod
    def from_api(cls, item: Mapping[str, Any]) -> Phone:
        """Decode one item of Kustomer's ``phones`` list."""
        phone = item.get("phone") or ""
        kind = item.get("type") or "mobile"
        return cls(phone if type(phone) is str else str(phone),
                   kind if type(kind) is str else str(kind))

    def to_api(self) -> dict[str, Any]:
        """The item as Kustomer takes it in a write body."""
        return {"type": self.type, "phone": self.phone}
