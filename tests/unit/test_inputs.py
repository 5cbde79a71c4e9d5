"""Write-body validation and the typed inputs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from kustomer_activations.errors import CustomFieldError, InvalidRecordError, UnknownFieldError
from kustomer_activations.models import (
    COMPANY_FIELDS,
    CUSTOMER_FIELDS,
    UNSET,
    CompanyInput,
    CustomerInput,
    Email,
    Phone,
    validate_company_payload,
    validate_customer_payload,
)

Schema = Callable[[str, str], dict[str, Any]]


def test_customer_fields_are_the_schema_fields(request_schema: Schema) -> None:
    for method, path in (("post", "/customers"), ("put", "/customers/{id}")):
        assert set(CUSTOMER_FIELDS) == set(request_schema(path, method)["properties"])


def test_company_fields_are_the_schema_fields(request_schema: Schema) -> None:
    post = set(request_schema("/companies", "post")["properties"])
    put = set(request_schema("/companies/{id}", "put")["properties"])
    assert set(COMPANY_FIELDS) == post | put


def test_every_schema_array_limit_is_enforced(request_schema: Schema) -> None:
    props = request_schema("/customers", "post")["properties"]
    for name, spec in props.items():
        if spec.get("type") != "array":
            continue
        limit = spec["maxItems"]
        item = "t" if name == "tags" else {"x": 1}
        if name in ("emails", "sharedEmails"):
            items: list[Any] = [{"email": f"u{i}@x.io"} for i in range(limit + 1)]
        elif name in ("phones", "sharedPhones", "whatsapps"):
            items = [{"phone": f"+1{i}"} for i in range(limit + 1)]
        else:
            items = [item] * (limit + 1)
        with pytest.raises(InvalidRecordError, match=f"at most {limit}") as info:
            validate_customer_payload({name: items})
        assert info.value.field == name


def test_valid_customer_is_normalised() -> None:
    payload: dict[str, Any] = {
        "name": "Ada",
        "externalId": "u-1",
        "emails": [{"email": "a@x.io"}, Email("b@x.io", "work"), "c@x.io", {"email": "A@X.IO"}],
        "phones": [{"phone": "+1555"}, Phone("+1666", "home"), "+1777"],
        "tags": ["vip", "beta", "vip"],
        "signedUpAt": date(2024, 5, 1),
        "birthdayAt": "1990-01-02T03:04:05+01:00",
        "gender": "f",
        "custom": {"scoreNum": Decimal("5"), "signupAt": datetime(2024, 5, 1)},
    }
    out = validate_customer_payload(payload)
    assert out is not payload
    assert out["emails"] == [
        {"type": "home", "email": "a@x.io"},
        {"type": "work", "email": "b@x.io"},
        {"type": "home", "email": "c@x.io"},
    ]
    assert out["phones"] == [
        {"type": "mobile", "phone": "+1555"},
        {"type": "home", "phone": "+1666"},
        {"type": "mobile", "phone": "+1777"},
    ]
    assert out["tags"] == ["vip", "beta"]
    assert out["signedUpAt"] == "2024-05-01T00:00:00.000Z"
    assert out["birthdayAt"] == "1990-01-02T02:04:05.000Z"
    assert out["custom"] == {"scoreNum": 5, "signupAt": "2024-05-01T00:00:00.000Z"}
    assert payload["custom"]["scoreNum"] == Decimal("5")  # input untouched


def test_unknown_field_suggests_the_closest() -> None:
    with pytest.raises(UnknownFieldError) as info:
        validate_customer_payload({"externalID": "x"})
    assert info.value.field == "externalID"
    assert "did you mean 'externalId'" in str(info.value)
    with pytest.raises(UnknownFieldError, match="'domains'"):
        validate_company_payload({"domain": []}, for_create=False)
    with pytest.raises(UnknownFieldError):
        validate_customer_payload({"domains": []})


def test_unknown_item_key_is_refused() -> None:
    with pytest.raises(UnknownFieldError) as info:
        validate_customer_payload({"emails": [{"email": "a@x.io", "primary": True}]})
    assert info.value.field == "emails[0].primary"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x" * 257}, "name"),
        ({"name": 5}, "name"),
        ({"externalId": ""}, "externalId"),
        ({"externalId": "x" * 257}, "externalId"),
        ({"username": "x" * 257}, "username"),
        ({"locale": "x" * 17}, "locale"),
        ({"timeZone": "x" * 65}, "timeZone"),
        ({"gender": "x"}, "gender"),
        ({"emails": [{"email": "nope"}]}, "emails[0].email"),
        ({"emails": [{"type": "home"}]}, "emails[0].email"),
        ({"emails": [{"email": "a@x.io", "type": "mobile"}]}, "emails[0].type"),
        ({"emails": [{"email": "a@x.io", "verified": "yes"}]}, "emails[0].verified"),
        ({"emails": "a@x.io"}, "emails"),
        ({"emails": [5]}, "emails[0]"),
        ({"phones": [{"phone": ""}]}, "phones[0].phone"),
        ({"phones": [{"phone": "+1", "type": "pager"}]}, "phones[0].type"),
        ({"whatsapps": [{"phone": "+1", "type": "home"}]}, "whatsapps[0].type"),
        ({"tags": ["ok", 3]}, "tags[1]"),
        ({"tags": [" lead"]}, "tags[0]"),
        ({"tags": ["x" * 65]}, "tags[0]"),
        ({"tags": ["bad!"]}, "tags[0]"),
        ({"signedUpAt": "soon"}, "signedUpAt"),
        ({"createdAt": None}, "createdAt"),
        ({"socials": [1]}, "socials[0]"),
        ({"sentiment": []}, "sentiment"),
        ({"rev": True}, "rev"),
        ({"custom": []}, "custom"),
    ],
)
def test_customer_limits(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRecordError) as info:
        validate_customer_payload(payload)
    assert info.value.field == field


def test_nullable_fields_accept_null() -> None:
    out = validate_customer_payload({"name": None, "externalId": None, "gender": None,
                                     "company": None, "birthdayAt": None})
    assert out == {"name": None, "externalId": None, "gender": None, "company": None,
                   "birthdayAt": None}


def test_more_than_ten_emails() -> None:
    emails = [{"email": f"u{i}@x.io"} for i in range(11)]
    with pytest.raises(InvalidRecordError, match="at most 10") as info:
        validate_customer_payload({"emails": emails})
    assert info.value.field == "emails"
    assert len(validate_customer_payload({"emails": emails[:10]})["emails"]) == 10


def test_tags_limit_is_twenty() -> None:
    assert len(validate_customer_payload({"tags": [f"t{i}" for i in range(20)]})["tags"]) == 20
    with pytest.raises(InvalidRecordError, match="at most 20"):
        validate_customer_payload({"tags": [f"t{i}" for i in range(21)]})


def test_custom_keys_limit_and_coercion() -> None:
    ok = {f"k{i}Str": "v" for i in range(100)}
    assert len(validate_customer_payload({"custom": ok})["custom"]) == 100
    with pytest.raises(InvalidRecordError, match="at most 100") as info:
        validate_customer_payload({"custom": {**ok, "k100Str": "v"}})
    assert info.value.field == "custom"
    with pytest.raises(CustomFieldError) as cinfo:
        validate_customer_payload({"custom": {"scoreNum": "5"}})
    assert cinfo.value.field == "custom.scoreNum"
    assert validate_customer_payload({"custom": {"scoreNum": "5"}}, parse_strings=True) == {
        "custom": {"scoreNum": 5}
    }
    with pytest.raises(UnknownFieldError):
        validate_customer_payload({"custom": {"score": 5}})


@pytest.mark.parametrize(("name", "ok"), [("ab", False), ("abc", True), ("x" * 255, True),
                                           ("x" * 256, False)])
def test_company_name_bounds(name: str, ok: bool) -> None:
    for for_create in (True, False):
        if ok:
            assert validate_company_payload({"name": name}, for_create=for_create)["name"] == name
        else:
            with pytest.raises(InvalidRecordError) as info:
                validate_company_payload({"name": name}, for_create=for_create)
            assert info.value.field == "name"


def test_company_name_required_on_create_only() -> None:
    with pytest.raises(InvalidRecordError, match="needs a name") as info:
        validate_company_payload({"externalId": "c-1"}, for_create=True)
    assert info.value.field == "name"
    assert validate_company_payload({"externalId": "c-1"}, for_create=False) == {
        "externalId": "c-1"
    }
    with pytest.raises(InvalidRecordError):
        validate_company_payload({"name": None}, for_create=False)


def test_company_domains_and_employee_count() -> None:
    out = validate_company_payload(
        {"name": "Acme", "domains": ["acme.io", {"domain": "ACME.io"}, {"domain": "b.io"}],
         "employeeCount": Decimal("12")},
        for_create=True,
    )
    assert out["domains"] == [{"domain": "acme.io"}, {"domain": "b.io"}]
    assert out["employeeCount"] == 12
    for bad in (["nodot"], [{"domain": "a.io", "x": 1}], [5]):
        with pytest.raises(InvalidRecordError):
            validate_company_payload({"domains": bad}, for_create=False)
    with pytest.raises(InvalidRecordError):
        validate_company_payload({"employeeCount": "12"}, for_create=False)


def test_payload_must_be_a_mapping() -> None:
    with pytest.raises(InvalidRecordError):
        validate_customer_payload(["name"])  # type: ignore[arg-type]


def test_customer_input_unset_vs_null() -> None:
    assert CustomerInput().to_payload() == {}
    body = CustomerInput(name=None, external_id="u-1", emails=["a@x.io", Email("b@x.io", "work")],
                         phones=[Phone("+1")], tags=("a",), time_zone="UTC",
                         custom={"tierStr": None}).to_payload()
    assert body == {
        "name": None,
        "externalId": "u-1",
        "emails": ["a@x.io", {"type": "work", "email": "b@x.io"}],
        "phones": [{"type": "mobile", "phone": "+1"}],
        "tags": ["a"],
        "timeZone": "UTC",
        "custom": {"tierStr": None},
    }
    assert validate_customer_payload(body)["emails"][0] == {"type": "home", "email": "a@x.io"}
    assert repr(UNSET) == "UNSET" and not UNSET


def test_company_input() -> None:
    body = CompanyInput(name="Acme", domains=["acme.io"], employee_count=5,
                        external_id=None).to_payload()
    assert body == {"name": "Acme", "domains": [{"domain": "acme.io"}], "employeeCount": 5,
                    "externalId": None}
    assert validate_company_payload(body, for_create=True)["name"] == "Acme"
    assert CompanyInput(domains=None).to_payload() == {"domains": None}
