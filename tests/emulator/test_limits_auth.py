"""Auth, roles, metadata, token endpoint, rate-limit windows."""

from __future__ import annotations

import httpx
import pytest

from kustomer_activations.testing import (
    DEFAULT_ROLES,
    KustomerEmulator,
    TokenSpec,
    VirtualClock,
)

from .conftest import AUTH


def _client(emu: KustomerEmulator, key: str | None = "test-key") -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=emu.base_url, transport=emu.transport, headers=headers)


def test_auth_required(emu: KustomerEmulator) -> None:
    with _client(emu, None) as c:
        r = c.get("/v1/auth/tokens/current")
        assert r.status_code == 401 and "x-ratelimit-limit" in r.headers
    with _client(emu, "") as c:
        assert c.get("/v1/customers/" + "0" * 24).status_code == 401


def test_known_keys_and_wrong_region() -> None:
    emu = KustomerEmulator(clock=VirtualClock(), api_keys={
        "good": TokenSpec(), "eu-key": TokenSpec(region="eu"), "reader": ["org.admin.search.read"]})
    with _client(emu, "good") as c:
        assert c.get("/v1/auth/tokens/current").status_code == 200
    with _client(emu, "unknown") as c:
        assert c.get("/v1/auth/tokens/current").status_code == 401
    with _client(emu, "eu-key") as c:
        r = c.get("/v1/auth/tokens/current")
        assert r.status_code == 401
        msg = r.json()["errors"][0]["message"]
        assert "prod2" in msg and "https://api.prod2.kustomerapp.com" in msg
    with _client(emu, "reader") as c:
        assert c.post("/v1/customers", json={"name": "x"}).status_code == 403
        assert c.post("/v1/customers/search", json={}).status_code == 200


def test_token_endpoint_reports_roles(client: httpx.Client) -> None:
    data = client.get("/v1/auth/tokens/current").json()["data"]
    assert data["type"] == "token" and len(data["id"]) == 24
    assert data["attributes"]["roles"] == list(DEFAULT_ROLES)
    assert data["attributes"]["orgName"] == "acme"


@pytest.mark.parametrize(("roles", "request_", "status"), [
    ([], ("POST", "/v1/customers", {"name": "x"}), 403),
    (["org.permission.customer"], ("POST", "/v1/customers", {"name": "x"}), 201),
    (["org.user.customer.read"], ("POST", "/v1/customers", {"name": "x"}), 403),
    (["org.user.customer.read"], ("GET", "/v1/customers/externalId=x", None), 404),
    (["org.user.customer.write"], ("POST", "/v1/companies", {"name": "abc"}), 403),
    (["org.permission.company.create"], ("POST", "/v1/companies", {"name": "abc"}), 201),
    (["org.user.customer.write"], ("POST", "/v1/customers/search", {}), 403),
    (["org.user.customer.write"], ("GET", "/v1/metadata/customer", None), 403),
    (["org.admin.metadata.read"], ("GET", "/v1/metadata/customer", None), 200),
    ([], ("GET", "/v1/klasses", None), 403),
    ([], ("GET", "/v1/auth/tokens/current", None), 200),
    (["org.admin"], ("POST", "/v1/companies/bulk", [{"name": "abc"}]), 201),
])
def test_roles(roles: list[str], request_: tuple[str, str, object], status: int) -> None:
    emu = KustomerEmulator(clock=VirtualClock(), roles=roles)
    method, path, body = request_
    with _client(emu) as c:
        assert c.request(method, path, json=body).status_code == status


