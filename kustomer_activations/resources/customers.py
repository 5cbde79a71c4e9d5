"""``client.customers``: customer lookups (external id, email), writes and upserts."""

from __future__ import annotations

import httpx

from ..models import Customer, SyncKey
from ..upsert.kinds import CUSTOMER
from ._base import AsyncResource, SyncResource, _one

__all__ = ["AsyncCustomers", "Customers"]


class Customers(SyncResource[Customer]):
    """Customers, blocking. Reached as ``client.customers``."""

    _kind = CUSTOMER

    def get_by_email(
        self, email: str, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None,
    ) -> Customer | None:
        """The customer holding this email (any of its emails, case-insensitive), or ``None``."""
        key = SyncKey.email()
        found = self.find(key, email, timeout=timeout, max_retries=max_retries)
        return _one(self._kind, key, email, found)  # type: ignore[no-any-return]


class AsyncCustomers(AsyncResource[Customer]):
    """Customers, async. Reached as ``client.customers``."""

    _kind = CUSTOMER

    async def get_by_email(
        self, email: str, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None,
    ) -> Customer | None:
        """The customer holding this email (any of its emails, case-insensitive), or ``None``."""
        key = SyncKey.email()
        found = await self.find(key, email, timeout=timeout, max_retries=max_retries)
        return _one(self._kind, key, email, found)  # type: ignore[no-any-return]
