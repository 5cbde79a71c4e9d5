"""Status → exception mapping, both error body shapes, and what ``str(error)`` says."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from kustomer_activations import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    ErrorDetail,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)

from ._util import call_raises

SIMPLE = {"errors": [{"code": "some_code", "message": "something is wrong", "meta": {"k": 1}}]}


@pytest.mark.parametrize(
    ("status", "exc", "hint_word"),
    [
        (400, BadRequestError, "retrying will not help"),
        (401, AuthenticationError, "API key"),
        (403, PermissionDeniedError, "role"),
        (404, NotFoundError, "No such object"),
        (409, ConflictError, "unique value"),
        (422, UnprocessableEntityError, "could not process"),
    ],
)
def test_client_error_statuses_map_to_their_exception(
    flavor: str, client: Any, router: respx.MockRouter, status: int, exc: type[APIError],
    hint_word: str,
) -> None:
    route = router.get("/v1/customers/c1").respond(
        status, json=SIMPLE, headers={"x-request-id": "req-123"}
    )
    err = call_raises(flavor, client, exc, "GET", "/v1/customers/c1")
    assert type(err) is exc
    assert route.call_count == 1  # 4xx are never retried
    assert err.status == status
    assert err.method == "GET"
    assert err.path == "/v1/customers/c1"
    assert err.request_id == "req-123"
    assert err.errors == (ErrorDetail(code="some_code", message="something is wrong", meta={"k": 1}),)
    text = str(err)
    assert f"GET /v1/customers/c1 failed with {status}" in text
    assert "something is wrong" in text
    assert "req-123" in text
    assert hint_word in text


@pytest.mark.parametrize("status", [405, 410, 418, 451])
def test_other_4xx_is_plain_api_error(
    flavor: str, client: Any, router: respx.MockRouter, status: int
) -> None:
    route = router.delete("/v1/customers/c1").respond(status, json=SIMPLE)
    err = call_raises(flavor, client, APIError, "DELETE", "/v1/customers/c1")
    assert type(err) is APIError
    assert err.status == status
    assert err.method == "DELETE"
    assert route.call_count == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_raise_internal_server_error_after_retries(
    flavor: str, client: Any, router: respx.MockRouter, clock: Any, status: int
) -> None:
    route = router.get("/v1/customers/c1").respond(
        status, json=SIMPLE, headers={"x-request-id": "req-5xx"}
    )
    err = call_raises(flavor, client, InternalServerError, "GET", "/v1/customers/c1")
    assert route.call_count == 3  # first attempt + max_retries (2)
    assert len(clock.sleeps) == 2
    assert err.status == status
    assert err.request_id == "req-5xx"
    assert "retried" in str(err)


def test_429_raises_rate_limit_error_when_waiting_is_exhausted(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: Any
) -> None:
    client = new_client(max_rate_limit_wait=5)
    route = router.get("/v1/customers/c1").respond(
        429, json=SIMPLE, headers={"retry-after": "2", "x-request-id": "req-429"}
    )
    err = call_raises(flavor, client, RateLimitError, "GET", "/v1/customers/c1")
    # 2 s + 2 s fit in 5 s; a third wait would not, so the third 429 is raised.
    assert route.call_count == 3
    assert clock.sleeps == [2.0, 2.0]
    assert err.status == 429
    assert err.request_id == "req-429"
    assert "max_rate_limit_wait" in str(err)


def test_429_with_zero_wait_budget_raises_at_once(
    flavor: str, new_client: Any, router: respx.MockRouter, clock: Any
) -> None:
    client = new_client(max_rate_limit_wait=0)
    route = router.get("/v1/x").respond(429, headers={"retry-after": "1"})
    call_raises(flavor, client, RateLimitError, "GET", "/v1/x")
    assert route.call_count == 1
    assert clock.sleeps == []


def test_jsonapi_error_shape_with_source_and_sub_errors(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    body = {
        "errors": [
            {
                "status": "400",
                "code": "validation",
                "title": "Invalid body",
                "detail": "emails[0].email is not an email",
                "source": {"pointer": "/data/attributes/emails/0/email"},
                "meta": {
                    "subErrors": [
                        {"code": "format", "detail": "bad format", "source": {"parameter": "email"}},
                        {"message": "too long"},
                    ]
                },
            },
            {"status": "400", "title": "Bad query", "source": {"parameter": "pageSize"}},
        ]
    }
    router.post("/v1/customers").respond(400, json=body)
    err = call_raises(flavor, client, BadRequestError, "POST", "/v1/customers", json={"name": "x"})
    first, second = err.errors
    assert first.status == "400"
    assert first.code == "validation"
    assert first.title == "Invalid body"
    assert first.detail == "emails[0].email is not an email"
    assert first.pointer == "/data/attributes/emails/0/email"
    assert first.parameter is None
    assert [s.code for s in first.sub_errors] == ["format", None]
    assert first.sub_errors[0].parameter == "email"
    assert first.sub_errors[1].message == "too long"
    assert second.parameter == "pageSize"
    text = str(err)
    for part in (
        "Invalid body", "emails[0].email is not an email", "/data/attributes/emails/0/email",
        "bad format", "too long", "Bad query", "pageSize",
    ):
        assert part in text
    assert err.body == body
    assert err.is_duplicate is False


def test_simple_error_shape(flavor: str, client: Any, router: respx.MockRouter) -> None:
    body = {"errors": [{"code": "notFound", "message": "customer not found", "meta": {"id": "c9"}}]}
    router.get("/v1/customers/c9").respond(404, json=body)
    err = call_raises(flavor, client, NotFoundError, "GET", "/v1/customers/c9")
    (detail,) = err.errors
    assert detail.code == "notFound"
    assert detail.message == "customer not found"
    assert detail.meta == {"id": "c9"}
    assert detail.title is None and detail.pointer is None
    assert "customer not found" in str(err)


def test_non_json_error_body_is_kept_as_text(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    router.get("/v1/x").respond(502, text=html, headers={"content-type": "text/html"})
    err = call_raises(flavor, client, InternalServerError, "GET", "/v1/x", max_retries=0)
    assert err.body == html
    assert err.errors == (ErrorDetail(message=html),)
    assert "502 Bad Gateway" in str(err)


def test_empty_error_body(flavor: str, client: Any, router: respx.MockRouter) -> None:
    router.get("/v1/x").respond(403, content=b"")
    err = call_raises(flavor, client, PermissionDeniedError, "GET", "/v1/x")
    assert err.errors == ()
    assert err.body is None
    assert "no error details" in str(err)


def test_401_for_wrong_pod_tells_to_check_region_and_org(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    body = {"errors": [{"status": 401, "title": "Unauthorized",
                        "detail": "Token not valid for this pod (prod2)"}]}
    router.get("/v1/customers/c1").respond(401, json=body)
    err = call_raises(flavor, client, AuthenticationError, "GET", "/v1/customers/c1")
    text = str(err)
    assert "Token not valid for this pod (prod2)" in text
    assert "region" in text
    assert "org=" in text
    assert "API key" in text


@pytest.mark.parametrize(
    ("status", "body", "duplicate"),
    [
        (409, {"errors": [{"title": "Conflict"}]}, True),
        (409, None, True),
        (400, {"errors": [{"code": "duplicate", "message": "duplicate detected"}]}, True),
        (400, {"errors": [{"title": "Invalid", "meta": {"subErrors": [
            {"detail": "email a@b.c already exists"}]}}]}, True),
        (400, {"errors": [{"code": "invalid", "message": "name is too long"}]}, False),
        (422, {"errors": [{"message": "cannot process"}]}, False),
    ],
)
def test_is_duplicate(
    flavor: str, client: Any, router: respx.MockRouter, status: int, body: Any, duplicate: bool
) -> None:
    if body is None:
        router.post("/v1/customers").respond(status)
    else:
        router.post("/v1/customers").respond(status, json=body)
    err = call_raises(flavor, client, APIError, "POST", "/v1/customers", json={"name": "n"})
    assert err.is_duplicate is duplicate


def test_error_headers_and_request_id_alternatives(
    flavor: str, client: Any, router: respx.MockRouter
) -> None:
    router.get("/v1/x").mock(
        return_value=httpx.Response(404, json={}, headers={"x-kustomer-request-id": "k-1"})
    )
    err = call_raises(flavor, client, NotFoundError, "GET", "/v1/x")
    assert err.request_id == "k-1"
    assert err.headers["x-kustomer-request-id"] == "k-1"
