"""Rate-limit headers: parsed into ``client.rate_limit`` and ``ApiResponse.rate_limit``."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
import respx

from kustomer_activations import RateLimit

from ._util import T0, call, ok


@pytest.mark.parametrize(
    ("reset", "reset_at"),
    [(str(int(T0) + 42), T0 + 42), ("42", T0 + 42), (str(int(T0 + 42) * 1000), T0 + 42)],
    ids=["epoch-seconds", "delta", "epoch-ms"],
)
def test_headers_parsed_into_rate_limit(
    flavor: str, client: Any, router: respx.MockRouter, reset: str, reset_at: float
) -> None:
    router.get("/v1/x").mock(return_value=ok(headers={
        "x-ratelimit-limit": "1000", "x-ratelimit-remaining": "998", "x-ratelimit-reset": reset,
    }))
    before: Any = client.rate_limit
    assert before is None
    resp = call(flavor, client, "GET", "/v1/x")
    expected = RateLimit(limit=1000, remaining=998, reset_at=reset_at, observed_at=T0)
    assert resp.rate_limit == expected
    assert client.rate_limit == expected
    assert resp.rate_limit.resets_in == pytest.approx(42.0)


def test_latest_headers_win_and_missing_headers_keep_the_last_known(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.get("/v1/x").mock(side_effect=[
        ok(headers={"x-ratelimit-limit": "500", "x-ratelimit-remaining": "10", "x-ratelimit-reset": "60"}),
        ok(headers={"x-ratelimit-limit": "500", "x-ratelimit-remaining": "9", "x-ratelimit-reset": "59"}),
        ok(),
    ])
    call(flavor, client, "GET", "/v1/x")
    second = call(flavor, client, "GET", "/v1/x")
    assert client.rate_limit is not None and client.rate_limit.remaining == 9
    assert client.rate_limit == second.rate_limit
    third = call(flavor, client, "GET", "/v1/x")
    assert third.rate_limit is None
    assert client.rate_limit == second.rate_limit


def test_garbage_headers_are_ignored(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/x").mock(return_value=ok(headers={
        "x-ratelimit-limit": "lots", "x-ratelimit-remaining": "", "x-ratelimit-reset": "soon",
    }))
    resp = call(flavor, client, "GET", "/v1/x")
    assert resp.status == 200
    assert resp.rate_limit is None
    assert client.rate_limit is None


def test_rate_limit_of_a_429_is_observed(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    router.get("/v1/x").mock(side_effect=[
        httpx.Response(429, headers={"x-ratelimit-limit": "300", "x-ratelimit-remaining": "0",
                                     "x-ratelimit-reset": "5", "retry-after": "5"}),
        ok(headers={"x-ratelimit-limit": "300", "x-ratelimit-remaining": "299",
              "x-ratelimit-reset": "60"}),
    ])
    resp = call(flavor, client, "GET", "/v1/x")
    assert clock.sleeps == [5.0]
    assert resp.rate_limit == RateLimit(limit=300, remaining=299, reset_at=T0 + 65,
                                        observed_at=T0 + 5)


def test_unknown_budget_is_learned_from_the_limit_header(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    """requests_per_minute=None: the pacer follows x-ratelimit-limit."""
    assert client._core.pacer.requests_per_minute == 1000
    times: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        times.append(clock.now())
        return ok(headers={"x-ratelimit-limit": "60", "x-ratelimit-remaining": "50"})

    router.get("/v1/x").mock(side_effect=answer)
    for _ in range(8):
        call(flavor, client, "GET", "/v1/x")
    assert client._core.pacer.requests_per_minute == 60
    # After the small burst the learned budget allows, one request per 60/(60*0.95) s.
    gaps = [b - a for a, b in itertools.pairwise(times[-4:])]
    assert all(g >= 1.0 for g in gaps), gaps


def test_configured_budget_is_not_overridden_by_headers(
    flavor: str, new_client: Any, router: respx.MockRouter
) -> None:
    client = new_client(requests_per_minute=200)
    router.get("/v1/x").mock(return_value=ok(headers={"x-ratelimit-limit": "2000"}))
    call(flavor, client, "GET", "/v1/x")
    assert client._core.pacer.requests_per_minute == 200
