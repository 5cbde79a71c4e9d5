"""``client.companies``: company lookups, writes and upserts."""

from __future__ import annotations

from ..models import Company
from ..upsert.kinds import COMPANY
from ._base import AsyncResource, SyncResource

__all__ = ["AsyncCompanies", "Companies"]


class Companies(SyncResource[Company]):
    """Companies, blocking. Reached as ``client.companies``."""

    _kind = COMPANY


class AsyncCompanies(AsyncResource[Company]):
    """Companies, async. Reached as ``client.companies``."""

    _kind = COMPANY
