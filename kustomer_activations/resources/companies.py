"""``client.companies``: company lookups, writes and upserts."""

from __future__ import annotations

from ..models import Company
from ._base import AsyncResource, SyncResource
from ._kinds import COMPANY

__all__ = ["AsyncCompanies", "Companies"]


class Companies(SyncResource[Company]):
    """Companies, blocking. Reached as ``client.companies``."""

    _kind = COMPANY


class AsyncCompanies(AsyncResource[Company]):
    """Companies, async. Reached as ``client.companies``."""

    _kind = COMPANY
