"""Write bodies are strict JSON: every other value is an InvalidRecordError naming its path."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from kustomer_activations import FieldMapping
from kustomer_activations.errors import CustomFieldError, InvalidRecordError
from kustomer_activations.mapping import is_null
from kustomer_activations.models import CompanyInput, CustomerInput
from kustomer_activations.models.custom import coerce_custom, json_number, utc_text
from kustomer_activations.models.validation import (
    JSON_MAX_DEPTH,
    strict_json,
    validate_company_payload,
    validate_customer_payload,
)


def _strict(payload: Any) -> str:
    text = json.dumps(payload, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")
    return text


class _Color(enum.IntEnum):
    RED = 1


class _Tag(str, enum.Enum):
    VIP = "vip"


class _MyStr(str):
    pass


class _MyFloat(float):
    pass


class _MyList(list):  # type: ignore[type-arg]
    pass


class _ReadOnly(Mapping[str, Any]):
    """A mapping that is not a dict."""

    def __init__(self, **items: Any) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


HOSTILE: list[tuple[str, Any]] = [
    ("object", object()),
    ("nan", float("nan")),
    ("inf", float("inf")),
    ("-inf", float("-inf")),
    ("bytes", b"\x00\xff"),
    ("bytearray", bytearray(b"x")),
    ("decimal", Decimal("1.5")),
    ("decimal-nan", Decimal("NaN")),
    ("set", {1, 2}),
    ("frozenset", frozenset({"a"})),
    ("datetime", datetime(2024, 5, 1, tzinfo=timezone.utc)),
    ("date", date(2024, 5, 1)),
    ("complex", 1j),
    ("huge-int", 2**64 + 1),
    ("giant-int", 10**5000),
    ("surrogate", "a\ud800b"),
    ("type", int),
    ("function", len),
]

# Free-form fields whose items the SDK does not model, and where a bad value sits in them.
PLACES: list[tuple[str, Any, str]] = [
    ("sentiment", lambda v: {"polarity": v}, "sentiment.polarity"),
    ("sentiment", lambda v: {"a": {"b": [0, v]}}, "sentiment.a.b[1]"),
    ("locations", lambda v: [{"latitude": v}], "locations[0].latitude"),
    ("locations", lambda v: [{"name": "HQ"}, {"address": {"lines": ["x", v]}}],
     "locations[1].address.lines[1]"),
    ("socials", lambda v: [{"username": v}], "socials[0].username"),
    ("externalIds", lambda v: [{"externalId": "x", "extra": v}], "externalIds[0].extra"),
    ("urls", lambda v: [{"url": v}], "urls[0].url"),
    ("facebookIds", lambda v: [{"pageId": v}], "facebookIds[0].pageId"),
]


@pytest.mark.parametrize(("field", "build", "path"), PLACES)
@pytest.mark.parametrize(("what", "value"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_values_in_free_form_fields_name_their_path(
    field: str, build: Any, path: str, what: str, value: Any
) -> None:
    with pytest.raises(InvalidRecordError) as info:
        validate_customer_payload({"externalId": "x", field: build(value)})
    assert type(info.value) is InvalidRecordError
    assert info.value.field == path


@pytest.mark.parametrize(("what", "value"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_values_through_both_mappings(what: str, value: Any) -> None:
    with pytest.raises(InvalidRecordError) as info:
        FieldMapping.identity("customer").apply({"externalId": "x", "sentiment": {"p": value}})
    assert info.value.field == "sentiment.p"
    mapping = FieldMapping({"externalId": "id", "locations": "loc"}, object_type="customer")
    with pytest.raises(InvalidRecordError) as info:
        mapping.apply({"id": "x", "loc": [{"latitude": value}]})
    assert info.value.field == "locations[0].latitude"


def test_good_free_form_values_pass_and_become_plain_json() -> None:
    body = validate_customer_payload({
        "externalId": _MyStr("x"),
        "sentiment": _ReadOnly(polarity=_MyFloat(0.5), tags=("a", _Tag.VIP), n=_Color.RED),
        "locations": _MyList([{"latitude": 1.5, "longitude": -0.0, "big": 2**53, "exact": 2**60}]),
        "socials": [{"username": "ada", "verified": True, "none": None, "emoji": "\U0001f600"}],
    })
    assert body == {
        "externalId": "x",
        "sentiment": {"polarity": 0.5, "tags": ["a", "vip"], "n": 1},
        "locations": [{"latitude": 1.5, "longitude": -0.0, "big": 2**53, "exact": 2**60}],
        "socials": [{"username": "ada", "verified": True, "none": None, "emoji": "\U0001f600"}],
    }
    assert type(body["externalId"]) is str
    assert type(body["sentiment"]) is dict and type(body["sentiment"]["polarity"]) is float
    assert type(body["sentiment"]["tags"]) is list and type(body["sentiment"]["tags"][1]) is str
    assert type(body["sentiment"]["n"]) is int and type(body["locations"]) is list
    _strict(body)


def test_the_body_is_a_copy_the_row_cannot_change_later() -> None:
    row: dict[str, Any] = {"externalId": "x", "sentiment": {"a": [1]}}
    body = validate_customer_payload(row)
    row["sentiment"]["a"].append(2)
    assert body["sentiment"] == {"a": [1]}


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({1: "a"}, "sentiment[1]"),
        ({("a", "b"): 1}, "sentiment[('a', 'b')]"),
        ({None: 1}, "sentiment[None]"),
        ({"ok": {2.5: 1}}, "sentiment.ok[2.5]"),
        ({"k\udc80": 1}, "sentiment.<key>"),
    ],
)
def test_object_keys_must_be_strings(value: Any, path: str) -> None:
    with pytest.raises(InvalidRecordError) as info:
        validate_customer_payload({"sentiment": value})
    assert info.value.field == path


def test_a_self_referencing_value_is_refused_not_a_recursion_error() -> None:
    loop: dict[str, Any] = {}
    loop["me"] = loop
    with pytest.raises(InvalidRecordError, match="itself") as info:
        validate_customer_payload({"sentiment": loop})
    assert info.value.field == "sentiment.me"
    items: list[Any] = []
    items.append(items)
    with pytest.raises(InvalidRecordError, match="itself") as info:
        validate_customer_payload({"locations": [{"x": items}]})
    assert info.value.field == "locations[0].x[0]"
    shared = {"a": 1}  # the same object twice is not a cycle
    assert validate_customer_payload({"sentiment": {"x": shared, "y": [shared]}}) == {
        "sentiment": {"x": {"a": 1}, "y": [{"a": 1}]}}


def test_nesting_depth_limit() -> None:
    deep: Any = "leaf"
    for _ in range(JSON_MAX_DEPTH - 1):
        deep = [deep]
    assert _strict(strict_json({"a": deep}, "x"))
    with pytest.raises(InvalidRecordError, match="deeper"):
        strict_json({"a": [deep]}, "x")


@pytest.mark.parametrize("value", [2**53 + 1, -(2**53) - 1, 10**30 + 1, 10**5000],
                         ids=["2**53+1", "-2**53-1", "10**30+1", "10**5000"])
def test_integers_a_double_cannot_hold_are_refused(value: int) -> None:
    with pytest.raises(InvalidRecordError, match="string") as info:
        validate_customer_payload({"sentiment": {"n": value}})
    assert info.value.field == "sentiment.n"
    with pytest.raises(InvalidRecordError) as info:
        validate_customer_payload({"custom": {"scoreNum": value}})
    assert info.value.field == "custom.scoreNum"


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\ud83d"])
def test_unpaired_surrogates_are_refused_in_every_string(text: str) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": text}, "name"),
        ({"externalId": text}, "externalId"),
        ({"tags": ["ok", "x" + text]}, "tags[1]"),
        ({"custom": {"tierStr": text}}, "custom.tierStr"),
        ({"custom": {"ordersId": ["a", text]}}, "custom.ordersId[1]"),
        ({"phones": [text]}, "phones[0].phone"),
        ({"sentiment": {"x": text}}, "sentiment.x"),
    ]
    for body, path in cases:
        with pytest.raises(InvalidRecordError) as info:
            validate_customer_payload(body)
        assert info.value.field == path, body
    mapping = FieldMapping({"externalId": "id", "companyExternalId": "co"}, object_type="customer")
    with pytest.raises(InvalidRecordError) as info:
        mapping.apply({"id": "x", "co": text})
    assert info.value.field == "companyExternalId"
    with pytest.raises(InvalidRecordError) as info:
        FieldMapping.identity("customer").apply({"externalId": "x", "companyExternalId": text})
    assert info.value.field == "companyExternalId"


def test_identity_company_external_id_is_text_not_any_repr() -> None:
    identity = FieldMapping.identity("customer")
    assert identity.apply({"companyExternalId": 42}).company_external_id == "42"
    assert identity.apply({"companyExternalId": 42.0}).company_external_id == "42"
    for bad in (object(), b"co", ["co"], 1.5):
        with pytest.raises(InvalidRecordError) as info:
            identity.apply({"externalId": "x", "companyExternalId": bad})
        assert info.value.field == "companyExternalId"


# -- coercion where the type is known (one rule per type, shared) ---------------------


def test_known_date_time_fields_coerce_datetimes_and_dates() -> None:
    when = datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    body = validate_customer_payload({
        "signedUpAt": when, "birthdayAt": date(1990, 1, 2),
        "custom": {"signupAt": when, "renewAt": date(2030, 1, 1)},
    })
    assert body == {
        "signedUpAt": "2024-05-01T10:30:00.000Z", "birthdayAt": "1990-01-02T00:00:00.000Z",
        "custom": {"signupAt": "2024-05-01T10:30:00.000Z", "renewAt": "2030-01-01T00:00:00.000Z"},
    }


@pytest.mark.parametrize(
    "value",
    [
        datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5))),
        "9999-12-31T23:00:00-05:00",
        "0001-01-01T00:00:00+05:00",
    ],
)
def test_date_times_out_of_range_in_utc_are_invalid_not_overflow_errors(value: Any) -> None:
    assert utc_text(value) is None
    with pytest.raises(InvalidRecordError) as info:
        validate_customer_payload({"signedUpAt": value})
    assert info.value.field == "signedUpAt"
    with pytest.raises(CustomFieldError) as info:
        coerce_custom("signupAt", value)
    assert info.value.field == "custom.signupAt"


def test_known_number_fields_share_the_num_rule() -> None:
    assert validate_company_payload({"employeeCount": Decimal("12")}, for_create=False) == {
        "employeeCount": 12}
    assert validate_customer_payload({"custom": {"ltvNum": Decimal("12.5")}}) == {
        "custom": {"ltvNum": 12.5}}
    assert json_number(_Color.RED) == 1 and type(json_number(_Color.RED)) is int
    assert type(json_number(_MyFloat(1.5))) is float
    for bad in (Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("1E+999999999"),
                float("nan"), float("-inf"), True, "5", object()):
        with pytest.raises(ValueError):
            json_number(bad)
        with pytest.raises(InvalidRecordError) as info:
            validate_company_payload({"employeeCount": bad}, for_create=False)
        assert info.value.field == "employeeCount"
        with pytest.raises(CustomFieldError) as info:
            coerce_custom("ltvNum", bad)
        assert info.value.field == "custom.ltvNum"


def test_decimal_and_datetime_are_not_coerced_where_the_type_is_unknown() -> None:
    for value in (Decimal("1"), datetime(2024, 1, 1), date(2024, 1, 1)):
        with pytest.raises(InvalidRecordError, match="JSON"):
            validate_customer_payload({"sentiment": {"x": value}})


def test_a_value_whose_own_methods_fail_is_invalid_not_a_crash() -> None:
    class Nasty:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no comparing me")

        __hash__ = object.__hash__

    assert is_null(Decimal("sNaN")) is False  # InvalidOperation on !=: not null
    assert is_null(Nasty()) is False
    for body, field in (
        ({"gender": Nasty()}, "gender"),
        ({"gender": ["m"]}, "gender"),  # unhashable: once a TypeError
        ({"sentiment": {"x": Nasty()}}, "sentiment.x"),
        ({"custom": {"ltvNum": Decimal("sNaN")}}, "custom.ltvNum"),
    ):
        with pytest.raises(InvalidRecordError) as info:
            validate_customer_payload(body)
        assert info.value.field == field


def test_typed_inputs_never_raise_building_a_body() -> None:
    cases: list[tuple[Any, str]] = [
        (CustomerInput(tags=5), "tags"),  # type: ignore[arg-type]
        (CustomerInput(tags="vip"), "tags"),
        (CustomerInput(emails=7), "emails"),  # type: ignore[arg-type]
        (CustomerInput(emails="a@x.io"), "emails"),
        (CustomerInput(custom=5), "custom"),  # type: ignore[arg-type]
        (CompanyInput(name="Acme", domains=3), "domains"),  # type: ignore[arg-type]
        (CompanyInput(name="Acme", phones=object()), "phones"),  # type: ignore[arg-type]
    ]
    for data, field in cases:
        body = data.to_payload()
        validate = (validate_customer_payload if isinstance(data, CustomerInput)
                    else lambda b: validate_company_payload(b, for_create=True))
        with pytest.raises(InvalidRecordError) as info:
            validate(body)
        assert info.value.field == field, data
    assert CustomerInput(custom=None).to_payload() == {}  # type: ignore[arg-type]
    vip = {"vip"}
    assert CustomerInput(tags=vip).to_payload() == {"tags": ["vip"]}  # type: ignore[arg-type]
    tags = (t for t in ["a", "b"])
    assert CustomerInput(tags=tags).to_payload() == {"tags": ["a", "b"]}  # type: ignore[arg-type]


def test_finite_and_infinite_floats_in_standard_number_fields() -> None:
    assert validate_customer_payload({"rev": 3.0}) == {"rev": 3.0}
    for bad in (math.nan, math.inf):
        with pytest.raises(InvalidRecordError) as info:
            validate_customer_payload({"rev": bad})
        assert info.value.field == "rev"
