"""Helpers shared by the SDK's tests: a fake clock and one way to drive both clients."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from kustomer_activations import AsyncKustomerClient, KustomerClient, Outcome
from kustomer_activations.errors import UnknownCompanyLinkError

FLAVORS = ("sync", "asyncio", "trio")


class FakeClock:
    """A clock whose time moves only when something sleeps on it; records every sleep."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


def make_client(
    flavor: str,
    *,
    transport: Any = None,
    **options: Any,
) -> KustomerClient | AsyncKustomerClient:
    """A sync client for "sync", an async one otherwise; ``transport`` goes into its httpx client."""
    options.setdefault("api_key", "test-key")
    options.setdefault("base_url", "https://acme.api.kustomerapp.com")
    if flavor == "sync":
        http = httpx.Client(transport=transport) if transport is not None else None
        return KustomerClient(http_client=http, **options)
    ahttp = httpx.AsyncClient(transport=transport) if transport is not None else None
    return AsyncKustomerClient(http_client=ahttp, **options)


def drive(flavor: str, client: Any, fn: Callable[[Any], Any]) -> Any:
    """Run ``fn(client)``; for async flavors await it in a fresh event loop of that backend."""
    if flavor == "sync":
        return fn(client)

    async def main() -> Any:
        result = fn(client)
        if inspect.isawaitable(result):
            result = await result
        return result

    return anyio.run(main, backend=flavor)


def link_hidden(emu: Any) -> bool:
    """Whether no customer answer of ``emu`` shows the company link (``company_link="hidden"``).

    Then the SDK updates a customer only when the record sets the link itself
    (``companyExternalId`` or ``company``), and writes every such matched row,
    since the link cannot be compared (docs/compatibility.rst).
    """
    return bool(emu.readings.company_link == "hidden")


def assert_link_refused(
    result: Any, customer_id: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> None:
    """``result`` is the refusal to update customer ``customer_id``, whose company link no
    answer shows and whose record does not set it: ``failed`` with
    :class:`UnknownCompanyLinkError`, a reason that says to map ``companyExternalId``, and
    the stored document (``before``, ``after``: ``emu.customers[id]``) untouched, its
    company link included."""
    assert result.outcome is Outcome.FAILED, result.describe()
    assert isinstance(result.error, UnknownCompanyLinkError), result.describe()
    assert result.error.customer_id == customer_id
    assert "companyExternalId" in (result.reason or ""), result.reason
    assert after.get("company") == before.get("company")
    assert after == before
