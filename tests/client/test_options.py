"""What goes out on the wire (auth, User-Agent, default headers) and the sync client in a loop."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import respx

from kustomer_activations import KustomerClient, __version__

from ..helpers import FakeClock
from ._util import BASE, KEY, call, ok


def test_headers_sent(flavor: str, new_client: Any, router: respx.MockRouter) -> None:
    client = new_client(default_headers={"X-Trace": "abc", "X-Team": "growth"})
    route = router.get("/v1/x").mock(return_value=ok())
    call(flavor, client, "GET", "/v1/x")
    headers = route.calls.last.request.headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["user-agent"].startswith(f"kustomer-activations/{__version__} ")
    assert f"httpx/{httpx.__version__}" in headers["user-agent"]
    assert headers["accept"] == "application/json"
    assert headers["x-trace"] == "abc"
    assert headers["x-team"] == "growth"


def test_with_options_default_headers_apply_to_the_copy_only(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    route = router.get("/v1/x").mock(return_value=ok())
    call(flavor, client.with_options(default_headers={"X-Job": "j1"}), "GET", "/v1/x")
    call(flavor, client, "GET", "/v1/x")
    first, second = (c.request.headers for c in route.calls)
    assert first["x-job"] == "j1"
    assert "x-job" not in second
    assert first["authorization"] == second["authorization"] == f"Bearer {KEY}"


def test_with_options_api_key_changes_the_auth_header(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    route = router.get("/v1/x").mock(return_value=ok())
    call(flavor, client.with_options(api_key="other-key"), "GET", "/v1/x")
    assert route.calls.last.request.headers["authorization"] == "Bearer other-key"


def test_path_normalisation(flavor: str, client: Any, router: respx.MockRouter) -> None:
    route = router.get("/v1/customers").mock(return_value=ok())
    for path in ("/v1/customers", "v1/customers", "/customers", "customers"):
        resp = call(flavor, client, "GET", path)
        assert resp.url == f"{BASE}/v1/customers"
    assert route.call_count == 4


def test_sync_client_inside_a_running_event_loop(router: respx.MockRouter) -> None:
    """Jupyter runs an asyncio loop in the main thread; the sync client must still work."""
    clock = FakeClock()
    json_body = {"data": {"id": 1}}
    router.get("/v1/x").mock(side_effect=[httpx.Response(503), ok(json_body)])
    client = KustomerClient(api_key=KEY, base_url=BASE, clock=clock,
                            http_client=httpx.Client(transport=httpx.MockTransport(router.handler)))

    async def main() -> Any:
        asyncio.get_running_loop()  # a loop is running here, as in a notebook cell
        return client.request("GET", "/v1/x")

    resp = asyncio.run(main())
    assert resp.status == 200
    assert resp.body == json_body
    assert resp.retries == 1
    assert len(clock.sleeps) == 1


def test_sync_client_with_the_real_clock_inside_a_running_loop(router: respx.MockRouter) -> None:
    router.get("/v1/x").mock(return_value=ok())
    client = KustomerClient(api_key=KEY, base_url=BASE,
                            http_client=httpx.Client(transport=httpx.MockTransport(router.handler)))

    async def main() -> Any:
        return client.request("GET", "/v1/x").status

    assert asyncio.run(main()) == 200
