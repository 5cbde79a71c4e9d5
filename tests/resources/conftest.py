"""Fixtures for the resource tests: a respx router and an emulator, each wired into a client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from kustomer_activations.testing import KustomerEmulator, VirtualClock

from ..helpers import FakeClock, make_client
from ._util import BASE


@pytest.fixture(autouse=True)
def _no_kustomer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUSTOMER_API_KEY", raising=False)
    monkeypatch.delenv("KUSTOMER_BASE_URL", raising=False)


@pytest.fixture
def router() -> respx.MockRouter:
    """A respx router for the test org; an unmocked request fails the test."""
    return respx.MockRouter(base_url=BASE, assert_all_mocked=True, assert_all_called=False)


@pytest.fixture
def client(flavor: str, router: respx.MockRouter) -> Any:
    """A client of the test's flavor answering from ``router`` (no retries, fake clock)."""
    return make_client(flavor, transport=httpx.MockTransport(router.handler), clock=FakeClock(),
                       max_retries=0)


@pytest.fixture
def emu() -> KustomerEmulator:
    """A fresh emulated org on a virtual clock, search visible at once."""
    return KustomerEmulator(clock=VirtualClock(), search_lag=0)


@pytest.fixture
def new_eclient(flavor: str, emu: KustomerEmulator) -> Callable[..., Any]:
    """Build a client of the test's flavor talking to ``emu``."""

    def build(**options: Any) -> Any:
        return make_client(flavor, transport=emu.transport, base_url=emu.base_url,
                           clock=emu.clock, **options)

    return build


@pytest.fixture
def eclient(new_eclient: Callable[..., Any]) -> Any:
    """A client of the test's flavor talking to ``emu``."""
    return new_eclient()
