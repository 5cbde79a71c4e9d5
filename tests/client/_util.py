"""Small helpers for the client-foundation tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.lowlevel
import httpx
import pytest

from ..helpers import FakeClock, drive

BASE = "https://acme.api.kustomerapp.com"
#: A recognisable key, so tests can prove it never leaks.
KEY = "sk-test-SECRET-7f3a9c1e5b"
#: The fake clock's start (epoch seconds).
T0 = 1_800_000_000.0


def call(flavor: str, client: Any, method: str, path: str, **kwargs: Any) -> Any:
    """``client.request(...)`` on either client, returning the ApiResponse."""
    return drive(flavor, client, lambda c: c.request(method, path, **kwargs))


def call_raises(
    flavor: str, client: Any, exc: type[BaseException], method: str, path: str, **kwargs: Any
) -> Any:
    """``client.request(...)`` that must raise ``exc``; returns the exception."""
    with pytest.raises(exc) as info:
        call(flavor, client, method, path, **kwargs)
    return info.value


def ok(
    body: Any = None, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A JSON response (``{"data": {}}`` by default) with extra headers."""
    return httpx.Response(status, json={"data": {}} if body is None else body, headers=headers)


def recording(
    clock: FakeClock, times: list[float], answer: Callable[[httpx.Request], Any]
) -> Callable[[httpx.Request], Any]:
    """A respx side effect that notes ``clock.now()`` for every request, then answers."""

    def side_effect(request: httpx.Request) -> Any:
        times.append(clock.now())
        return answer(request)

    return side_effect


class FrozenClock(FakeClock):
    """Records sleeps but never moves: every concurrent caller sees the same ``now``.

    Handy to read the pacer's reservations directly: each recorded sleep is
    exactly the slot that caller was given, relative to the same instant.
    """

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await anyio.lowlevel.checkpoint()


def max_in_window(times: list[float], window: float = 60.0) -> int:
    """The most send times that fall within any half-open window ``[t, t + window)``."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        best = max(best, sum(1 for t in ordered[i:] if t < start + window))
    return best
