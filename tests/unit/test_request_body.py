"""Request bodies: json= is encoded as httpx would; content= sends bytes encoded once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kustomer_activations import KustomerClient
from kustomer_activations._core.request import RequestSpec, json_array, json_bytes

BODY = [{"name": "Zoë", "custom": {"ltvNum": 2.5, "vipBool": False}, "tags": []}, {"a": None}]


def _core(**options: Any) -> Any:
    return KustomerClient(api_key="k", base_url="http://127.0.0.1:9", **options)._core


def test_json_body_is_what_httpx_sends() -> None:
    request = _core().build_request(RequestSpec(method="POST", path="/v1/x", json=BODY))
    reference = httpx.Request("POST", "http://127.0.0.1:9/v1/x", json=BODY)
    assert request.read() == reference.read() == json_bytes(BODY)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == reference.headers["content-length"]


def test_content_is_sent_as_given() -> None:
    items = [json_bytes(item) for item in BODY]
    body = json_array(items)
    assert body == json_bytes(BODY)
    assert len(body) == 2 + sum(map(len, items)) + len(items) - 1
    request = _core().build_request(RequestSpec(method="PUT", path="/v1/x", content=body))
    assert request.read() == body
    assert request.headers["content-type"] == "application/json"


def test_default_content_type_is_kept() -> None:
    core = _core(default_headers={"content-type": "application/vnd.api+json"})
    request = core.build_request(RequestSpec(method="POST", path="/v1/x", json={}))
    assert request.headers.get_list("content-type") == ["application/vnd.api+json"]


def test_no_body_and_both_bodies() -> None:
    request = _core().build_request(RequestSpec(method="GET", path="/v1/x"))
    assert request.read() == b""
    assert "content-type" not in request.headers
    with pytest.raises(ValueError, match="not both"):
        RequestSpec(method="POST", path="/v1/x", json={}, content=b"{}")
    with pytest.raises(ValueError):
        json_bytes({"x": float("nan")})
