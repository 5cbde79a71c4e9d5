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
        return cls(
            email=str(item.get("email") or ""),
            type=str(item.get("type") or "home"),
            verified=verified if isinstance(verified, bool) else None,
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
        return cls(phone=str(item.get("phone") or ""), type=str(item.get("type") or "mobile"))

    def to_api(self) -> dict[str, Any]:
        """The item as Kustomer takes it in a write body."""
        return {"type": self.type, "phone": self.phone}
