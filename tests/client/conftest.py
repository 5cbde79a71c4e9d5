"""Fixtures for the client-foundation tests: a respx router wired into either client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from ..helpers import FakeClock, make_client
from ._util import BASE, KEY


@pytest.fixture
def router() -> respx.MockRouter:
    """A respx router for the test org's host; unmatched requests fail the test."""
    return respx.MockRouter(base_url=BASE, assert_all_mocked=True, assert_all_called=False)


@pytest.fixture
def new_client(
    flavor: str, router: respx.MockRouter, clock: FakeClock
) -> Callable[..., Any]:
    """Build a client of the test's flavor whose httpx client answers from ``router``."""

    def build(**options: Any) -> Any:
        options.setdefault("api_key", KEY)
        options.setdefault("clock", clock)
        return make_client(flavor, transport=httpx.MockTransport(router.handler), **options)

    return build


@pytest.fixture
def client(new_client: Callable[..., Any]) -> Any:
    """A client of the test's flavor with default options and the fake clock."""
    return new_client()


@pytest.fixture(autouse=True)
def _no_kustomer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without KUSTOMER_* variables, whatever the developer's shell has."""
    monkeypatch.delenv("KUSTOMER_API_KEY", raising=False)
    monkeypatch.delenv("KUSTOMER_BASE_URL", raising=False)
