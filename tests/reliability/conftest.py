"""Fixtures for the reliability suite.

The ``flavor`` fixture (sync client, async on asyncio, async on trio) comes from
``tests/conftest.py``. The shared checks live in ``_invariants.py``, the harness
(emulator, clients, rows, runs) in ``_harness.py`` and the hostile-answer
transport in ``_hostile.py``.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_kustomer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's real ``KUSTOMER_*`` settings out of these tests."""
    monkeypatch.delenv("KUSTOMER_API_KEY", raising=False)
    monkeypatch.delenv("KUSTOMER_BASE_URL", raising=False)
