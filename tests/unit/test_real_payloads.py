"""Real Kustomer response bodies (tests/data/kustomer-payloads, see SOURCES.md there) decode.

The emulator's answers to the same requests are compared with these shapes in
tests/emulator/test_payload_shapes.py; here the SDK reads each body.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from kustomer_activations import Company, Customer, CustomSchema, SyncKey
from kustomer_activations._core.response import decode_error
from kustomer_activations.upsert.batch import _job_status, _results
from kustomer_activations.upsert.readback import key_visible

PAYLOADS = Path(__file__).parent.parent / "data" / "kustomer-payloads"


def load(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text(encoding="utf-8"))


def test_customer_get() -> None:
    c = Customer.from_api(load("openapi_customer_get_200.json"))
    assert (c.id, c.name, c.external_id, c.rev) == (
        "58210c3db0f09110006b7953", "John Smith Jr.", "my-customer-database-id", 37)
    assert c.default_email == "abu@kustomer.com"
    assert c.tags == () and c.custom == {}
    # No company link anywhere in the published example: unknown, not "none".
    assert c.company_id is None and c.company_known is False
    assert "sharedEmails" in c.attributes and c.updated_at is not None


def test_search_hits_without_key_attributes_are_unconfirmed() -> None:
    body = load("openapi_customer_search_200.json")
    hits = [Customer.from_api(h) for h in body["data"]]
    assert [h.name for h in hits] == ["Dave Smith", "Peter Johansen"]
    for key in (SyncKey.external_id(), SyncKey.email(), SyncKey.custom("tierStr")):
        assert not any(key_visible(h, key) for h in hits)  # must be read by id, never "no match"
    assert body["links"]["next"]  # paging continues through links.next


def test_full_search_hit() -> None:
    hit = Customer.from_api(load("singer_customer_search_page.json")["data"][0])
    assert key_visible(hit, SyncKey.email()) and key_visible(hit, SyncKey.custom("totalSpentNum"))
    assert SyncKey.email().value_of(hit) == ["first.last@email.com"]
    assert SyncKey.custom("lastOrderIdNum").value_of(hit) == ["102701236227"]
    assert hit.phones[0].phone == "9999999999"
    assert not key_visible(hit, SyncKey.external_id())  # no externalId attribute in it


def test_company_list_and_get() -> None:
    listed = [Company.from_api(c) for c in load("openapi_companies_list_200.json")["data"]]
    assert [c.name for c in listed] == ["foobar Company Name", "foobar2 Company Name"]
    # The original spells it "extenalId": the key is not shown, so the entry is unconfirmed.
    assert listed[0].external_id is None
    assert not key_visible(listed[0], SyncKey.external_id())
    company = Company.from_api(load("openapi_company_get_200.json"))
    assert company.tags == ("58224d97d4e96711004ecc56",)  # tags come back as ids
    assert company.domains == () and company.custom == {}


def test_bulk_job_and_results() -> None:
    job = load("openapi_customers_bulk_create_201.json")
    assert _job_status(job["data"]) == "complete"
    results = _results(load("kdocs_bulk_batches_results.json"))
    assert [(r["_clientRef"], r["status"]) for r in results] == [
        ("crm-001", "created"), ("crm-002", "error")]
    assert results[1]["error"] == "duplicate detected"


def test_metadata_with_a_multi_valued_id() -> None:
    schema = CustomSchema.from_api(load("openapi_metadata_customer_200.json"))
    assert schema.names == {"shopifyCustomerIdNum", "myCustomStr", "ordersId"}
    assert schema.attributes["ordersId"].raw["multi"] is True
    assert schema.attributes["myCustomStr"].enumeration == ("option one", "option two",
                                                            "option three")


def _error(name: str, status: int) -> Any:
    request = httpx.Request("GET", "https://acme.api.kustomerapp.com/v1/x")
    response = httpx.Response(status, json=load(name), request=request)
    return decode_error(response, path="/v1/x")


def test_error_shapes() -> None:
    simple = _error("kdocs_error_400_simple.json", 400)
    assert simple.status == 400 and simple.errors[0].code == "bad_request"
    assert "Invalid request body" in str(simple)
    jsonapi = _error("openapi_conversation_get_400.json", 400)
    assert len(jsonapi.errors) == 2
    assert jsonapi.errors[0].parameter == "<string>"  # source.parameters (plural) is read
    assert jsonapi.errors[0].status == "<integer>"
