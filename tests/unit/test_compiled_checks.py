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


class _Day(dt.date):
    pass


class _Int(enum.IntEnum):
    ONE = 1


VALUES: list[Any] = [
    "plain", "  padded  ", "x" * 256, "x" * 257, "x" * 1025, "", "é", "\ud800", _Text("sub"),
    "Ada@X.io", "ada@x", "a b@c.io", "@x.io", "ünï@x.io", "+1 555", " ",
    "12.5", " 42 ", "1e400", "nan", "inf", "1_000", "9" * 20, "0x10", "abc",
    "1.", ".5", "-3.25", "1.5e3", "1_0.5", "1.2.3", ".", "1e400.0", "9" * 400 + ".0", "nan.",
    "true", "No", "1", "maybe", "yes ",
    0, 1, -7, 2**53, 2**53 + 1, 2**60, 10**400, True, False, None, _Int.ONE,
    0.5, float("nan"), float("inf"), 1e308, Decimal("2.50"), Decimal("NaN"),
    dt.date(2024, 5, 1), dt.date(1, 1, 1), dt.date(9999, 12, 31), _Day(2024, 5, 1),
    dt.datetime(2024, 5, 1, 10, 30, 1, 123456),
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


IDENTITY_FIELDS = {
    "customer": ["externalId", "name", "emails", "phones", "tags", "locale", "signedUpAt",
                 "gender", "rev", "externalIds", "company", "nmae", 7],
    "company": ["name", "domains", "employeeCount", "deleted", "externalId", "nmae"],
}
CUSTOM_NAMES = ["tierStr", "notesTxt", "ltvNum", "signupAt", "vipBool", "homeUrl", "ownerId",
                "bad name", "noSuffix"]


@pytest.mark.parametrize("parse_strings", [False, True])
@pytest.mark.parametrize("object_type", ["customer", "company"])
def test_identity_rows_match_validate_payload(object_type: Any, parse_strings: bool) -> None:
    """Kustomer-shaped rows (no mapping) are checked field by field; the answer is validate_payload's."""
    mapping = FieldMapping.identity(object_type, parse_strings=parse_strings)
    contacts = [[{"type": "work", "email": "a@x.io"}], ["a@x.io", "a@x.io"],
                [{"phone": "+1 555", "type": "mobile"}], [{"email": "a@x.io", "oops": 1}],
                [{"email": "a@x.io"}], [{"phone": "+1"}], [{"type": "", "email": "a@x.io"}],
                [{"type": None, "phone": "+1"}], [{"type": 0, "email": "a@x.io"}],
                [{"type": 1, "email": "a@x.io"}], [{"type": "fax", "email": "a@x.io"}],
                [{"type": "fax", "phone": "+1"}], [{"type": "home", "email": "a@x"}],
                [{"type": "home", "email": "ünï@x.io"}], [{"type": "home", "email": _Text("a@x.io")}],
                [{"email": 5}], [{"phone": " "}], [{"phone": "\ud800"}],
                [{"type": "work", "email": "a@x.io", "verified": True}],
                [{"type": _Text("work"), "email": "a@x.io"}], ({"email": "a@x.io"},),
                [{"email": "a@x.io"}, {"email": "b@x.io"}], [[]], [None]]
    bodies: list[dict[Any, Any]] = []
    for i, value in enumerate([*VALUES, *contacts]):
        for name in IDENTITY_FIELDS[object_type]:
            bodies.append({name: value})
        for custom in CUSTOM_NAMES:
            bodies.append({"name": "Ada Co", "custom": {custom: value}})
        other = VALUES[(i * 7) % len(VALUES)]
        bodies.append({"externalId": f"e{i}", "custom": {"tierStr": other, "ltvNum": value}})
    bodies += [{"custom": "x"}, {"custom": {f"a{i}Str": "v" for i in range(101)}}, {"custom": {}}]
    for body in bodies:
        got = _outcome(lambda b=body: mapping.apply(dict(b)).payload)
        want = _outcome(lambda b=body: validate_payload(object_type, b, parse_strings=parse_strings))
        assert got == want, body
    # the compiled path is the one taken (or this test compares validate_payload to itself)
    assert mapping._field_checks and mapping._custom_checks


@pytest.mark.parametrize(("object_type", "name"), [
    ("customer", "emails"), ("customer", "phones"), ("customer", "sharedEmails"),
    ("customer", "whatsapps"), ("company", "emails"), ("company", "phones"),
])
def test_contact_lists_checked_inline_answer_as_validate_payload(object_type: Any, name: str) -> None:
    check = field_check(object_type, name)
    values = [[{"type": t, k: v}] for t in ("home", "work", "mobile", "fax", "", None, 3)
              for k in ("email", "phone") for v in ("a@x.io", "+1 555", "", "a@x", "é@x.io")]
    values += [[{k: "a@x.io"}] for k in ("email", "phone", "type")]
    for value in values:
        got = _outcome(lambda v=value: check(v))
        want = _outcome(lambda v=value: validate_payload(object_type, {name: v})[name])
        assert got == want, value