def test_metadata_and_klasses(client: httpx.Client, emu: KustomerEmulator) -> None:
    emu.define_custom_attribute("customer", "tierStr", displayName="Tier")
    emu.define_custom_attribute("company", "sizeNum")
    props = client.get("/v1/metadata/customer").json()["data"]["attributes"]["properties"]
    assert props == {"tierStr": {"type": "string", "displayName": "Tier",
                                 "updatedAt": "2027-01-15T08:00:00.000Z",
                                 "modifiedAt": "2027-01-15T08:00:00.000Z",
                                 "modifiedBy": "5f0000000000000000000002"}}
    props = client.get("/v1/metadata/company").json()["data"]["attributes"]["properties"]
    assert props["sizeNum"]["type"] == "number"
    with pytest.raises(ValueError):
        emu.define_custom_attribute("customer", "noSuffix")
    # undefined names with a valid suffix are still accepted on write
    assert client.post("/v1/customers", json={"custom": {"otherStr": "x"}}).status_code == 201
    names = [k["attributes"]["name"] for k in client.get("/v1/klasses").json()["data"]]
    assert "customer" in names and "company" in names


def test_rate_window_headers_and_429() -> None:
    clock = VirtualClock(start=1_800_000_030.0)
    emu = KustomerEmulator(requests_per_minute=3, clock=clock)
    with _client(emu) as c:
        seen = [c.get("/v1/klasses") for _ in range(4)]
        assert [r.status_code for r in seen] == [200, 200, 200, 429]
        assert [r.headers["x-ratelimit-remaining"] for r in seen] == ["2", "1", "0", "0"]
        assert all(r.headers["x-ratelimit-limit"] == "3" for r in seen)
        assert all(r.headers["x-ratelimit-reset"] == "1800000060" for r in seen)
        assert seen[3].headers["retry-after"] == "30"
        assert seen[3].json()["errors"][0]["code"] == "rate_limited"
        clock.advance(29.5)
        r = c.get("/v1/klasses")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"  # ceil(0.5)
        clock.advance(0.5)  # new window
        r = c.get("/v1/klasses")
        assert r.status_code == 200 and r.headers["x-ratelimit-remaining"] == "2"
        assert r.headers["x-ratelimit-reset"] == "1800000120"
    assert emu.rate_limited == 2


def test_429_does_not_consume_and_search_budget() -> None:
    clock = VirtualClock(start=1_800_000_000.0)
    emu = KustomerEmulator(requests_per_minute=10, searches_per_minute=2, clock=clock)
    with _client(emu) as c:
        codes = [c.post("/v1/customers/search", json={}).status_code for _ in range(4)]
        assert codes == [200, 200, 429, 429]
        # 2 searches spent 2 of the org budget; the 429s spent nothing
        r = c.get("/v1/klasses")
        assert r.status_code == 200 and r.headers["x-ratelimit-remaining"] == "7"
    assert emu.rate_limited == 2


def test_bulk_and_pages_count_one_each(client: httpx.Client, emu: KustomerEmulator) -> None:
    client.post("/v1/customers/bulk", json=[{"name": f"n{i}"} for i in range(100)])
    r = client.get("/v1/companies", params={"page": 1})
    assert r.headers["x-ratelimit-remaining"] == "998"
    assert emu.counts_by_endpoint() == {"POST /v1/customers/bulk": 1, "GET /v1/companies": 1}
    assert emu.count("POST") == 1 and emu.count(path_prefix="/v1/companies") == 1


def test_request_log_and_observer(emu: KustomerEmulator) -> None:
    seen: list[tuple[str, str, object]] = []
    emu.on_request(lambda m, p, q, b: seen.append((m, p, b)))
    with httpx.Client(base_url=emu.base_url, transport=emu.transport, headers=AUTH) as c:
        c.post("/v1/customers", json={"name": "x"}, params={"a": "1"})
    rec = emu.requests[0]
    assert (rec.method, rec.path, rec.query, rec.body, rec.status) == (
        "POST", "/v1/customers", {"a": "1"}, {"name": "x"}, 201)
    assert rec.time == emu.clock.now() and rec.fault is None
    assert seen == [("POST", "/v1/customers", {"name": "x"})]
    quiet = KustomerEmulator(clock=VirtualClock(), log_bodies=False)
    with httpx.Client(base_url=quiet.base_url, transport=quiet.transport, headers=AUTH) as c:
        c.post("/v1/customers", json={"name": "x"})
    assert quiet.requests[0].body is None
