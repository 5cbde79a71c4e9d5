"""A mapping's compiled per-destination checks give what validate_payload gives, errors included.

``FieldMapping.apply`` checks each destination with a check compiled once
(``field_check`` / ``custom_check``) instead of walking the body with
``validate_payload``; these tests hold the two to the same answers, value by
value: the same body for a good value, the same error (class, field,
message, value) for a bad one.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

import pytest

from kustomer_activations.errors import InvalidRecordError
from kustomer_activations.mapping import Field, FieldMapping, _placed, is_null
from kustomer_activations.models.validation import custom_check, field_check, validate_payload


class _Text(str):
    pass


class _Int(enum.IntEnum):
    ONE = 1


VALUES: list[Any] = [
    "plain", "  padded  ", "x" * 256, "x" * 257, "x" * 1025, "", "é", "\ud800", _Text("sub"),
    "Ada@X.io", "ada@x", "a b@c.io", "@x.io", "ünï@x.io", "+1 555", " ",
    "12.5", " 42 ", "1e400", "nan", "inf", "1_000", "9" * 20, "0x10", "abc",
    "true", "No", "1", "maybe", "yes ",
    0, 1, -7, 2**53, 2**53 + 1, 2**60, 10**400, True, False, None, _Int.ONE,
    0.5, float("nan"), float("inf"), 1e308, Decimal("2.50"), Decimal("NaN"),
    dt.date(2024, 5, 1), dt.datetime(2024, 5, 1, 10, 30, 1, 123456),
    dt.datetime(2024, 5, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    "2024-05-01T10:00:00Z", "2024-02-30", "2024-05-01",
    "https://x.io/a", "ftp://x.io", ["a", "b"], ("a",), ["a", ""], [1], {"a": 1}, {1, 2}, b"x",
    "vip, beta,,", "x.io",
]

DESTINATIONS = [
    ("customer", "externalId"), ("customer", "name"), ("customer", "email"),
    ("customer", "phone"), ("customer", "tags"), ("customer", "locale"),
    ("customer", "signedUpAt"), ("customer", "gender"), ("customer", "rev"),
    ("customer", "sentiment"), ("customer", "externalIds"), ("customer", "createdAt"),
    ("customer", "company"),
    ("customer", "custom.tierStr"), ("customer", "custom.notesTxt"), ("customer", "custom.ltvNum"),
    ("customer", "custom.signupAt"), ("customer", "custom.vipBool"),
    ("customer", "custom.homeUrl"), ("customer", "custom.ownerId"),
    ("company", "name"), ("company", "domain"), ("company", "employeeCount"),
    ("company", "deleted"),
]


def _outcome(call: Any) -> tuple[str, Any]:
    try:
        return "ok", call()
    except InvalidRecordError as exc:
        return type(exc).__name__, (exc.field, str(exc), repr(exc.value))


def _reference(mapping: FieldMapping, dest: str, value: Any) -> tuple[str, Any]:
    """What apply gave before the compiled checks: the placed body through validate_payload."""
    step = mapping._steps[0]
    if is_null(value):
        value = None  # a blank value clears the field (skip_null=False)
    if dest.startswith("custom."):
        raw: dict[str, Any] = {"custom": {step.key: value}}
    else:
        raw = {step.key: value if value is None else _placed(step.kind, value)}
    return _outcome(lambda: validate_payload(mapping.object_type, raw,
                                             parse_strings=mapping.parse_strings))


@pytest.mark.parametrize("parse_strings", [False, True])
@pytest.mark.parametrize(("object_type", "dest"), DESTINATIONS)
def test_apply_matches_validate_payload(object_type: Any, dest: str, parse_strings: bool) -> None:
    mapping = FieldMapping({dest: Field("v", skip_null=False)}, object_type=object_type,
                           parse_strings=parse_strings)
    for value in VALUES:
        got = _outcome(lambda v=value: mapping.apply({"v": v}).payload)
        if got[0] == "ok" and not got[1]:
            continue  # a null the mapping skips (lists are never cleared): nothing validated
        assert got == _reference(mapping, dest, value), f"{dest} <- {value!r}"


def test_first_bad_field_wins_as_in_the_body() -> None:
    # Two bad values: the error is the body's first bad field, whichever check ran first.
    mapping = FieldMapping({"custom.aStr": "a", "name": "n", "custom.bNum": "b"},
                           object_type="customer")
    with pytest.raises(InvalidRecordError) as caught:
        mapping.apply({"a": "\ud800", "n": 5, "b": "x"})
    assert caught.value.field == "name"
    with pytest.raises(InvalidRecordError) as caught:
        mapping.apply({"a": "\ud800", "n": "ok", "b": "x"})
    assert caught.value.field == "custom.bNum"  # coerced before the custom object is walked


def test_compiled_checks_alone() -> None:
    assert field_check("customer", "externalId")("x") == "x"
    with pytest.raises(InvalidRecordError, match="1 to 256 characters, not 0"):
        field_check("customer", "externalId")("")
    with pytest.raises(KeyError):
        field_check("customer", "custom")
    num = custom_check("ltvNum", parse_strings=True)
    assert num(" 12.50 ") == 12.5
    assert num("7") == 7
    with pytest.raises(InvalidRecordError, match="not a number") as caught:
        num("seven")
    assert caught.value.field == "custom.ltvNum"
    assert caught.value.value == "seven"
    assert custom_check("signupAt")(dt.date(2024, 5, 1)) == "2024-05-01T00:00:00.000Z"


def test_row_mapping_many_custom_attributes_refused_as_a_whole() -> None:
    spec = {f"custom.a{i}Str": "v" for i in range(101)}
    with pytest.raises(InvalidRecordError, match="at most 100 keys"):
        FieldMapping(spec, object_type="customer").apply({"v": "x"})
