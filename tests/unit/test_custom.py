"""Custom attribute types, coercion, comparison, and the metadata schema."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from kustomer_activations.errors import CustomFieldError, UnknownFieldError
from kustomer_activations.models import (
    CustomSchema,
    CustomType,
    coerce_custom,
    custom_type,
    same_custom_value,
)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("signupAt", CustomType.AT),
        ("tierStr", CustomType.STR),
        ("scoreNum", CustomType.NUM),
        ("isVipBool", CustomType.BOOL),
        ("homepageUrl", CustomType.URL),
        ("ownerId", CustomType.ID),
        ("notesTxt", CustomType.TXT),
        ("shopifyCustomerIdNum", CustomType.NUM),
        ("catAt", CustomType.AT),
    ],
)
def test_custom_type_by_suffix(name: str, kind: CustomType) -> None:
    assert custom_type(name) is kind


@pytest.mark.parametrize("name", ["bigCat", "tier", "tierstr", "Str", "", "tier_Str", "flagBOOL"])
def test_unknown_suffix_is_refused_with_the_valid_ones(name: str) -> None:
    with pytest.raises(UnknownFieldError) as info:
        custom_type(name)
    assert info.value.field == f"custom.{name}"
    for suffix in ("Str", "Txt", "Num", "At", "Bool", "Url", "Id"):
        assert suffix in str(info.value)


def test_none_clears_for_every_type() -> None:
    for name in ("aStr", "aTxt", "aNum", "aAt", "aBool", "aUrl", "aId"):
        assert coerce_custom(name, None) is None


def test_str() -> None:
    assert coerce_custom("tierStr", "gold") == "gold"
    assert coerce_custom("tierStr", "x" * 1024) == "x" * 1024
    with pytest.raises(CustomFieldError, match="1024") as info:
        coerce_custom("tierStr", "x" * 1025)
    assert info.value.field == "custom.tierStr"
    for bad in (42, 4.2, True, ["a"]):
        with pytest.raises(CustomFieldError):
            coerce_custom("tierStr", bad)


def test_txt_holds_at_most_1024_characters() -> None:
    assert coerce_custom("notesTxt", "y" * 1024) == "y" * 1024
    with pytest.raises(CustomFieldError, match="at most 1024"):
        coerce_custom("notesTxt", "y" * 1025)
    with pytest.raises(CustomFieldError):
        coerce_custom("notesTxt", 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(5, 5), (5.5, 5.5), (Decimal("12"), 12), (Decimal("12.25"), 12.25), (-0.0, -0.0)],
)
def test_num_accepts_numbers(value: Any, expected: Any) -> None:
    out = coerce_custom("scoreNum", value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(
    "value", [True, False, math.nan, math.inf, -math.inf, Decimal("NaN"), "12", [1]]
)
def test_num_refuses(value: Any) -> None:
    with pytest.raises(CustomFieldError) as info:
        coerce_custom("scoreNum", value)
    assert info.value.field == "custom.scoreNum"


def test_num_parse_strings() -> None:
    assert coerce_custom("scoreNum", "12.5", parse_strings=True) == 12.5
    assert coerce_custom("scoreNum", " 12 ", parse_strings=True) == 12
    with pytest.raises(CustomFieldError):
        coerce_custom("scoreNum", "twelve", parse_strings=True)
    with pytest.raises(CustomFieldError):
        coerce_custom("scoreNum", "nan", parse_strings=True)


def test_num_numpy_scalars() -> None:
    np = pytest.importorskip("numpy")
    assert coerce_custom("scoreNum", np.int64(3)) == 3
    assert coerce_custom("scoreNum", np.float64(2.5)) == 2.5
    with pytest.raises(CustomFieldError):
        coerce_custom("scoreNum", np.float64("nan"))


def test_at_naive_datetime_is_utc() -> None:
    assert coerce_custom("signupAt", datetime(2024, 5, 1, 12, 30)) == "2024-05-01T12:30:00.000Z"


def test_at_aware_datetime_is_converted_to_utc() -> None:
    paris = timezone(timedelta(hours=2))
    value = datetime(2024, 5, 1, 12, 30, 1, 987654, tzinfo=paris)
    assert coerce_custom("signupAt", value) == "2024-05-01T10:30:01.987Z"


def test_at_date_is_midnight_utc() -> None:
    assert coerce_custom("signupAt", date(2024, 5, 1)) == "2024-05-01T00:00:00.000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", "2024-05-01T00:00:00.000Z"),
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000Z"),
        ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00.000Z"),
        ("2024-05-01T10:00:00.5Z", "2024-05-01T10:00:00.500Z"),
        ("2024-05-01T10:00:00.1234567Z", "2024-05-01T10:00:00.123Z"),
        ("2024-05-01T10:00:00", "2024-05-01T10:00:00.000Z"),
    ],
)
def test_at_iso_strings_normalised(text: str, expected: str) -> None:
    assert coerce_custom("signupAt", text) == expected


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", 1714557600, True])
def test_at_refuses(value: Any) -> None:
    with pytest.raises(CustomFieldError):
        coerce_custom("signupAt", value)


def test_bool() -> None:
    assert coerce_custom("isVipBool", True) is True
    assert coerce_custom("isVipBool", False) is False
    for bad in (1, 0, "true", "yes"):
        with pytest.raises(CustomFieldError):
            coerce_custom("isVipBool", bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True), ("no", False)],
)
def test_bool_parse_strings(text: str, expected: bool) -> None:
    assert coerce_custom("isVipBool", text, parse_strings=True) is expected


def test_bool_parse_strings_refuses_other_words() -> None:
    with pytest.raises(CustomFieldError):
        coerce_custom("isVipBool", "maybe", parse_strings=True)


def test_url() -> None:
    assert coerce_custom("homepageUrl", "https://x.io/a?b=1") == "https://x.io/a?b=1"
    assert coerce_custom("homepageUrl", "http://x.io") == "http://x.io"
    for bad in ("x.io", "ftp://x.io", "https://", "https://x .io", "mailto:a@b.c", 5):
        with pytest.raises(CustomFieldError):
            coerce_custom("homepageUrl", bad)


def test_id() -> None:
    assert coerce_custom("ownerId", "abc123") == "abc123"
    assert coerce_custom("ordersId", ("a", "b")) == ["a", "b"]
    with pytest.raises(CustomFieldError):
        coerce_custom("ownerId", 12)


def test_coerce_unknown_suffix() -> None:
    with pytest.raises(UnknownFieldError):
        coerce_custom("tier", "x")


def test_same_custom_value() -> None:
    assert same_custom_value("scoreNum", 5, 5.0)
    assert same_custom_value("scoreNum", 5.0, 5)
    assert not same_custom_value("scoreNum", 5, 6)
    assert not same_custom_value("scoreNum", True, 1)
    assert not same_custom_value("scoreNum", "5", 5)
    assert same_custom_value("signupAt", "2024-05-01T10:00:00Z", "2024-05-01T10:00:00.000Z")
    assert same_custom_value("signupAt", "2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00.000Z")
    assert not same_custom_value("signupAt", "2024-05-01T10:00:01Z", "2024-05-01T10:00:00.000Z")
    assert not same_custom_value("signupAt", "garbage", "2024-05-01T10:00:00.000Z")
    assert same_custom_value("tierStr", None, None)
    assert not same_custom_value("tierStr", None, "a")
    assert not same_custom_value("tierStr", "a", None)
    assert not same_custom_value("isVipBool", 1, True)
    assert same_custom_value("ordersId", ["a"], ["a"])


def test_schema_from_metadata_example(metadata_example: dict[str, Any]) -> None:
    schema = CustomSchema.from_api(metadata_example)
    assert schema.names == {"shopifyCustomerIdNum", "myCustomStr", "ordersId"}
    attr = schema.attributes["myCustomStr"]
    assert attr.display_name == "My Custom String!"
    assert attr.type == "string"
    assert attr.enumeration == ("option one", "option two", "option three")
    assert schema.attributes["shopifyCustomerIdNum"].enumeration is None
    assert "ordersId" in schema
    schema.check(["myCustomStr", "ordersId"])


def test_schema_check_suggests_the_closest(metadata_example: dict[str, Any]) -> None:
    schema = CustomSchema.from_api(metadata_example)
    with pytest.raises(UnknownFieldError) as info:
        schema.check(["myCustomStr", "myCustmStr"])
    assert info.value.field == "custom.myCustmStr"
    assert "did you mean 'myCustomStr'" in str(info.value)
    with pytest.raises(UnknownFieldError) as info:
        schema.check(["myCustomNum"])
    assert "'myCustomStr'" in str(info.value)
    with pytest.raises(UnknownFieldError) as info:
        schema.check(["zzzzzzzzAt"])
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    "payload",
    [{}, {"data": None}, {"data": {"attributes": None}}, {"data": {"attributes": {}}}],
)
def test_schema_tolerates_missing_parts(payload: dict[str, Any]) -> None:
    assert CustomSchema.from_api(payload).names == frozenset()


def test_schema_accepts_bare_resource_and_odd_specs() -> None:
    schema = CustomSchema.from_api(
        {"attributes": {"properties": {"aStr": None, "bNum": {"type": 3, "enumeration": "x"}}}}
    )
    assert schema.names == {"aStr", "bNum"}
    assert schema.attributes["bNum"].type == "3"
    assert schema.attributes["bNum"].enumeration is None
