"""Customer / Company / Email / Phone decoding from Kustomer resources."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import attrs
import pytest

from kustomer_activations.models import Company, Customer, Email, Phone


def test_customer_from_openapi_example(customer_example: dict[str, Any]) -> None:
    c = Customer.from_api(customer_example["data"])
    assert c.id == "58210c3db0f09110006b7953"
    assert c.name == "John Smith Jr."
    assert c.external_id == "my-customer-database-id"
    assert c.username is None
    assert c.emails == (Email("abu@kustomer.com", "home", True),)
    assert c.default_email == "abu@kustomer.com"
    assert c.phones == ()
    assert c.tags == ()
    assert c.company_id is None
    assert c.created_at == datetime(2016, 11, 7, 23, 20, 29, 80000, tzinfo=timezone.utc)
    assert c.updated_at == datetime(2016, 11, 9, 4, 47, 7, 36000, tzinfo=timezone.utc)
    assert c.rev == 37
    # unknown attributes are kept, not dropped
    assert c.attributes["presence"] == "offline"
    assert c.attributes["conversationCounts"]["open"] == 2
    assert c.relationships["org"]["data"]["id"] == "57f29863a1dbf61100e6aa92"


def test_customer_from_envelope_is_unwrapped(customer_example: dict[str, Any]) -> None:
    assert Customer.from_api(customer_example).id == "58210c3db0f09110006b7953"


def test_customer_full_payload() -> None:
    c = Customer.from_api(
        {
            "type": "customer",
            "id": "c1",
            "attributes": {
                "name": "Ada",
                "externalId": "u-1",
                "username": "ada",
                "emails": [
                    {"email": "a@x.io", "type": "work"},
                    {"email": "b@x.io", "type": "brandNewType", "verified": False},
                ],
                "phones": [{"phone": "+15550001", "type": "home"}, {"phone": "+15550002"}],
                "tags": ["vip", "beta"],
                "custom": {"tierStr": "gold", "scoreNum": 5},
                "locale": "en_US",
                "timeZone": "Europe/Paris",
                "createdAt": "2024-05-01T10:00:00Z",
                "updatedAt": "2024-05-01T10:00:00.123456+02:00",
                "rev": 3,
                "company": "flat-co",
                "someFutureField": {"x": 1},
            },
            "relationships": {"company": {"data": {"type": "company", "id": "co-9"}}},
            "links": {"self": "/v1/customers/c1"},
        }
    )
    assert c.emails[1] == Email("b@x.io", "brandNewType", False)
    assert c.phones == (Phone("+15550001", "home"), Phone("+15550002", "mobile"))
    assert c.tags == ("vip", "beta")
    assert c.custom == {"tierStr": "gold", "scoreNum": 5}
    assert c.locale == "en_US" and c.time_zone == "Europe/Paris"
    assert c.updated_at == datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=timezone.utc)
    # the relationship wins over the flat attribute
    assert c.company_id == "co-9"
    assert c.attributes["someFutureField"] == {"x": 1}


def test_customer_company_from_flat_attribute() -> None:
    c = Customer.from_api({"id": "c1", "attributes": {"company": "co-1"}})
    assert c.company_id == "co-1"


@pytest.mark.parametrize(
    "resource",
    [
        {"id": "c1"},
        {"id": "c1", "attributes": None, "relationships": None},
        {
            "id": "c1",
            "attributes": {
                "name": None,
                "emails": None,
                "phones": [None, {"phone": None}, "junk"],
                "tags": None,
                "custom": None,
                "createdAt": "not a date",
                "rev": "x",
            },
            "relationships": {"company": {"data": None}},
        },
    ],
)
def test_customer_minimal_and_null_payloads(resource: dict[str, Any]) -> None:
    c = Customer.from_api(resource)
    assert c.id == "c1"
    assert c.emails == () and c.phones == () and c.tags == ()
    assert c.custom == {} and c.company_id is None
    assert c.created_at is None and c.rev is None
    assert c.default_email is None


def test_customer_is_frozen_and_kw_only(customer_example: dict[str, Any]) -> None:
    c = Customer.from_api(customer_example["data"])
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        c.name = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Customer("c1")  # type: ignore[call-arg]


def test_customer_from_api_does_not_alias_input(customer_example: dict[str, Any]) -> None:
    data = copy.deepcopy(customer_example["data"])
    c = Customer.from_api(data)
    data["attributes"]["name"] = "changed"
    assert c.attributes["name"] == "John Smith Jr."


def test_company_from_openapi_example(company_example: dict[str, Any]) -> None:
    co = Company.from_api(company_example["data"])
    assert co.id == "58224b3eaa5f92110005d61e"
    assert co.name == "Updated Company Name"
    assert co.tags == ("58224d97d4e96711004ecc56",)
    assert co.created_at == datetime(2016, 11, 8, 22, 1, 34, 620000, tzinfo=timezone.utc)
    assert co.relationships["createdBy"]["data"]["type"] == "user"


def test_company_full_payload() -> None:
    co = Company.from_api(
        {
            "id": "co1",
            "attributes": {
                "name": "Acme",
                "externalId": "acme-1",
                "domains": [{"domain": "acme.io"}, {"domain": None}, {"nope": 1}],
                "emails": [{"email": "hi@acme.io", "type": "work"}],
                "phones": [{"phone": "+1", "type": "fax"}],
                "employeeCount": 42.0,
                "custom": {"tierStr": "A"},
                "mystery": [1, 2],
            },
        }
    )
    assert co.domains == ("acme.io",)
    assert co.emails == (Email("hi@acme.io", "work"),)
    assert co.phones == (Phone("+1", "fax"),)
    assert co.employee_count == 42
    assert co.custom == {"tierStr": "A"}
    assert co.attributes["mystery"] == [1, 2]


def test_company_minimal() -> None:
    co = Company.from_api({"id": "co1"})
    assert co.name is None and co.domains == () and co.employee_count is None


def test_email_phone_round_trip() -> None:
    e = Email.from_api({"email": "a@b.c", "verified": True, "id": None})
    assert e.to_api() == {"type": "home", "email": "a@b.c", "verified": True}
    assert Email("a@b.c").to_api() == {"type": "home", "email": "a@b.c"}
    p = Phone.from_api({"phone": "+1 555", "type": "work"})
    assert p.to_api() == {"type": "work", "phone": "+1 555"}
    assert Phone.from_api({"phone": "1"}).type == "mobile"
