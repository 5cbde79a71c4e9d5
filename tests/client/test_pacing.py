"""Pacing: bursts are spread under the budget, searches have their own, 429s hold back."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest
import respx

from kustomer_activations._core.ratelimit import BURST, UTILIZATION

from ..helpers import FakeClock, drive, make_client
from ._util import KEY, T0, FrozenClock, call, max_in_window, ok, recording


def _burst(flavor: str, client: Any, n: int, path: str = "/v1/x", **kwargs: Any) -> None:
    """``n`` back-to-back calls (sequential: the fake clock then shows the pacing exactly)."""

    async def run_async(c: Any) -> None:
        for _ in range(n):
            await c.request("POST" if kwargs.get("search") else "GET", path, **kwargs)

    if flavor == "sync":
        for _ in range(n):
            client.request("POST" if kwargs.get("search") else "GET", path, **kwargs)
    else:
        drive(flavor, client, run_async)


@pytest.mark.parametrize(("per_minute", "n"), [(60, 30), (20, 45), (1000, 300)])
def test_burst_is_spread_under_the_budget(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: FakeClock,
    per_minute: int, n: int,
) -> None:
    client = new_client(requests_per_minute=per_minute)
    times: list[float] = []
    router.get("/v1/x").mock(side_effect=recording(clock, times, lambda r: ok()))
    _burst(flavor, client, n)
    assert len(times) == n
    assert times[0] == T0  # the first request is not held
    assert max_in_window(times) <= per_minute
    # A small burst goes at once (BURST of the budget), then one every interval.
    burst = int(per_minute * BURST)
    interval = 60.0 / (per_minute * UTILIZATION)
    assert times[: burst + 1] == [T0] * (burst + 1)
    gaps = [b - a for a, b in itertools.pairwise(times[burst:])]
    assert min(gaps) == pytest.approx(interval, abs=1e-5)  # evenly spaced after the burst
    # ...and not slower than needed: about the budget, with the documented headroom
    assert times[-1] - times[0] == pytest.approx((n - 1 - burst) * interval, abs=1e-3)


def test_remaining_zero_waits_until_reset(
    flavor: str, client: Any, router: respx.MockRouter, clock: FakeClock
) -> None:
    times: list[float] = []
    answers = iter([
        ok(headers={"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "0",
              "x-ratelimit-reset": str(int(T0) + 25)}),
        ok(headers={"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "999",
              "x-ratelimit-reset": "60"}),
    ])
    router.get("/v1/x").mock(side_effect=recording(clock, times, lambda r: next(answers)))
    call(flavor, client, "GET", "/v1/x")
    call(flavor, client, "GET", "/v1/x")
    assert times == [T0, T0 + 25]
    assert clock.sleeps == [25.0]


def test_remaining_budget_is_spent_then_held_until_reset(
    flavor: str, client: Any, router: respx.MockRouter, clock: FakeClock
) -> None:
    """remaining=2 with the reset 30 s away (delta format): two more go, the third waits."""
    times: list[float] = []
    first = [ok(headers={"x-ratelimit-remaining": "2", "x-ratelimit-reset": "30"})]

    def answer(request: httpx.Request) -> httpx.Response:
        return first.pop() if first else ok()

    router.get("/v1/x").mock(side_effect=recording(clock, times, answer))
    _burst(flavor, client, 4)
    assert times[0] == T0
    assert times[1] - T0 < 1 and times[2] - T0 < 1
    assert times[3] == pytest.approx(T0 + 30, abs=1e-6)


def test_search_budget_is_separate(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: FakeClock
) -> None:
    search_times: list[float] = []
    plain_times: list[float] = []
    router.post("/v1/customers/search").mock(side_effect=recording(clock, search_times, lambda r: ok()))
    router.get("/v1/x").mock(side_effect=recording(clock, plain_times, lambda r: ok()))

    searcher = new_client(searches_per_minute=10)
    _burst(flavor, searcher, 12, "/v1/customers/search", json={"and": []}, search=True)
    assert search_times[-1] - search_times[0] >= 60.0
    assert max_in_window(search_times) <= 10

    plain_client = new_client(searches_per_minute=10, clock=FakeClock())
    plain_clock = plain_client.clock
    _burst(flavor, plain_client, 12)
    assert plain_clock.now() - T0 < 1.0  # plain requests only pay the org pacing
    assert len(plain_times) == 12

    # on one client, searches do not slow down plain requests
    plain_times.clear()
    start = clock.now()
    _burst(flavor, searcher, 3)
    assert plain_times[-1] - start < 1.0


class HookClock(FakeClock):
    """A fake clock that runs ``hook`` once, at the first sleep, before time moves on."""

    def __init__(self) -> None:
        super().__init__()
        self.hook: Callable[[], Any] | None = None

    def sleep(self, seconds: float) -> None:
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        super().sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        hook, self.hook = self.hook, None
        if hook is not None:
            result = hook()
            if inspect.isawaitable(result):
                await result
        await super().asleep(seconds)


def test_429_holds_back_other_requests_of_the_client(
    flavor: str, new_client: Any, router: respx.MockRouter
) -> None:
    """While one call waits out a 429, another call of the same client waits too."""
    clock = HookClock()
    client = new_client(clock=clock)
    other = client.with_options(max_retries=0)  # a copy: same budget
    times: dict[str, list[float]] = {"a": [], "b": []}
    answers = iter([httpx.Response(429, headers={"retry-after": "10"}), ok()])
    router.get("/v1/a").mock(side_effect=recording(clock, times["a"], lambda r: next(answers)))
    router.get("/v1/b").mock(side_effect=recording(clock, times["b"], lambda r: ok()))
    # the hook fires when /v1/a starts waiting out its 429: /v1/b is sent meanwhile
    clock.hook = lambda: other.request("GET", "/v1/b")
    call(flavor, client, "GET", "/v1/a")
    assert times["a"][0] == T0
    assert times["b"] == [T0 + 10]  # not sent before the 429's wait was over
    assert clock.sleeps[0] == pytest.approx(10.0)


def test_with_options_copies_share_the_budget(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: FakeClock
) -> None:
    client = new_client(requests_per_minute=30)
    copy = client.with_options(timeout=5, max_retries=0)
    times: list[float] = []
    router.get("/v1/x").mock(side_effect=recording(clock, times, lambda r: ok()))
    for who in (client, copy, client, copy):
        call(flavor, who, "GET", "/v1/x")
    interval = 60.0 / (30 * UTILIZATION)
    # 30/min allows int(30 * BURST) = 1 extra request at once; after that the
    # copy and the original queue behind each other, one interval apart.
    assert [t - T0 for t in times] == [
        0.0, 0.0, pytest.approx(interval), pytest.approx(2 * interval)]

    # a client of another key/org does not share it
    stranger = client.with_options(api_key="another-key")
    assert stranger._core.pacer is not client._core.pacer
    before = clock.now()
    call(flavor, stranger, "GET", "/v1/x")
    assert times[-1] == before


def test_concurrent_calls_share_one_budget(flavor: str, router: respx.MockRouter) -> None:
    """Five calls at once (tasks, or threads for the sync client) get five distinct slots."""
    clock = FrozenClock()
    router.get("/v1/x").mock(return_value=ok())
    client: Any = make_client(flavor, transport=httpx.MockTransport(router.handler),
                              api_key=KEY, clock=clock, requests_per_minute=60)
    n = 5
    if flavor == "sync":
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = list(pool.map(lambda _: client.request("GET", "/v1/x"), range(n)))
    else:
        results = []

        async def many(c: Any) -> None:
            async def one() -> None:
                results.append(await c.request("GET", "/v1/x"))

            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(one)

        drive(flavor, client, many)
    assert [r.status for r in results] == [200] * n
    assert router.routes[0].call_count == n
    interval = 60.0 / (60 * UTILIZATION)
    burst = int(60 * BURST)  # these go at once; the rest get one slot each
    assert sorted(clock.sleeps) == pytest.approx([k * interval for k in range(1, n - burst)])
    assert client._core.pacer.sent == n
