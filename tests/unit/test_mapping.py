"""FieldMapping: destinations, sources, null rules and errors."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

from kustomer_activations.errors import CustomFieldError, InvalidRecordError
from kustomer_activations.mapping import Field, FieldMapping, MappedRecord, is_null

ROW = {
    "id": "u-1",
    "full_name": "Ada Lovelace",
    "email": "Ada@X.io",
    "phone": "+15550001",
    "tags": "vip, beta,,",
    "tier": "gold",
    "ltv_cents": 1250,
    "signup": "2024-05-01T10:00:00Z",
    "company_id": "acme-1",
    "secret": "never sent",
}


def customer_mapping(**kw: Any) -> FieldMapping:
    return FieldMapping(
        {
            "externalId": "id",
            "name": "full_name",
            "email": "email",
            "phone": "phone",
            "tags": "tags",
            "custom.tierStr": "tier",
            "custom.ltvNum": lambda row: row["ltv_cents"] / 100,
            "custom.signupAt": Field("signup", skip_null=False, set_if_empty=True),
            "companyExternalId": "company_id",
        },
        object_type="customer",
        **kw,
    )


def test_full_row() -> None:
    rec = customer_mapping().apply(ROW)
    assert isinstance(rec, MappedRecord)
    assert rec.payload == {
        "externalId": "u-1",
        "name": "Ada Lovelace",
        "emails": [{"type": "home", "email": "Ada@X.io"}],
        "phones": [{"type": "mobile", "phone": "+15550001"}],
        "tags": ["vip", "beta"],
        "custom": {"tierStr": "gold", "ltvNum": 12.5, "signupAt": "2024-05-01T10:00:00.000Z"},
    }
    assert rec.company_external_id == "acme-1"
    assert rec.set_if_empty == {"custom.signupAt"}
    assert rec.mapped_fields == {
        "externalId", "name", "emails", "phones", "tags", "custom.tierStr", "custom.ltvNum",
        "custom.signupAt", "company",
    }
    assert rec.nulls == frozenset()
    assert "secret" not in str(rec.payload)


def test_tags_list_is_taken_as_is() -> None:
    rec = customer_mapping().apply({**ROW, "tags": ["a", "b"]})
    assert rec.payload["tags"] == ["a", "b"]


@pytest.mark.parametrize("null", [None, "", "   ", math.nan, float("nan")])
def test_nulls_are_skipped_by_default(null: Any) -> None:
    rec = customer_mapping().apply({**ROW, "full_name": null, "tier": null, "email": null,
                                    "company_id": null, "tags": null})
    for absent in ("name", "emails", "tags"):
        assert absent not in rec.payload
    assert "tierStr" not in rec.payload["custom"]
    assert rec.company_external_id is None
    assert {"name", "custom.tierStr", "emails", "company", "tags"}.isdisjoint(rec.mapped_fields)


def test_pandas_na_and_nat_are_null() -> None:
    pd = pytest.importorskip("pandas")
    assert is_null(pd.NA) and is_null(pd.NaT)
    assert is_null(pd.Series([1.0, None])[1])
    assert not is_null(pd.Series([1, 2]))  # a whole series is a value, not a null
    assert not is_null(0) and not is_null(False) and not is_null([])


def test_pandas_row_can_be_mapped() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([{"id": "u-1", "full_name": None, "score": 5.0, "cid": 7.0}])
    m = FieldMapping({"externalId": "id", "name": "full_name", "custom.scoreNum": "score",
                      "companyExternalId": "cid"}, object_type="customer")
    rec = m.apply(frame.iloc[0])
    assert rec.payload == {"externalId": "u-1", "custom": {"scoreNum": 5.0}}
    assert rec.company_external_id == "7"


def test_skip_null_false_clears() -> None:
    rec = customer_mapping().apply({**ROW, "signup": None})
    assert rec.payload["custom"]["signupAt"] is None
    assert rec.nulls == {"custom.signupAt"}
    assert "custom.signupAt" in rec.mapped_fields
    m = FieldMapping({"externalId": "id", "name": "full_name", "email": "email",
                      "tags": "tags"}, object_type="customer", skip_nulls=False)
    rec = m.apply({"id": "u-1", "full_name": "", "email": None, "tags": None})
    assert rec.payload == {"externalId": "u-1", "name": None}
    assert rec.nulls == {"name"}


def test_missing_column_names_destination_and_column() -> None:
    row = dict(ROW)
    del row["tier"]
    with pytest.raises(InvalidRecordError) as info:
        customer_mapping().apply(row)
    assert info.value.field == "custom.tierStr"
    assert "'tier'" in str(info.value)
    assert not isinstance(info.value, KeyError)


def test_callable_failure_is_wrapped() -> None:
    with pytest.raises(InvalidRecordError) as info:
        customer_mapping().apply({**ROW, "ltv_cents": "abc"})
    assert info.value.field == "custom.ltvNum"
    assert "TypeError" in str(info.value)
    assert isinstance(info.value.__cause__, TypeError)


def test_transform() -> None:
    m = FieldMapping(
        {"externalId": Field("id", transform=str.upper),
         "custom.tierStr": Field("tier", transform=lambda v: None)},
        object_type="customer",
    )
    rec = m.apply({"id": "u-1", "tier": "gold"})
    assert rec.payload == {"externalId": "U-1"}  # a transform returning None is a null
    bad = FieldMapping({"externalId": Field("id", transform=int)}, object_type="customer")
    with pytest.raises(InvalidRecordError) as info:
        bad.apply({"id": "x"})
    assert info.value.field == "externalId"


def test_callable_raising_invalid_record_gets_the_field() -> None:
    def fail(row: Mapping[str, Any]) -> Any:
        raise InvalidRecordError("no good")

    m = FieldMapping({"name": fail}, object_type="customer")
    with pytest.raises(InvalidRecordError) as info:
        m.apply({})
    assert info.value.field == "name"


def test_values_are_validated_with_the_field() -> None:
    with pytest.raises(CustomFieldError) as info:
        customer_mapping().apply({**ROW, "tier": 3})
    assert info.value.field == "custom.tierStr"
    with pytest.raises(InvalidRecordError) as info2:
        customer_mapping().apply({**ROW, "email": "not-an-email"})
    assert info2.value.field == "emails[0].email"


def test_parse_strings() -> None:
    m = FieldMapping({"custom.scoreNum": "s", "custom.okBool": "b"}, object_type="customer",
                     parse_strings=True)
    assert m.apply({"s": "1.5", "b": "yes"}).payload == {"custom": {"scoreNum": 1.5,
                                                                    "okBool": True}}
    strict = FieldMapping({"custom.scoreNum": "s"}, object_type="customer")
    with pytest.raises(CustomFieldError):
        strict.apply({"s": "1.5"})


@pytest.mark.parametrize(
    ("spec", "object_type", "message"),
    [
        ({"fullName": "x"}, "customer", "did you mean"),
        ({"nmae": "x"}, "customer", "'name'"),
        ({"custom.tier": "x"}, "customer", "Str"),
        ({"companyExternalId": "x"}, "company", "unknown company"),
        ({"domain": "x"}, "customer", "unknown customer"),
        ({"custom": "x"}, "customer", "unknown"),
        ({"email": "a", "emails": "b"}, "customer", "not both"),
        ({"company": "a", "companyExternalId": "b"}, "customer", "not both"),
        ({"name": 5}, "customer", "column name"),
    ],
)
def test_invalid_mapping_is_refused_at_construction(
    spec: dict[str, Any], object_type: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        FieldMapping(spec, object_type=object_type)


def test_bad_object_type() -> None:
    with pytest.raises(ValueError):
        FieldMapping({}, object_type="ticket")  # type: ignore[arg-type]


def test_company_mapping() -> None:
    m = FieldMapping({"name": "n", "externalId": "id", "domain": "d", "email": "e",
                      "employeeCount": "size"}, object_type="company")
    rec = m.apply({"n": "Acme", "id": "c-1", "d": "acme.io", "e": "hi@acme.io", "size": 12})
    assert rec.payload == {"name": "Acme", "externalId": "c-1", "domains": [{"domain": "acme.io"}],
                           "emails": [{"type": "home", "email": "hi@acme.io"}],
                           "employeeCount": 12}
    assert rec.mapped_fields == {"name", "externalId", "domains", "emails", "employeeCount"}


def test_company_mapping_does_not_require_name_per_row() -> None:
    # the name rule for creates lives in plan_create (a row may only update)
    m = FieldMapping({"externalId": "id"}, object_type="company")
    assert m.apply({"id": "c-1"}).payload == {"externalId": "c-1"}


def test_columns_and_check_columns() -> None:
    m = customer_mapping()
    assert m.columns == {"id", "full_name", "email", "phone", "tags", "tier", "signup",
                         "company_id"}
    m.check_columns(ROW.keys())
    with pytest.raises(ValueError, match=r"'tier' \(for 'custom\.tierStr'\)"):
        m.check_columns([c for c in ROW if c != "tier"])


def test_identity_mapping() -> None:
    m = FieldMapping.identity("customer")
    assert m.is_identity
    rec = m.apply({"externalId": "u-1", "name": None, "custom": {"tierStr": "a", "xNum": None},
                   "companyExternalId": "acme-1"})
    assert rec.payload == {"externalId": "u-1", "name": None,
                           "custom": {"tierStr": "a", "xNum": None}}
    assert rec.company_external_id == "acme-1"
    assert rec.mapped_fields == {"externalId", "name", "custom.tierStr", "custom.xNum", "company"}
    assert rec.nulls == {"name", "custom.xNum"}
    with pytest.raises(InvalidRecordError, match="did you mean 'externalId'"):
        m.apply({"external_id": "u-1"})
    with pytest.raises(InvalidRecordError):
        FieldMapping.identity("company").apply({"companyExternalId": "x"})
