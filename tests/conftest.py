"""Fixtures for every test: the client flavors (sync, asyncio, trio) and a fake clock."""

from __future__ import annotations

import pytest

from .helpers import FLAVORS, FakeClock


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs three times: sync client, async on asyncio, async on trio."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock: sleeping advances it instantly and is recorded."""
    return FakeClock()
