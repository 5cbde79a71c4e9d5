"""Fixtures for the emulator's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kustomer_activations.testing import KustomerEmulator, VirtualClock

AUTH = {"Authorization": "Bearer test-key"}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def emu() -> KustomerEmulator:
    return KustomerEmulator(clock=VirtualClock(), bulk_delay=1.0, bulk_item_delay=0.01)


@pytest.fixture
def client(emu: KustomerEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, transport=emu.transport, headers=AUTH) as c:
        yield c


@pytest.fixture
def served(emu: KustomerEmulator) -> Iterator[httpx.Client]:
    """A client talking to the emulator over real HTTP on loopback."""
    with emu.serve() as server, httpx.Client(base_url=server.url, headers=AUTH) as c:
        yield c
