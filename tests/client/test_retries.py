"""Retry counts and waits, with time injected: 429s, 5xx, transport errors, creates."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from kustomer_activations import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
)
from kustomer_activations._core.retry import BACKOFF_BASE, BACKOFF_MAX

from ._util import T0, call, call_raises, ok


def _bounds(failures: int) -> tuple[float, float]:
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * 2**failures)
    return ceiling / 2, ceiling


# --- 429: waiting is not failing ----------------------------------------------------------


def test_429_with_retry_after_waits_exactly_that(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    route = router.get("/v1/x").mock(side_effect=[
        httpx.Response(429, headers={"retry-after": "7"}), ok(),
    ])
    resp = call(flavor, client, "GET", "/v1/x")
    assert resp.status == 200
    assert resp.retries == 1
    assert route.call_count == 2
    assert clock.sleeps == [7.0]


def test_429_retry_after_as_http_date(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    router.get("/v1/x").mock(side_effect=[
        httpx.Response(429, headers={"retry-after": "Fri, 15 Jan 2027 08:00:12 GMT"}), ok(),
    ])
    clock.t = 1_800_000_000.0  # Fri, 15 Jan 2027 08:00:00 GMT
    call(flavor, client, "GET", "/v1/x")
    assert clock.sleeps == [pytest.approx(12.0)]


@pytest.mark.parametrize("reset", [str(int(T0) + 9), "9", str(int(T0 + 9) * 1000)],
                         ids=["epoch", "delta", "epoch-ms"])
def test_429_without_retry_after_waits_until_reset(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any, reset: str
) -> None:
    limited = httpx.Response(429, headers={
        "x-ratelimit-limit": "1000", "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset,
    })
    route = router.get("/v1/x").mock(side_effect=[limited, ok()])
    resp = call(flavor, client, "GET", "/v1/x")
    assert resp.status == 200
    assert route.call_count == 2
    assert clock.sleeps == [pytest.approx(9.0)]
    assert clock.now() == pytest.approx(T0 + 9, abs=1e-6)


def test_429_asking_longer_than_max_rate_limit_wait_raises_at_once(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: Any
) -> None:
    client = new_client(max_rate_limit_wait=300)
    route = router.get("/v1/x").mock(side_effect=[
        httpx.Response(429, headers={"retry-after": "600"}), ok(),
    ])
    err = call_raises(flavor, client, RateLimitError, "GET", "/v1/x")
    assert err.status == 429
    assert route.call_count == 1
    assert clock.sleeps == []


def test_429_does_not_consume_max_retries(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: Any
) -> None:
    client = new_client(max_retries=0)
    route = router.get("/v1/x").mock(side_effect=[
        httpx.Response(429, headers={"retry-after": "1"}),
        httpx.Response(429, headers={"retry-after": "1"}),
        ok(),
    ])
    resp = call(flavor, client, "GET", "/v1/x")
    assert resp.status == 200
    assert resp.retries == 2
    assert route.call_count == 3
    assert clock.sleeps == [1.0, 1.0]


def test_429_then_503_both_handled(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: Any
) -> None:
    """A 429 wait does not use up the single retry a 503 then needs."""
    client = new_client(max_retries=1)
    route = router.get("/v1/x").mock(side_effect=[
        httpx.Response(429, headers={"retry-after": "3"}), httpx.Response(503), ok(),
    ])
    assert call(flavor, client, "GET", "/v1/x").retries == 2
    assert route.call_count == 3
    assert clock.sleeps[0] == 3.0
    lo, hi = _bounds(0)
    assert lo <= clock.sleeps[1] <= hi


def test_429_with_zero_retry_after_is_bounded(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: Any
) -> None:
    """A server that keeps saying "retry now" must not make a call spin forever."""
    client = new_client(max_rate_limit_wait=10)
    calls = 0

    def always_429(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 60:
            raise AssertionError("the client keeps re-sending without waiting")
        return httpx.Response(429, headers={"retry-after": "0"})

    router.get("/v1/x").mock(side_effect=always_429)
    call_raises(flavor, client, RateLimitError, "GET", "/v1/x")
    assert calls < 60
    assert all(s > 0 for s in clock.sleeps)
    assert sum(clock.sleeps) <= 10


def test_429_with_reset_in_the_past_still_waits(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    """Clock skew: a reset already past must not turn into an immediate re-send."""
    past = str(int(T0) - 30)
    route = router.get("/v1/x").mock(side_effect=[
        httpx.Response(429, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": past}),
        ok(),
    ])
    assert call(flavor, client, "GET", "/v1/x").status == 200
    assert route.call_count == 2
    assert len(clock.sleeps) == 1
    lo, hi = _bounds(0)
    assert lo <= clock.sleeps[0] <= hi


def test_429_retried_for_a_create_too(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    """A 429 means the request was not processed, so even a create is re-sent."""
    route = router.post("/v1/customers").mock(side_effect=[
        httpx.Response(429, headers={"retry-after": "2"}), ok(status=201),
    ])
    assert call(flavor, client, "POST", "/v1/customers", json={"name": "a"}).status == 201
    assert route.call_count == 2
    assert clock.sleeps == [2.0]


# --- 5xx ------------------------------------------------------------------------------------


def test_503_retried_max_retries_times_with_bounded_backoff(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: Any
) -> None:
    client = new_client(max_retries=6)
    route = router.get("/v1/x").respond(503)
    call_raises(flavor, client, InternalServerError, "GET", "/v1/x")
    assert route.call_count == 7
    assert len(clock.sleeps) == 6
    for failures, wait in enumerate(clock.sleeps):
        lo, hi = _bounds(failures)
        assert lo <= wait <= hi, (failures, wait)
    # the cap: the last two waits are both within [4, 8]
    assert _bounds(4) == _bounds(5) == (4.0, 8.0)


def test_503_then_success(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    route = router.get("/v1/x").mock(side_effect=[httpx.Response(503), httpx.Response(502), ok()])
    resp = call(flavor, client, "GET", "/v1/x")
    assert resp.status == 200
    assert resp.retries == 2
    assert route.call_count == 3
    assert len(clock.sleeps) == 2


def test_503_retry_after_is_honoured(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    router.get("/v1/x").mock(side_effect=[httpx.Response(503, headers={"retry-after": "4"}), ok()])
    call(flavor, client, "GET", "/v1/x")
    assert clock.sleeps == [4.0]


def test_408_is_retried_then_raised_as_api_error(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    route = router.get("/v1/x").respond(408)
    err = call_raises(flavor, client, APIError, "GET", "/v1/x")
    assert type(err) is APIError and err.status == 408
    assert route.call_count == 3
    assert len(clock.sleeps) == 2


def test_5xx_on_a_create_is_not_resent(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    """A 5xx answer to a create may come after the object was made: never re-send it."""
    route = router.post("/v1/customers").respond(500)
    call_raises(flavor, client, InternalServerError, "POST", "/v1/customers", json={"name": "a"})
    assert route.call_count == 1
    assert clock.sleeps == []


def test_no_retry_on_400(flavor: str, client: Any, router: respx.MockRouter, clock: Any) -> None:
    route = router.get("/v1/x").respond(400, json={"errors": [{"message": "bad"}]})
    call_raises(flavor, client, BadRequestError, "GET", "/v1/x")
    assert route.call_count == 1
    assert clock.sleeps == []


def test_max_retries_zero_means_one_attempt(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: Any
) -> None:
    client = new_client(max_retries=0)
    route = router.get("/v1/x").respond(503)
    call_raises(flavor, client, InternalServerError, "GET", "/v1/x")
    assert route.call_count == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(("client_retries", "call_retries", "attempts"),
                         [(0, 3, 4), (2, 0, 1), (5, 1, 2)])
def test_per_call_max_retries_override(
    flavor: str, new_client: Any, router: respx.MockRouter,
    client_retries: int, call_retries: int, attempts: int,
) -> None:
    client = new_client(max_retries=client_retries)
    route = router.get("/v1/x").respond(503)
    call_raises(flavor, client, InternalServerError, "GET", "/v1/x", max_retries=call_retries)
    assert route.call_count == attempts
    # the override applies to that call only
    route.reset()
    call_raises(flavor, client, InternalServerError, "GET", "/v1/x")
    assert route.call_count == client_retries + 1


# --- transport errors -------------------------------------------------------------------------


def test_connect_error_is_retried(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    route = router.get("/v1/x").mock(side_effect=[httpx.ConnectError("refused"), ok()])
    resp = call(flavor, client, "GET", "/v1/x")
    assert resp.retries == 1
    assert route.call_count == 2
    lo, hi = _bounds(0)
    assert len(clock.sleeps) == 1 and lo <= clock.sleeps[0] <= hi


def test_connect_error_is_retried_for_a_create(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    route = router.post("/v1/customers").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.ConnectTimeout("slow"), ok(status=201)]
    )
    resp = call(flavor, client, "POST", "/v1/customers", json={"name": "a"})
    assert resp.status == 201
    assert resp.retries == 2
    assert route.call_count == 2 + 1


def test_connect_error_exhausted_raises_connection_error(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    route = router.get("/v1/x").mock(side_effect=httpx.ConnectError("refused"))
    err = call_raises(flavor, client, APIConnectionError, "GET", "/v1/x")
    assert not isinstance(err, APITimeoutError)
    assert route.call_count == 3
    assert err.method == "GET" and err.path == "/v1/x"
    assert "ConnectError" in str(err)
    assert isinstance(err.__cause__, httpx.ConnectError)


def test_read_timeout_on_get_is_retried(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    route = router.get("/v1/x").mock(side_effect=[httpx.ReadTimeout("slow"), ok()])
    assert call(flavor, client, "GET", "/v1/x").retries == 1
    assert route.call_count == 2


def test_read_timeout_on_get_exhausted_raises_timeout_error(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    route = router.get("/v1/x").mock(side_effect=httpx.ReadTimeout("slow"))
    err = call_raises(flavor, client, APITimeoutError, "GET", "/v1/x")
    assert route.call_count == 3
    assert "timeout=" in str(err)


def test_read_timeout_on_create_is_not_retried(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    route = router.post("/v1/customers").mock(side_effect=[httpx.ReadTimeout("slow"), ok()])
    err = call_raises(flavor, client, APITimeoutError, "POST", "/v1/customers", json={"n": 1})
    assert route.call_count == 1
    assert clock.sleeps == []
    assert err.method == "POST" and err.path == "/v1/customers"


def test_lost_response_on_create_is_not_retried(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    route = router.post("/v1/customers").mock(
        side_effect=[httpx.RemoteProtocolError("peer closed connection"), ok()]
    )
    err = call_raises(flavor, client, APIConnectionError, "POST", "/v1/customers", json={"n": 1})
    assert not isinstance(err, APITimeoutError)
    assert route.call_count == 1
    assert clock.sleeps == []


def test_lost_response_on_update_is_retried(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    route = router.put("/v1/customers/c1").mock(
        side_effect=[httpx.RemoteProtocolError("peer closed connection"), ok()]
    )
    assert call(flavor, client, "PUT", "/v1/customers/c1", json={"name": "a"}).retries == 1
    assert route.call_count == 2


def test_search_post_is_retried_on_timeout(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    route = router.post("/v1/customers/search").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("lost"), ok()]
    )
    resp = call(flavor, client, "POST", "/v1/customers/search", json={"and": []}, search=True)
    assert resp.retries == 2
    assert route.call_count == 3


def test_each_attempt_is_a_fresh_identical_request(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    route = router.put("/v1/customers/c1").mock(side_effect=[httpx.Response(503), ok()])
    call(flavor, client, "PUT", "/v1/customers/c1", json={"name": "a"}, params={"replace": "false"})
    first, second = route.calls
    for sent in (first.request, second.request):
        assert sent.content == b'{"name":"a"}' or sent.content == b'{"name": "a"}'
        assert sent.url.params["replace"] == "false"
        assert sent.headers["authorization"].startswith("Bearer ")
