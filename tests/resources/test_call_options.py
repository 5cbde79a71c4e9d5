"""Per-call ``timeout=`` / ``max_retries=`` on every resource method, and one message for a bad key."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kustomer_activations import KustomerError, SyncReport, UpsertResult
from kustomer_activations.testing import Fault, KustomerEmulator, VirtualClock

from ..helpers import drive, make_client


class _Recording(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """The emulator's transport, noting the read timeout each request was sent with."""

    def __init__(self, emu: KustomerEmulator) -> None:
        self.emu = emu
        self.timeouts: list[float | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.timeouts.append(request.extensions["timeout"]["read"])
        return self.emu.transport.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.timeouts.append(request.extensions["timeout"]["read"])
        return await self.emu.transport.handle_async_request(request)


def _setup(flavor: str) -> tuple[KustomerEmulator, _Recording, Any, str]:
    emu = KustomerEmulator(clock=VirtualClock())
    ada = emu.seed_customer({"externalId": "c-1", "name": "Ada", "emails": [{"email": "ada@example.com"}]})
    recording = _Recording(emu)
    client = make_client(flavor, transport=recording, base_url=emu.base_url, clock=emu.clock)
    return emu, recording, client, ada


def _stream(resource: Any, rows: list[dict[str, Any]], **opts: Any) -> Any:
    report = SyncReport()
    if hasattr(resource, "__aenter__") or type(resource).__name__.startswith("Async"):
        async def consume() -> SyncReport:
            async with resource.stream_upsert(rows, report=report, **opts) as results:
                async for _ in results:
                    pass
            return report
        return consume()
    with resource.stream_upsert(rows, report=report, **opts) as results:
        for _ in results:
            pass
    return report


_NEW = itertools.count()

CALLS: dict[str, Callable[[Any, str, dict[str, Any]], Any]] = {
    "get": lambda c, ada, o: c.customers.get(ada, **o),
    "get_by_external_id": lambda c, ada, o: c.customers.get_by_external_id("c-1", **o),
    "get_by_email": lambda c, ada, o: c.customers.get_by_email("ada@example.com", **o),
    "find": lambda c, ada, o: c.customers.find("externalId", "c-1", **o),
    "create": lambda c, ada, o: c.customers.create({"externalId": f"new-{next(_NEW)}", "name": "New"}, **o),
    "update": lambda c, ada, o: c.customers.update(ada, {"name": "Renamed"}, **o),
    "upsert": lambda c, ada, o: c.customers.upsert({"externalId": "c-1", "name": "Ada L"}, **o),
    "upsert_many": lambda c, ada, o: c.customers.upsert_many([{"externalId": "c-2", "name": "Bo"}], **o),
    "stream_upsert": lambda c, ada, o: _stream(c.customers, [{"externalId": "c-2", "name": "Bo"}], **o),
    "companies.upsert": lambda c, ada, o: c.companies.upsert({"externalId": "k-1", "name": "Acme"}, **o),
}


def _succeeded(flavor: str, client: Any, name: str, ada: str, options: dict[str, Any]) -> bool:
    try:
        result = drive(flavor, client, lambda c: CALLS[name](c, ada, options))
    except KustomerError:
        return False
    if isinstance(result, (UpsertResult, SyncReport)):
        return result.ok
    return True


@pytest.mark.parametrize("name", list(CALLS))
def test_timeout_per_call_is_what_each_request_is_sent_with(flavor: str, name: str) -> None:
    _, recording, client, ada = _setup(flavor)
    assert _succeeded(flavor, client, name, ada, {"timeout": 7.5})
    assert recording.timeouts and set(recording.timeouts) == {7.5}
    recording.timeouts.clear()
    assert _succeeded(flavor, client, name, ada, {})
    assert set(recording.timeouts) == {30.0}  # the client's own default is untouched


@pytest.mark.parametrize("name", list(CALLS))
def test_max_retries_per_call_takes_effect(flavor: str, name: str) -> None:
    emu, _, client, ada = _setup(flavor)
    emu.faults.add(Fault.connection_reset(), times=1)
    assert not _succeeded(flavor, client, name, ada, {"max_retries": 0})
    emu.faults.add(Fault.connection_reset(), times=1)
    assert _succeeded(flavor, client, name, ada, {"max_retries": 1})
    assert client.max_retries == 2


def test_per_call_options_are_validated(flavor: str) -> None:
    _, _, client, ada = _setup(flavor)
    with pytest.raises(ValueError, match="max_retries"):
        drive(flavor, client, lambda c: c.customers.get(ada, max_retries=-1))


# -- defect 4: an email key on companies, one check and one message ----------------------


@pytest.mark.parametrize("record", [{"name": "Acme", "externalId": "k-1"},
                                    {"name": "Acme", "emails": [{"email": "x@acme.com"}]}],
                         ids=["no-email", "email"])
@pytest.mark.parametrize("many", [False, True], ids=["upsert", "upsert_many"])
def test_email_key_on_companies_says_why_in_both_paths(
    flavor: str, many: bool, record: dict[str, Any],
) -> None:
    emu, _, client, _ = _setup(flavor)
    sent = len(emu.requests)
    with pytest.raises(ValueError, match="an email sync key works for customers only") as caught:
        if many:
            drive(flavor, client, lambda c: c.companies.upsert_many([record], key="email"))
        else:
            drive(flavor, client, lambda c: c.companies.upsert(record, key="email"))
    assert "has no value" not in str(caught.value)
    assert len(emu.requests) == sent
