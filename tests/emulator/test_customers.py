"""Customers and companies: CRUD, lookups, uniqueness, the update traps."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from kustomer_activations.testing import KustomerEmulator


def _create(client: httpx.Client, **body: Any) -> dict[str, Any]:
    r = client.post("/v1/customers", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def test_create_and_get_envelope(client: httpx.Client, emu: KustomerEmulator) -> None:
    c = _create(client, name="Ada", emails=[{"type": "work", "email": "ada@x.com"}])
    assert c["type"] == "customer" and len(c["id"]) == 24
    int(c["id"], 16)
    a = c["attributes"]
    assert a["emails"] == [{"type": "work", "email": "ada@x.com", "verified": False,
                            "id": None}]
    assert a["rev"] == 1 and a["displayName"] == "Ada"
    assert a["createdAt"] == "2027-01-15T08:00:00.000Z" == a["updatedAt"]
    assert c["links"]["self"] == f"/v1/customers/{c['id']}"
    got = client.get(f"/v1/customers/{c['id']}").json()["data"]
    assert got["attributes"] == a
    assert emu.customers[c["id"]]["name"] == "Ada"
    assert client.get("/v1/customers/ffffffffffffffffffffffff").status_code == 404


@pytest.mark.parametrize("key", ["a/b", "q?x=1", "h#t", "100%", "k=v", "sp ace", "ü"])
def test_lookup_by_external_id_with_reserved_characters(client: httpx.Client, key: str) -> None:
    c = _create(client, externalId=key)
    r = client.get("/v1/customers/externalId=" + quote(key, safe=""))
    assert r.status_code == 200 and r.json()["data"]["id"] == c["id"]
    assert client.get("/v1/customers/externalId=" + quote(key + "x", safe="")).status_code == 404


def test_lookup_by_email_any_and_case_insensitive_and_phone(client: httpx.Client) -> None:
    c = _create(client, emails=[{"email": "one@x.com"}, {"email": "Two@X.com"}],
                phones=[{"type": "mobile", "phone": "+15551234"}])
    for email in ("one@x.com", "two@x.com", "TWO@x.COM"):
        r = client.get("/v1/customers/email=" + quote(email, safe=""))
        assert r.status_code == 200 and r.json()["data"]["id"] == c["id"]
    assert client.get("/v1/customers/email=none@x.com").status_code == 404
    r = client.get("/v1/customers/phone=" + quote("+15551234", safe=""))
    assert r.json()["data"]["id"] == c["id"]


@pytest.mark.parametrize("second", [
    {"externalId": "dup"}, {"emails": [{"email": "DUP@x.com"}]},
    {"phones": [{"phone": "+1999"}]}])
def test_uniqueness_is_409_duplicate(client: httpx.Client, emu: KustomerEmulator,
                                     second: dict[str, Any]) -> None:
    _create(client, externalId="dup", emails=[{"email": "dup@x.com"}], phones=[{"phone": "+1999"}])
    r = client.post("/v1/customers", json=second)
    assert r.status_code == 409
    err = r.json()["errors"][0]
    assert err["code"] == "duplicate" and err["title"] == "duplicate detected"
    assert len(emu.customers) == 1
    other = _create(client, name="other")
    r = client.patch(f"/v1/customers/{other['id']}", json=second)
    assert r.status_code == 409


def test_validation_errors_are_jsonapi_with_pointer(client: httpx.Client) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"nickname": "x"}, "/nickname"),
        ({"name": "x" * 257}, "/name"),
        ({"externalId": ""}, "/externalId"),
        ({"emails": [{"email": f"e{i}@x.com"} for i in range(11)]}, "/emails"),
        ({"emails": [{"email": "a@x.com", "type": "mobile"}]}, "/emails/0/type"),
        ({"custom": {f"k{i}Str": "v" for i in range(101)}}, "/custom"),
    ]
    for body, pointer in cases:
        r = client.post("/v1/customers", json=body)
        assert r.status_code == 400, body
        err = r.json()["errors"][0]
        assert err["status"] == "400" and err["source"]["pointer"] == pointer
        assert err["meta"]["subErrors"]
    assert _create(client, name="x" * 256)


@pytest.mark.parametrize(("name", "value", "ok"), [
    ("tierStr", "gold", True), ("tierStr", "x" * 1025, False), ("tierStr", 3, False),
    ("notesTxt", "x" * 1024, True), ("notesTxt", "x" * 1025, False), ("scoreNum", 1.5, True),
    ("scoreNum", True, False),
    ("scoreNum", "1", False), ("renewAt", "2026-01-02T03:04:05Z", True),
    ("renewAt", "tomorrow", False), ("vipBool", False, True), ("vipBool", 0, False),
    ("homeUrl", "https://x.com/a", True), ("homeUrl", "not a url", False),
    ("orderId", "abc", True), ("tier", "gold", False), ("tierString", "gold", False),
    ("tierStr", None, True),
])
def test_custom_attribute_suffix_types(client: httpx.Client, name: str, value: Any,
                                       ok: bool) -> None:
    r = client.post("/v1/customers", json={"custom": {name: value}})
    assert r.status_code == (201 if ok else 400), r.text
    if not ok:
        assert r.json()["errors"][0]["source"]["pointer"] == f"/custom/{name}"


def test_update_without_company_unlinks_it(client: httpx.Client, emu: KustomerEmulator) -> None:
    co = client.post("/v1/companies", json={"name": "Acme"}).json()["data"]["id"]
    c = _create(client, name="Ada", company=co)
    assert c["relationships"]["company"]["data"] == {"type": "company", "id": co}
    r = client.patch(f"/v1/customers/{c['id']}", json={"name": "Ada L"})
    assert r.json()["data"]["relationships"]["company"]["data"] is None
    assert emu.customers[c["id"]]["company"] is None
    r = client.put(f"/v1/customers/{c['id']}", json={"name": "Ada", "company": co})
    assert emu.customers[c["id"]]["company"] == co
    client.put(f"/v1/customers/{c['id']}?replace=false", json={"name": "Ada"})
    assert emu.customers[c["id"]]["company"] is None
    r = client.patch(f"/v1/customers/{c['id']}", json={"company": "0" * 24})
    assert r.status_code == 400


def test_put_replace_false_merges_true_replaces(client: httpx.Client,
                                               emu: KustomerEmulator) -> None:
    c = _create(client, name="Ada", externalId="a1", tags=["x"],
                emails=[{"email": "a@x.com"}], custom={"tierStr": "gold", "scoreNum": 3})
    ident = c["id"]
    r = client.put(f"/v1/customers/{ident}?replace=false",
                   json={"emails": [{"email": "b@x.com"}], "custom": {"scoreNum": None,
                                                                     "vipBool": True}})
    a = r.json()["data"]["attributes"]
    assert a["name"] == "Ada" and a["externalId"] == "a1" and a["tags"] == ["x"]
    assert [e["email"] for e in a["emails"]] == ["b@x.com"]  # arrays replace
    assert a["custom"] == {"tierStr": "gold", "vipBool": True}  # custom merges, null clears
    assert a["rev"] == 2
    # the old email is free again, the new one is taken
    assert client.get("/v1/customers/email=a@x.com").status_code == 404
    r = client.put(f"/v1/customers/{ident}?replace=true", json={"name": "New"})
    a = r.json()["data"]["attributes"]
    assert a["name"] == "New" and a["externalId"] is None and a["emails"] == []
    assert a["custom"] == {} and a["tags"] == [] and a["rev"] == 3
    assert a["createdAt"] == c["attributes"]["createdAt"]
    assert client.get("/v1/customers/externalId=a1").status_code == 404
    assert emu.customers[ident]["name"] == "New"


def test_update_unknown_id_404(client: httpx.Client) -> None:
    r = client.patch("/v1/customers/" + "0" * 24, json={"name": "x"})
    assert r.status_code == 404 and r.json()["errors"][0]["status"] == "404"


def test_company_name_length_and_required(client: httpx.Client) -> None:
    assert client.post("/v1/companies", json={"name": "ab"}).status_code == 400
    assert client.post("/v1/companies", json={"name": "x" * 256}).status_code == 400
    assert client.post("/v1/companies", json={"externalId": "x"}).status_code == 400
    assert client.post("/v1/companies", json={"name": "abc"}).status_code == 201
    assert client.post("/v1/companies", json={"name": "x" * 255}).status_code == 201


def test_company_external_id_list_and_filter_quirk(client: httpx.Client,
                                                   emu: KustomerEmulator) -> None:
    a = emu.seed_company({"name": "Dup One", "externalId": "dup"})
    b = emu.seed_company({"name": "Dup Two", "externalId": "dup"})
    client.post("/v1/companies", json={"name": "Solo", "externalId": "solo"})
    client.post("/v1/companies", json={"name": "Other"})

    def ids(params: dict[str, str]) -> list[str]:
        r = client.get("/v1/companies", params=params)
        assert r.status_code == 200
        return [d["id"] for d in r.json()["data"]]

    assert ids({"externalId": "dup"}) == [a, b]
    assert len(ids({"externalId": "solo"})) == 1
    assert ids({"externalId": "none"}) == []
    assert len(ids({"filter": "dup"})) == 2
    # the quirk: externalId together with filter -> both ignored -> everything
    assert len(ids({"externalId": "solo", "filter": "solo"})) == 4


def test_company_put_merges_and_get(client: httpx.Client) -> None:
    co = client.post("/v1/companies", json={"name": "Acme", "externalId": "c1",
                                            "custom": {"tierStr": "a"}}).json()["data"]
    r = client.put(f"/v1/companies/{co['id']}", json={"custom": {"sizeNum": 5}})
    a = r.json()["data"]["attributes"]
    assert a["name"] == "Acme" and a["custom"] == {"tierStr": "a", "sizeNum": 5}
    assert client.get(f"/v1/companies/{co['id']}").json()["data"]["attributes"] == a
    assert client.patch(f"/v1/companies/{co['id']}", json={}).status_code == 405


def test_seed_uniqueness_and_inspection(emu: KustomerEmulator) -> None:
    ident = emu.seed_customer({"name": "S", "emails": [{"email": "s@x.com"}]})
    with pytest.raises(ValueError, match="duplicate"):
        emu.seed_customer({"emails": [{"email": "S@x.com"}]})
    assert emu.find_customers(email="S@X.com")[0]["id"] == ident
    assert emu.customers.get(ident) is not None and len(emu.customers.all()) == 1


def test_both_error_shapes_occur(client: httpx.Client) -> None:
    simple = client.get("/v1/customers/" + "0" * 24).json()["errors"][0]
    assert set(simple) == {"code", "message", "meta"}
    jsonapi = client.post("/v1/customers", json={"bad": 1}).json()["errors"][0]
    assert {"status", "code", "title", "detail", "source", "meta"} <= set(jsonapi)


def test_unknown_route_and_bad_json(client: httpx.Client) -> None:
    assert client.get("/v1/nothing").status_code == 404
    r = client.post("/v1/customers", content=b"{not json")
    assert r.status_code == 400
