"""Tests of the contract validator itself (tests/contract.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.contract import validate_request


def test_good_bodies_pass() -> None:
    body = {"name": "Ada", "externalId": "a1", "emails": [{"type": "work", "email": "a@x.com"}],
            "company": "5f0000000000000000000001", "custom": {"tierStr": "gold", "scoreNum": 3}}
    assert validate_request("POST", "/v1/customers", body) == []
    assert validate_request("PATCH", "/v1/customers/abc?x=1", body) == []
    assert validate_request("PUT", "/customers/abc?replace=false", body) == []
    assert validate_request("POST", "/v1/companies", {"name": "Acme"}) == []
    assert validate_request("GET", "/v1/customers/externalId=a%2Fb", None) == []
    assert validate_request("GET", "/v1/companies?externalId=x", None) == []
    search = {"queryContext": "customer", "and": [{"customer_externalId": {"in": ["a"]}}]}
    assert validate_request("POST", "/v1/customers/search?page=2&pageSize=500", search) == []


def test_unknown_top_level_field_fails() -> None:
    problems = validate_request("POST", "/v1/customers", {"name": "x", "nickname": "y"})
    assert problems and "nickname" in problems[0]
    assert validate_request("POST", "/v1/customers/search", {"limit": 1})


def test_wrong_path_or_method_fails() -> None:
    assert validate_request("GET", "/v1/customerz", None)
    assert validate_request("PATCH", "/v1/companies/abc", {"name": "abc"})
    assert validate_request("DELETE", "/v1/bulk/abc", None)
    assert validate_request("GET", "/v1/customers", {"name": "x"})  # no body on GET


def test_nullable_is_handled() -> None:
    assert validate_request("PATCH", "/v1/customers/x", {"name": None, "gender": None}) == []
    assert validate_request("PATCH", "/v1/customers/x", {"tags": None})  # not nullable
    assert validate_request("POST", "/v1/companies", {"name": None})


def test_custom_gap_exactly() -> None:
    ok = {"custom": {"tierStr": "a", "renewAt": "2026-01-01T00:00:00Z", "vipBool": True}}
    assert validate_request("POST", "/v1/customers", ok) == []
    assert validate_request("POST", "/v1/customers", {"custom": {"tier": "a"}})
    too_many = {"custom": {f"k{i}Str": "v" for i in range(101)}}
    assert validate_request("POST", "/v1/customers", too_many)
    assert validate_request("PUT", "/v1/companies/x", {"custom": {"sizeNum": 3}}) == []


def test_client_ref_gap_exactly() -> None:
    items: list[dict[str, Any]] = [{"name": "a", "_clientRef": "1"},
                                   {"name": "b", "_clientRef": "2"}]
    assert validate_request("POST", "/v1/customers/bulk", items) == []
    assert validate_request("POST", "/v1/companies/bulk",
                            [{"name": "abc", "_clientRef": "1"}]) == []
    assert validate_request("PUT", "/v1/companies/bulk",
                            [{"id": "x", "_clientRef": "1"}]) == []
    assert validate_request("POST", "/v1/customers/bulk", [{"name": "a", "_clientRef": "x" * 256}])
    assert validate_request("POST", "/v1/customers/bulk",
                            [{"name": "a", "_clientRef": "1"}, {"name": "b"}])
    assert validate_request("POST", "/v1/customers/bulk",
                            [{"name": "a", "_clientRef": "1"}, {"name": "b", "_clientRef": "1"}])
    # not wider: single creates don't take _clientRef
    assert validate_request("POST", "/v1/customers", {"name": "a", "_clientRef": "1"})
    assert validate_request("POST", "/v1/customers/bulk", [{"name": "a"}] * 101)


def test_allow_listed_operations_exactly() -> None:
    assert validate_request("GET", "/v1/bulk/abc", None) == []
    assert validate_request("GET", "/v1/bulk/abc/batches", None) == []
    assert validate_request("GET", "/v1/auth/tokens/current", None) == []
    assert validate_request("POST", "/v1/auth/tokens/current", {})
    assert validate_request("GET", "/v1/bulk/abc", {"x": 1})
    assert validate_request("GET", "/v1/bulk", None)
    assert validate_request("GET", "/v1/users/current", None)


def test_spec_is_cached() -> None:
    validate_request("GET", "/v1/klasses", None)
    start = time.perf_counter()
    for _ in range(200):
        validate_request("POST", "/v1/customers", {"name": "x"})
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("path", ["/v1/klasses/abc", "/v1/metadata/customer"])
def test_ambiguous_templates_union(path: str) -> None:
    assert validate_request("GET", path, None) == []
