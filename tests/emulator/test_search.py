"""Search: operators, paging, caps, eventual consistency, the 2-year window."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kustomer_activations.testing import KustomerEmulator, VirtualClock

from .conftest import AUTH


def _search(client: httpx.Client, body: dict[str, Any], **params: Any) -> httpx.Response:
    return client.post("/v1/customers/search", json=body, params=params)


def _ids(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [d["id"] for d in r.json()["data"]]


@pytest.fixture
def people(emu: KustomerEmulator) -> list[str]:
    return [emu.seed_customer({
        "name": f"Person {i}", "externalId": f"p{i}", "emails": [{"email": f"P{i}@x.com"}],
        "custom": {"tierStr": "gold" if i % 2 else "basic", "scoreNum": i,
                   "renewAt": f"2026-0{1 + i % 9}-01T00:00:00Z"}}) for i in range(10)]


def test_operators(client: httpx.Client, people: list[str]) -> None:
    q = "customer"
    assert _ids(_search(client, {"queryContext": q,
                                 "and": [{"customer_externalId": {"equals": "p3"}}]})) == [people[3]]
    assert _ids(_search(client, {"and": {"customer_email": {"equals": "p4@X.COM"}}})) == [people[4]]
    assert _ids(_search(client, {"and": [{"customer_externalId": {"in": ["p1", "p2", "zz"]}}]})) \
        == people[1:3]
    assert len(_ids(_search(client, {"and": [{"customer_custom_tierStr": {"equals": "gold"}}]}))) == 5
    assert _ids(_search(client, {"and": [{"customer_custom_scoreNum": {"gte": 8}}]})) == people[8:]
    assert _ids(_search(client, {"and": [{"customer_custom_scoreNum": {"lt": 1}}]})) == people[:1]
    assert _ids(_search(client, {"and": [{"customer_name": {"contains": "son 7"}}]})) == [people[7]]
    assert _ids(_search(client, {"and": [{"customer_custom_renewAt": {
        "gt": "2026-08-15T00:00:00Z"}}]})) == [people[8]]
    assert _ids(_search(client, {"and": [{"customer_custom_vipBool": {"not_set": True}}]})) \
        == people
    assert _ids(_search(client, {"or": [{"customer_externalId": {"equals": "p1"}},
                                        {"customer_custom_scoreNum": {"equals": 9}}]})) \
        == [people[1], people[9]]
    got = _ids(_search(client, {"and": [{"customer_custom_tierStr": {"equals": "gold"}}],
                                "not": [{"customer_externalId": {"in": ["p1", "p3"]}}]}))
    assert got == [people[5], people[7], people[9]]
    nested = {"and": [{"or": [{"customer_externalId": {"equals": "p2"}},
                              {"customer_externalId": {"equals": "p6"}}]},
                      {"customer_custom_scoreNum": {"gt": 3}}]}
    assert _ids(_search(client, nested)) == [people[6]]


def test_in_with_many_values(client: httpx.Client, emu: KustomerEmulator) -> None:
    for i in range(600):
        emu.seed_customer({"externalId": f"k{i}"})
    values = [f"k{i}" for i in range(0, 600, 2)] + [f"missing{i}" for i in range(200)]
    r = _search(client, {"and": [{"customer_externalId": {"in": values}}]}, pageSize=500)
    assert r.json()["meta"]["total"] == 300 and len(r.json()["data"]) == 300


def test_bad_searches_are_400(client: httpx.Client, people: list[str]) -> None:
    bad: list[dict[str, Any]] = [
        {"and": [{"customer_shoeSize": {"equals": 1}}]},
        {"and": [{"customer_externalId": {"like": "p"}}]},
        {"and": [{"company_name": {"equals": "x"}}]},
        {"and": [{"customer_externalId": {"equals": f"p{i}"}} for i in range(21)]},
        {"queryContext": "customer", "limit": 5},
        {"queryContext": "conversation"},
    ]
    for body in bad:
        r = _search(client, body)
        assert r.status_code == 400, body
        assert set(r.json()["errors"][0]) == {"code", "message", "meta"}


def test_paging_meta_links_and_caps(client: httpx.Client, people: list[str]) -> None:
    r = _search(client, {"queryContext": "customer"}, page=2, pageSize=3)
    body = r.json()
    assert _ids(r) == people[3:6]
    assert body["meta"] == {"pageSize": 3, "page": 2, "total": 10, "totalPages": 4,
                            "aggregations": {}, "timed_out": False}
    assert body["links"]["next"] == "/v1/customers/search?page=3&pageSize=3"
    assert body["links"]["prev"] == "/v1/customers/search?page=1&pageSize=3"
    assert _search(client, {}).json()["meta"]["pageSize"] == 100
    assert _search(client, {}, pageSize=500).status_code == 200
    assert _search(client, {}, pageSize=501).status_code == 400
    assert _search(client, {}, page=100, pageSize=1).status_code == 200
    assert _search(client, {}, page=101, pageSize=1).status_code == 400


def test_company_context(client: httpx.Client, emu: KustomerEmulator) -> None:
    a = emu.seed_company({"name": "Alpha", "externalId": "ca", "custom": {"regionStr": "eu"}})
    emu.seed_company({"name": "Beta", "externalId": "cb"})
    body = {"queryContext": "company", "and": [{"company_custom_regionStr": {"equals": "eu"}}]}
    r = _search(client, body)
    assert _ids(r) == [a] and r.json()["data"][0]["type"] == "company"
    bad = {"queryContext": "company", "and": [{"customer_externalId": {"equals": "x"}}]}
    assert _search(client, bad).status_code == 400


def test_search_lag() -> None:
    clock = VirtualClock()
    emu = KustomerEmulator(clock=clock, search_lag=5.0)
    with httpx.Client(base_url=emu.base_url, transport=emu.transport, headers=AUTH) as c:
        ident = c.post("/v1/customers", json={"externalId": "lag", "custom": {"tierStr": "a"}}
                       ).json()["data"]["id"]
        q = {"and": [{"customer_externalId": {"equals": "lag"}}]}
        assert _ids(_search(c, q)) == []  # new: invisible
        assert c.get("/v1/customers/externalId=lag").status_code == 200  # reads are immediate
        clock.advance(5)
        assert _ids(_search(c, q)) == [ident]
        c.patch(f"/v1/customers/{ident}", json={"custom": {"tierStr": "b"}})
        old = {"and": [{"customer_custom_tierStr": {"equals": "a"}}]}
        new = {"and": [{"customer_custom_tierStr": {"equals": "b"}}]}
        assert _ids(_search(c, old)) == [ident] and _ids(_search(c, new)) == []
        clock.advance(5)
        assert _ids(_search(c, old)) == [] and _ids(_search(c, new)) == [ident]


def test_only_last_two_years_searchable(client: httpx.Client, emu: KustomerEmulator) -> None:
    old = emu.seed_customer({"externalId": "old", "updatedAt": "2020-01-01T00:00:00Z"})
    new = emu.seed_customer({"externalId": "new"})
    assert _ids(_search(client, {})) == [new]
    assert old in emu.customers
    assert client.get("/v1/customers/externalId=old").status_code == 200
