"""The emulator's answers have the shapes of real Kustomer payloads.

``tests/data/kustomer-payloads/`` holds response bodies copied from public
material (provenance in its ``SOURCES.md``). For each one the emulator
answers the same request, and every key path of the real payload must exist
in the emulator's answer with a compatible JSON type (``null`` on either side
matches anything; list items are compared through ``[]``). What the emulator
deliberately lacks is listed in an allowlist, one reason per entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from kustomer_activations.testing import KustomerEmulator, Readings, VirtualClock

from .conftest import AUTH

PAYLOADS = Path(__file__).resolve().parent.parent / "data" / "kustomer-payloads"

Paths = dict[str, set[str]]

# Customer fields Kustomer derives from conversations, tracking or its UI; nothing an
# API client writes, and nothing the emulator models.
DISPLAY_ONLY: dict[str, str] = {
    "$.data.attributes.displayColor": "UI decoration picked by Kustomer, never written",
    "$.data.attributes.displayIcon": "UI decoration picked by Kustomer, never written",
    "$.data.attributes.recentLocation": "filled by the chat SDK's location tracking",
    "$.data.attributes.lastMessageIn": "derived from conversations, which are not emulated",
    "$.data.attributes.lastConversation": "derived from conversations, not emulated",
    "$.data.attributes.preview": "derived from conversations, not emulated",
}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def key_paths(value: Any) -> Paths:
    """Every key path of a JSON value → the JSON types seen there (``$`` is the root,
    ``[]`` any list item)."""
    out: Paths = {}

    def walk(v: Any, path: str) -> None:
        out.setdefault(path, set()).add(_kind(v))
        if isinstance(v, dict):
            for key, item in v.items():
                walk(item, f"{path}.{key}")
        elif isinstance(v, list):
            for item in v:
                walk(item, f"{path}[]")

    walk(value, "$")
    return out


def shape_problems(real: Any, emulated: Any, allow: Mapping[str, str] | None = None) -> list[str]:
    """Paths of ``real`` missing from ``emulated`` or of another type, except those
    under an ``allow`` prefix."""
    allow = allow or {}
    want, got = key_paths(real), key_paths(emulated)
    problems = []
    for path, kinds in want.items():
        if any(path == a or path.startswith((a + ".", a + "[]")) for a in allow):
            continue
        if path not in got:
            problems.append(f"missing {path}")
        elif "null" not in kinds and "null" not in got[path] and not kinds & got[path]:
            problems.append(f"{path}: real {sorted(kinds)}, emulator {sorted(got[path])}")
    return problems


def assert_same_shape(real: Any, emulated: Any, allow: Mapping[str, str] | None = None) -> None:
    problems = shape_problems(real, emulated, allow)
    assert not problems, "\n".join(problems)


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


@pytest.fixture(params=["default", "strictest"])
def readings(request: pytest.FixtureRequest) -> Readings:
    return Readings.preset(str(request.param))


def _client(emu: KustomerEmulator) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, transport=emu.transport, headers=AUTH)


@pytest.fixture
def emu_client(readings: Readings) -> Iterator[tuple[KustomerEmulator, httpx.Client]]:
    emu = KustomerEmulator(clock=VirtualClock(), readings=readings)
    with _client(emu) as c:
        yield emu, c


def _json(r: httpx.Response, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()


# -- the comparison itself -------------------------------------------------------------------
def test_the_comparison_catches_missing_keys_and_wrong_types() -> None:
    real = {"a": {"b": 1, "c": [{"d": "x"}], "n": None}, "s": "x"}
    assert shape_problems(real, {"a": {"b": 2, "c": [{"d": "y", "e": 1}], "n": 3}, "s": None}) \
        == []
    assert shape_problems(real, {"a": {"b": "1", "c": [], "n": 1}, "s": "x"}) == [
        "$.a.b: real ['number'], emulator ['string']", "missing $.a.c[]", "missing $.a.c[].d"]
    assert shape_problems(real, {"a": {"b": 1, "c": [{"d": "x"}]}, "s": "x"}) == ["missing $.a.n"]
    assert shape_problems(real, {"s": "x"}, {"$.a": "not modelled"}) == []


def test_every_payload_file_is_covered() -> None:
    covered = {"openapi_customer_get_200.json", "openapi_customer_search_200.json",
               "singer_customer_search_page.json", "openapi_companies_list_200.json",
               "openapi_company_get_200.json", "openapi_customers_bulk_create_201.json",
               "openapi_metadata_customer_200.json", "kdocs_bulk_batches_results.json",
               "kdocs_error_400_simple.json", "openapi_conversation_get_400.json"}
    assert {p.name for p in PAYLOADS.glob("*.json")} == covered
    assert (PAYLOADS / "SOURCES.md").is_file()


# -- customers ---------------------------------------------------------------------------------
def test_customer_get(emu_client: tuple[KustomerEmulator, httpx.Client]) -> None:
    _, c = emu_client
    body = {"name": "John Smith Jr.", "externalId": "my-customer-database-id",
            "externalIds": [{"externalId": "my-customer-database-id", "verified": True}],
            "emails": [{"email": "abu@kustomer.com", "verified": True, "type": "home"}],
            "sharedEmails": [{"email": "abu@kustomer.com", "verified": False, "type": "home"}],
            "lastSeenAt": "2016-11-07T23:23:51.582Z",
            "sentiment": {"polarity": 1, "confidence": 0.649023}}
    ident = _json(c.post("/v1/customers", json=body), 201)["data"]["id"]
    got = _json(c.get(f"/v1/customers/{ident}"))
    assert_same_shape(load("openapi_customer_get_200.json"), got, DISPLAY_ONLY)


def test_customer_search_minimal() -> None:
    real = load("openapi_customer_search_200.json")
    emu = KustomerEmulator(clock=VirtualClock(), readings={"search_hits": "minimal"})
    for name in ("Dave Smith", "Peter Johansen", "Third Person"):
        emu.seed_customer({"name": name, "emails": [{"email": f"{name[0]}@x.com"}]})
    with _client(emu) as c:
        got = _json(c.post("/v1/customers/search", json={}, params={"pageSize": 2}))
    assert_same_shape(real, got)
    # and nothing more than the OpenAPI example in a hit
    for hit in got["data"]:
        assert set(hit) == set(real["data"][0])
        assert set(hit["attributes"]) == set(real["data"][0]["attributes"])
        assert set(hit["relationships"]) == set(real["data"][0]["relationships"])
        assert set(hit["links"]) == set(real["data"][0]["links"])


def test_customer_search_full() -> None:
    real = load("singer_customer_search_page.json")
    emu = KustomerEmulator(clock=VirtualClock())
    for i in range(3):
        emu.seed_customer({
            "name": "First Last", "emails": [{"email": f"first.last{i}@email.com",
                                              "type": "home"}],
            "phones": [{"phone": f"999999999{i}", "type": "mobile"}],
            "custom": {"totalSpentNum": 596, "lastOrderIdNum": 102701236227,
                       "lastOrderNameStr": "#10031672797", "acceptsMarketingBool": True,
                       "ordersCountNum": 1}})
    with _client(emu) as c:
        got = _json(c.post("/v1/customers/search", json={}, params={"pageSize": 1}))
    allow = {k.replace("$.data.", "$.data[]."): v for k, v in DISPLAY_ONLY.items()}
    allow.update({
        "$.data[].attributes.smoochIds": "Sunshine Conversations channel ids, not writable",
        "$.data[].attributes.sla": "SLA engine state, derived from conversations",
        "$.data[].attributes.firstName": "split from name by Kustomer; not modelled",
        "$.data[].attributes.lastName": "split from name by Kustomer; not modelled",
        "$.data[].relationships.shopify-orders": "a custom klass of that org (Shopify app)",
        "$.data[].relationships.sla": "SLA engine state, derived from conversations",
        "$.data[].relationships.slaVersion": "SLA engine state, derived from conversations",
    })
    assert_same_shape(real, got, allow)


# -- companies --------------------------------------------------------------------------------
def test_companies_list_by_external_id(emu_client: tuple[KustomerEmulator, httpx.Client]) -> None:
    emu, c = emu_client
    for name in ("foobar Company Name", "foobar2 Company Name"):
        emu.seed_company({"name": name, "externalId": "foobar", "tags": ["vip"]})
    got = _json(c.get("/v1/companies", params={"externalId": "foobar"}))
    assert len(got["data"]) == 2
    assert_same_shape(load("openapi_companies_list_200.json"), got, {
        # The original example spells the attribute "extenalId" (a typo of the
        # OpenAPI file, kept in the copy); the emulator answers "externalId".
        "$.data[].attributes.extenalId": "typo in the original example",
    })
    assert all(d["attributes"]["externalId"] == "foobar" for d in got["data"])


def test_company_get(emu_client: tuple[KustomerEmulator, httpx.Client]) -> None:
    emu, c = emu_client
    co = emu.seed_company({"name": "Updated Company Name", "tags": ["vip"]})
    got = _json(c.get(f"/v1/companies/{co}"))
    assert_same_shape(load("openapi_company_get_200.json"), got)


# -- bulk -------------------------------------------------------------------------------------
def test_customers_bulk_create_201(emu_client: tuple[KustomerEmulator, httpx.Client]) -> None:
    emu, c = emu_client
    got = _json(c.post("/v1/customers/bulk", json=[{"name": "Customer1"},
                                                   {"name": "Customer2"}]), 201)
    allow = {"$.data.attributes.payload": "an echo of the request and its caller; not "
                                          "modelled, to keep status polls small"}
    assert_same_shape(load("openapi_customers_bulk_create_201.json"), got, allow)
    emu.clock.sleep(10)
    status = _json(c.get(f"/v1/bulk/{got['data']['id']}"))
    assert status["data"]["attributes"]["status"] == "complete"
    assert_same_shape(load("openapi_customers_bulk_create_201.json"), status, allow)


def test_bulk_batches_documented(emu_client: tuple[KustomerEmulator, httpx.Client]) -> None:
    emu, c = emu_client
    emu.seed_customer({"externalId": "taken"})
    job = _json(c.post("/v1/customers/bulk", json=[
        {"name": "One", "externalId": "new", "_clientRef": "crm-001"},
        {"name": "Two", "externalId": "taken", "_clientRef": "crm-002"}]), 201)["data"]["id"]
    emu.clock.sleep(10)
    got = _json(c.get(f"/v1/bulk/{job}/batches"))
    real = load("kdocs_bulk_batches_results.json")
    assert_same_shape(real, got)
    assert [sorted(r) for r in got[0]["results"]] == [sorted(r) for r in real[0]["results"]]
    assert got[0]["results"][1] == real[0]["results"][1]
    # the guide's diagram: a batch also carries its counts and ids
    assert {"successCount", "failureCount", "objectIds", "results"} == set(got[0])


# -- metadata ---------------------------------------------------------------------------------
def test_metadata_customer(emu_client: tuple[KustomerEmulator, httpx.Client]) -> None:
    emu, c = emu_client
    emu.define_custom_attribute("customer", "shopifyCustomerIdNum", "Shopify Customer Id")
    emu.define_custom_attribute("customer", "myCustomStr", "My Custom String!",
                                enumeration=["option one", "option two", "option three"])
    emu.define_custom_attribute("customer", "ordersId", "Orders", target="kobject.order",
                                multi=True)
    got = _json(c.get("/v1/metadata/customer"))
    real = load("openapi_metadata_customer_200.json")
    assert_same_shape(real, got)
    props = got["data"]["attributes"]["properties"]
    for name, spec in real["data"]["attributes"]["properties"].items():
        assert props[name]["type"] == spec["type"], name


# -- errors -----------------------------------------------------------------------------------
def test_error_simple_shape(emu_client: tuple[KustomerEmulator, httpx.Client]) -> None:
    _, c = emu_client
    r = c.post("/v1/customers/search", json={"queryContext": "conversation"})
    got = _json(r, 400)
    assert_same_shape(load("kdocs_error_400_simple.json"), got)
    assert set(got["errors"][0]) == {"code", "message", "meta"}


def test_error_jsonapi_shape(emu_client: tuple[KustomerEmulator, httpx.Client]) -> None:
    _, c = emu_client
    got = _json(c.post("/v1/customers", json={"name": "x", "nickname": "y"}), 400)
    assert_same_shape(load("openapi_conversation_get_400.json"), got, {
        "$.errors[].source.parameters": "the example's (placeholder) query-parameter source; "
                                        "the emulator's JSON:API errors point at body fields "
                                        "with source.pointer, and its query-parameter errors "
                                        "use the simple shape with meta.parameter",
    })
