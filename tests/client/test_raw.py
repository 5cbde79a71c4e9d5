"""Raw access: ``client.request`` returns an ApiResponse; ``capture_responses`` collects them."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from kustomer_activations import ApiResponse, APIResponseValidationError, NotFoundError, RateLimit

from ..helpers import drive
from ._util import BASE, T0, call, ok

CUSTOMER = {
    "data": {
        "type": "customer",
        "id": "cus_1",
        "attributes": {
            "name": "Ada Lovelace",
            "externalId": "ext-1",
            "emails": [{"type": "home", "email": "ada@example.com"}],
            "custom": {"tierStr": "gold"},
            "someNewField": 1,
        },
        "relationships": {"org": {"data": {"type": "org", "id": "org_1"}}},
    }
}


def test_request_returns_api_response(flavor: str, client: Any, router: respx.MockRouter) -> None:
    body = {"data": [{"type": "customer", "id": "a"}], "meta": {"page": 1, "pageSize": 2},
            "links": {"next": None}}
    route = router.get("/v1/customers").respond(200, json=body, headers={
        "x-request-id": "req-9", "x-ratelimit-limit": "1000", "x-ratelimit-remaining": "7",
        "x-ratelimit-reset": "30",
    })
    resp = call(flavor, client, "GET", "/v1/customers", params={"page": 1, "pageSize": 2})
    assert isinstance(resp, ApiResponse)
    assert resp.status == 200
    assert resp.method == "GET"
    assert resp.path == "/v1/customers"
    assert resp.url == f"{BASE}/v1/customers?page=1&pageSize=2"
    assert resp.body == body
    assert resp.data == [{"type": "customer", "id": "a"}]
    assert resp.meta == {"page": 1, "pageSize": 2}
    assert resp.headers["X-Request-Id"] == "req-9"
    assert resp.request_id == "req-9"
    assert resp.rate_limit == RateLimit(limit=1000, remaining=7, reset_at=T0 + 30, observed_at=T0)
    assert resp.retries == 0
    assert route.calls.last.request.url.params["pageSize"] == "2"


def test_request_sends_json_body(flavor: str, client: Any, router: respx.MockRouter) -> None:
    route = router.post("/v1/customers").respond(201, json=CUSTOMER)
    resp = call(flavor, client, "post", "/v1/customers", json={"name": "Ada", "tags": ["x"]})
    assert resp.status == 201 and resp.method == "POST"
    sent = route.calls.last.request
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {"name": "Ada", "tags": ["x"]}


def test_retries_are_counted(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/x").mock(side_effect=[httpx.Response(503), httpx.ConnectError("x"), ok()])
    assert call(flavor, client, "GET", "/v1/x").retries == 2


def test_empty_success_body(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.delete("/v1/customers/c1").respond(204)
    resp = call(flavor, client, "DELETE", "/v1/customers/c1")
    assert resp.status == 204
    assert resp.body is None and resp.data is None and resp.meta == {}


def test_unreadable_success_body(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/x").respond(200, text="<html>login</html>")
    with pytest.raises(APIResponseValidationError) as info:
        call(flavor, client, "GET", "/v1/x")
    assert info.value.status == 200
    assert info.value.body == "<html>login</html>"


def test_capture_responses_of_resource_calls(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any
) -> None:
    route = router.get("/v1/customers/cus_1").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json=CUSTOMER,
                                                         headers={"x-request-id": "r1"})]
    )
    router.get("/v1/customers/cus_404").respond(404, json={"errors": [{"message": "nope"}]})

    async def run_async(c: Any) -> tuple[Any, list[ApiResponse]]:
        with c.capture_responses() as calls:
            customer = await c.customers.get("cus_1")
            with pytest.raises(NotFoundError):
                await c.customers.get("cus_404")
        return customer, calls

    def run_sync(c: Any) -> tuple[Any, list[ApiResponse]]:
        with c.capture_responses() as calls:
            customer = c.customers.get("cus_1")
            with pytest.raises(NotFoundError):
                c.customers.get("cus_404")
        return customer, calls

    customer, calls = drive(flavor, client, run_sync if flavor == "sync" else run_async)
    assert customer.id == "cus_1"
    assert customer.name == "Ada Lovelace"
    assert route.call_count == 2
    assert len(calls) == 1  # only finished calls; the 404 raised instead
    (captured,) = calls
    assert captured.status == 200
    assert captured.retries == 1
    assert captured.path == "/v1/customers/cus_1"
    assert captured.request_id == "r1"
    assert captured.body == CUSTOMER


def test_capture_only_inside_the_block(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/x").mock(return_value=ok())

    async def run_async(c: Any) -> Any:
        await c.request("GET", "/v1/x")
        with c.capture_responses() as calls:
            await c.request("GET", "/v1/x")
            await c.request("GET", "/v1/x")
        await c.request("GET", "/v1/x")
        return calls

    def run_sync(c: Any) -> Any:
        c.request("GET", "/v1/x")
        with c.capture_responses() as calls:
            c.request("GET", "/v1/x")
            c.request("GET", "/v1/x")
        c.request("GET", "/v1/x")
        return calls

    calls: list[ApiResponse] = drive(flavor, client, run_sync if flavor == "sync" else run_async)
    assert len(calls) == 2
    assert all(isinstance(c, ApiResponse) and c.status == 200 for c in calls)


def test_path_values_are_encoded_by_resources(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    route = router.get(url__regex=r".*/v1/customers/a%2Fb%3F.*").respond(200, json=CUSTOMER)
    drive(flavor, client, lambda c: c.customers.get("a/b?x"))
    assert route.call_count == 1
    assert route.calls.last.request.url.raw_path == b"/v1/customers/a%2Fb%3Fx"
