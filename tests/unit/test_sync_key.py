"""SyncKey: parsing, labels, search attributes, value extraction and normalisation."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from kustomer_activations.errors import MissingKeyError, UnknownFieldError
from kustomer_activations.models import Company, Customer, SyncKey


@pytest.mark.parametrize(
    ("text", "kind", "field", "label"),
    [
        ("externalId", "external_id", None, "externalId"),
        ("external_id", "external_id", None, "externalId"),
        ("email", "email", None, "email"),
        ("custom.tierStr", "custom", "tierStr", "custom.tierStr"),
    ],
)
def test_parse_and_label(text: str, kind: str, field: str | None, label: str) -> None:
    key = SyncKey.parse(text)
    assert (key.kind, key.field, key.label, str(key)) == (kind, field, label, label)
    assert SyncKey.parse(key) is key


def test_constructors_equal_parse() -> None:
    assert SyncKey.external_id() == SyncKey.parse("externalId")
    assert SyncKey.email() == SyncKey.parse("email")
    assert SyncKey.custom("skuStr") == SyncKey.parse("custom.skuStr")


@pytest.mark.parametrize("text", ["id", "emails", "custom.", "Email", ""])
def test_parse_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="externalId"):
        SyncKey.parse(text)


def test_custom_key_needs_a_valid_suffix() -> None:
    with pytest.raises(UnknownFieldError):
        SyncKey.custom("sku")
    with pytest.raises(ValueError):
        SyncKey.parse("custom.sku")


def test_search_attributes() -> None:
    assert SyncKey.external_id().search_attribute("customer") == "customer_externalId"
    assert SyncKey.external_id().search_attribute("company") == "company_externalId"
    assert SyncKey.email().search_attribute("customer") == "customer_email"
    assert SyncKey.custom("skuStr").search_attribute("customer") == "customer_custom_skuStr"
    assert SyncKey.custom("skuStr").search_attribute("company") == "company_custom_skuStr"


def test_email_key_on_companies_is_refused() -> None:
    SyncKey.email().check_supported("customer")
    SyncKey.custom("skuStr").check_supported("company")
    with pytest.raises(ValueError, match="customers only"):
        SyncKey.email().check_supported("company")
    with pytest.raises(ValueError):
        SyncKey.email().search_attribute("company")


@pytest.mark.parametrize(
    ("key", "payload", "expected"),
    [
        (SyncKey.external_id(), {"externalId": "u-1"}, "u-1"),
        (SyncKey.external_id(), {"externalId": 42}, "42"),
        (SyncKey.external_id(), {}, None),
        (SyncKey.external_id(), {"externalId": None}, None),
        (SyncKey.external_id(), {"externalId": ""}, None),
        (SyncKey.email(), {"emails": [{"email": "A@X.io"}, {"email": "b@x.io"}]}, "a@x.io"),
        (SyncKey.email(), {"emails": []}, None),
        (SyncKey.email(), {}, None),
        (SyncKey.custom("skuNum"), {"custom": {"skuNum": 42}}, "42"),
        (SyncKey.custom("skuNum"), {"custom": {"skuNum": 42.0}}, "42"),
        (SyncKey.custom("skuNum"), {"custom": {"skuNum": 4.5}}, "4.5"),
        (SyncKey.custom("skuNum"), {"custom": {"skuNum": Decimal("42.00")}}, "42"),
        (SyncKey.custom("skuStr"), {"custom": {"skuStr": "Ab "}}, "Ab "),
        (SyncKey.custom("skuStr"), {"custom": {}}, None),
        (SyncKey.custom("skuStr"), {"custom": None}, None),
    ],
)
def test_value_in(key: SyncKey, payload: dict[str, Any], expected: str | None) -> None:
    assert key.value_in(payload) == expected


def test_require_in_raises_missing_key() -> None:
    with pytest.raises(MissingKeyError) as info:
        SyncKey.external_id().require_in({"externalId": ""})
    assert info.value.field == "externalId"
    with pytest.raises(MissingKeyError):
        SyncKey.custom("skuStr").require_in({})
    assert SyncKey.email().require_in({"emails": [{"email": "X@y.z"}]}) == "x@y.z"


@pytest.mark.parametrize("value", ["", None, math.nan, math.inf])
def test_normalise_refuses_empty(value: Any) -> None:
    with pytest.raises(MissingKeyError):
        SyncKey.external_id().normalise(value)


def test_normalise() -> None:
    assert SyncKey.email().normalise("Ada@X.io") == "ada@x.io"
    assert SyncKey.external_id().normalise("Ab") == "Ab"
    assert SyncKey.custom("skuNum").normalise(42) == SyncKey.custom("skuNum").normalise("42")
    assert SyncKey.custom("okBool").normalise(True) == "true"


def test_value_of() -> None:
    c = Customer.from_api(
        {
            "id": "c1",
            "attributes": {
                "externalId": "u-1",
                "emails": [{"email": "A@x.io"}, {"email": "B@x.io"}],
                "custom": {"skuNum": 42.0, "tierStr": "gold"},
            },
        }
    )
    assert SyncKey.email().value_of(c) == ["a@x.io", "b@x.io"]
    assert SyncKey.external_id().value_of(c) == ["u-1"]
    assert SyncKey.custom("skuNum").value_of(c) == ["42"]
    assert SyncKey.custom("tierStr").value_of(c) == ["gold"]
    assert SyncKey.custom("otherStr").value_of(c) == []
    co = Company.from_api({"id": "co", "attributes": {}})
    assert SyncKey.external_id().value_of(co) == []
