"""The one email check (Kustomer's ``email-relaxed`` format), wherever the SDK validates emails."""

from __future__ import annotations

from typing import Any

import pytest

from kustomer_activations import FieldMapping
from kustomer_activations.errors import InvalidRecordError
from kustomer_activations.models import CompanyInput, CustomerInput, Email
from kustomer_activations.models.validation import (
    is_email,
    validate_company_payload,
    validate_customer_payload,
)

ACCEPTED = [
    "user@example.com",
    "a@b.co",
    "Ada.Lovelace@Example.COM",
    "o'neil+tag@sub.example.co.uk",
    "first_last-1@xn--bcher-kva.example",
    "x@a.b",
    "a@b..c",  # relaxed: empty labels are Kustomer's to judge
    "\"quoted\"@example.com",
    "jos\u00e9@exampl\u00e9.fr",  # internationalised parts are left to Kustomer
    "\u7528\u6237@\u4f8b\u5b50.\u4e2d\u56fd",
    "a" * 200 + "@example.com",
]

REFUSED = [
    "",
    "@",
    "user@",
    "@example.com",
    "a@@b.com",
    "a@b@c.com",
    "a b@c.com",
    " a@b.com",
    "a@b.com ",
    "a@b .com",
    "a\t@b.com",
    "a@b.com\n",
    "a\x00@b.com",
    "a@b.com\x7f",
    "a\u0085@b.com",  # a C1 control
    "a\u00a0b@c.com",  # no-break space
    "a\u200b@b.com",  # zero-width space (a format character)
    "a\u2028@b.com",  # line separator
    "a\ud800@b.com",  # an unpaired surrogate
    "user@localhost",
    "user@example",
    "user@.example.com",
    "user@example.com.",
    "user@.",
    "no-at-sign.example.com",
    "plainaddress",
]


@pytest.mark.parametrize("address", ACCEPTED)
def test_accepted(address: str) -> None:
    assert is_email(address)


@pytest.mark.parametrize("address", REFUSED)
def test_refused(address: str) -> None:
    assert not is_email(address)


@pytest.mark.parametrize("value", [None, 5, b"a@b.com", ["a@b.com"], Email("a@b.com")])
def test_only_strings_are_emails(value: Any) -> None:
    assert not is_email(value)


@pytest.mark.parametrize("address", REFUSED[1:])  # "" is a null for the mapping: skipped
def test_every_entry_point_refuses_a_malformed_email(address: str) -> None:
    calls: list[tuple[str, Any]] = [
        ("emails[0].email", lambda: validate_customer_payload({"emails": [address]})),
        ("emails[1].email", lambda: validate_customer_payload(
            {"emails": ["ok@example.com", {"email": address, "type": "work"}]})),
        ("sharedEmails[0].email", lambda: validate_customer_payload(
            {"sharedEmails": [{"email": address}]})),
        ("emails[0].email", lambda: validate_company_payload(
            {"name": "Acme", "emails": [address]}, for_create=True)),
        ("emails[0].email", lambda: validate_customer_payload(
            CustomerInput(emails=[Email(address)]).to_payload())),
        ("emails[0].email", lambda: validate_company_payload(
            CompanyInput(name="Acme", emails=[address]).to_payload(), for_create=True)),
        ("emails[0].email", lambda: FieldMapping(
            {"externalId": "id", "email": "mail"}, object_type="customer",
        ).apply({"id": "u-1", "mail": address})),
        ("emails[0].email", lambda: FieldMapping(
            {"name": "n", "email": "mail"}, object_type="company",
        ).apply({"n": "Acme", "mail": address})),
        ("emails[0].email", lambda: FieldMapping.identity("customer").apply(
            {"externalId": "u-1", "emails": [{"email": address}]})),
    ]
    for field, call in calls:
        with pytest.raises(InvalidRecordError) as info:
            call()
        assert info.value.field == field
        assert "email" in info.value.reason


@pytest.mark.parametrize("address", ACCEPTED)
def test_every_entry_point_keeps_a_good_email(address: str) -> None:
    item = {"type": "home", "email": address}
    assert validate_customer_payload({"emails": [address]})["emails"] == [item]
    assert validate_customer_payload({"sharedEmails": [address]})["sharedEmails"] == [item]
    company = validate_company_payload({"name": "Acme", "emails": [address]}, for_create=True)
    assert company["emails"] == [item]
    mapped = FieldMapping({"externalId": "id", "email": "mail"}, object_type="customer").apply(
        {"id": "u-1", "mail": address})
    assert mapped.payload["emails"] == [item]
