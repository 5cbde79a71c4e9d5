"""Fixtures for every test: client flavors, a fake clock, and the request contract check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .contract import validate_request
from .helpers import FLAVORS, FakeClock

_TESTS = Path(__file__).parent
#: Tests whose requests are the SDK's real traffic. The emulator's own tests send
#: invalid requests on purpose, and the client-foundation tests call made-up paths.
_CONTRACT_SCOPES = (_TESTS / "resources", _TESTS / "sync", _TESTS / "test_cli.py")


#: Behaviour tests that run against the emulator, under its default readings and under
#: ``Readings.strictest()`` (every pessimistic reading of Kustomer's unclear behaviour).
_READING_SCOPES = (_TESTS / "resources" / "test_upsert_emulator.py",
                   _TESTS / "resources" / "test_lookups.py", _TESTS / "sync" / "test_engine.py",
                   _TESTS / "test_cli.py", _TESTS / "reliability")
READINGS = ("default", "strictest")


#: Tests that choose their readings themselves (the soak) or never make an emulator.
_READING_EXCLUDED = (_TESTS / "reliability" / "test_soak.py",
                     _TESTS / "reliability" / "test_invariants.py")


def _in_reading_scope(path: Path) -> bool:
    if path in _READING_EXCLUDED:
        return False
    return any(path == scope or scope in path.parents for scope in _READING_SCOPES)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each behaviour test under every preset of emulator readings (see ``api_readings``)."""
    if "api_readings" in metafunc.fixturenames and _in_reading_scope(Path(str(metafunc.definition.path))):
        metafunc.parametrize("api_readings", READINGS, indirect=True)


@pytest.fixture(autouse=True)
def _no_host_or_log_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell must not pick a host or unredact logs for a test."""
    for name in ("KUSTOMER_ORG", "KUSTOMER_REGION", "KUSTOMER_LOG_VALUES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def api_readings(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The emulator readings preset of this test run (``default`` outside the behaviour tests).

    Set through ``KUSTOMER_EMULATOR_READINGS``, so every emulator the test makes without
    ``readings=`` (and every subprocess it starts) answers that way.
    """
    preset = str(getattr(request, "param", "default"))
    if preset == "default":
        monkeypatch.delenv("KUSTOMER_EMULATOR_READINGS", raising=False)
    else:
        monkeypatch.setenv("KUSTOMER_EMULATOR_READINGS", preset)
    return preset


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> str:
    """Each test that takes it runs three times: sync client, async on asyncio, async on trio."""
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock: sleeping advances it instantly and is recorded."""
    return FakeClock()


def _problems(request: httpx.Request) -> list[str]:
    host = request.url.host
    if not (host.endswith("kustomerapp.com") or host in ("127.0.0.1", "localhost")):
        return []
    if not request.url.path.startswith("/v1/"):
        return []
    body: Any = json.loads(request.content) if request.content else None
    found = validate_request(request.method, request.url.raw_path.decode("ascii"), body)
    return [f"{request.method} {request.url.path}: {p}" for p in found]


@pytest.fixture(autouse=True)
def kustomer_contract(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every request the SDK sends in these tests must match Kustomer's OpenAPI subset.

    Path and method must exist there and a JSON body must validate against the
    operation's request schema (with exactly the documented gaps: see
    tests/contract.py). Checked at the httpx layer, so respx-mocked and
    emulator-backed tests are both covered.
    """
    path = Path(str(request.node.path))
    if not any(path == scope or scope in path.parents for scope in _CONTRACT_SCOPES):
        yield
        return
    problems: list[str] = []
    sync_send = httpx.Client.send
    async_send = httpx.AsyncClient.send

    def send(self: httpx.Client, req: httpx.Request, **kwargs: Any) -> httpx.Response:
        problems.extend(_problems(req))
        return sync_send(self, req, **kwargs)

    async def asend(self: httpx.AsyncClient, req: httpx.Request, **kwargs: Any) -> httpx.Response:
        problems.extend(_problems(req))
        return await async_send(self, req, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", send)
    monkeypatch.setattr(httpx.AsyncClient, "send", asend)
    yield
    assert not problems, "requests outside Kustomer's API contract:\n" + "\n".join(problems[:20])
