"""Hostile rows: values that are not strict JSON, malformed emails, odd error bodies, id lists.

Each class goes through the public API (``upsert`` and ``upsert_many``, on the
sync client and the async one under asyncio and trio) against the emulator:
hostile rows interleaved with good rows end ``invalid`` with the field path,
the good rows of the same chunk are ``created``, the counts add up to the
rows, and the emulator holds exactly the good rows.

Property tests (hypothesis) check the mechanism underneath: whatever a row
holds, applying a :class:`FieldMapping` returns a strict JSON payload or
raises :class:`InvalidRecordError` with ``field`` set, never anything else.
``KA_LONG_TESTS=1`` runs them much longer.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kustomer_activations import (
    FieldMapping,
    InvalidRecordError,
    Outcome,
    SyncReport,
    UpsertResult,
)
from kustomer_activations.errors import APIError
from kustomer_activations.testing import KustomerEmulator, VirtualClock

from ..helpers import drive, make_client

# -- hypothesis profiles -----------------------------------------------------------

settings.register_profile(
    "ka-hostile-rows", max_examples=40, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "ka-hostile-rows-long", max_examples=2_000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: ``KA_LONG_TESTS=1`` selects the long run; the default keeps this file near a few seconds.
PROFILE = settings.get_profile(
    "ka-hostile-rows-long" if os.environ.get("KA_LONG_TESTS") == "1" else "ka-hostile-rows"
)

# -- the emulator and clients --------------------------------------------------------

CUSTOM_ATTRIBUTES = ("tierStr", "ltvNum", "signupAt", "isVipBool", "ordersId")


def _emulator() -> KustomerEmulator:
    emu = KustomerEmulator(clock=VirtualClock())
    for name in CUSTOM_ATTRIBUTES:
        extra: dict[str, Any] = (
            {"multi": True, "target": "kobject.order"} if name == "ordersId" else {})
        emu.define_custom_attribute("customer", name, **extra)
    return emu


def _client(flavor: str, emu: KustomerEmulator, transport: Any = None) -> Any:
    return make_client(flavor, transport=transport or emu.transport, base_url=emu.base_url,
                       clock=emu.clock)


def _upsert_many(flavor: str, client: Any, rows: list[Any], **kw: Any) -> SyncReport:
    report: SyncReport = drive(flavor, client, lambda c: c.customers.upsert_many(rows, **kw))
    return report


def _upsert_each(flavor: str, client: Any, rows: list[Any], **kw: Any) -> list[UpsertResult]:
    if flavor == "sync":
        return [client.customers.upsert(row, **kw) for row in rows]

    async def each(c: Any) -> list[UpsertResult]:
        return [await c.customers.upsert(row, **kw) for row in rows]

    results: list[UpsertResult] = drive(flavor, client, each)
    return results


def _good(i: int) -> dict[str, Any]:
    """A good row that uses every coercion the SDK allows where the type is known."""
    return {
        "externalId": f"good-{i}",
        "name": f"Good {i}",
        "emails": [{"email": f"good{i}@example.com"}],
        "signedUpAt": date(2024, 1, 2),
        "sentiment": {"polarity": 1, "confidence": 0.5},
        "locations": [{"name": "HQ", "latitude": 48.85, "longitude": 2.35}],
        "custom": {"ltvNum": Decimal("12.5"), "signupAt": datetime(2024, 5, 1, 12, 0),
                   "tierStr": "gold", "ordersId": ["order-1", f"order-{i}"]},
    }


def _stored_external_ids(emu: KustomerEmulator) -> set[str]:
    return {c["externalId"] for c in emu.customers.all()}


# A cycle and a value too large for any double, built once.
_LOOP: dict[str, Any] = {}
_LOOP["me"] = _LOOP


def _hostile(name: str, value: Any, build: Callable[[Any], dict[str, Any]], path: str,
             ) -> tuple[str, dict[str, Any], str]:
    return name, {"externalId": f"bad-{name}", **build(value)}, path


#: (name, row, the field path its error must name). One per class of hostile value.
NON_JSON: list[tuple[str, dict[str, Any], str]] = [
    _hostile("object", object(), lambda v: {"sentiment": {"polarity": v}}, "sentiment.polarity"),
    _hostile("nan", math.nan, lambda v: {"locations": [{"latitude": v}]}, "locations[0].latitude"),
    _hostile("inf", math.inf, lambda v: {"locations": [{"name": "x"}, {"longitude": v}]},
             "locations[1].longitude"),
    _hostile("datetime", datetime(2024, 1, 1), lambda v: {"socials": [{"username": v}]},
             "socials[0].username"),
    _hostile("bytes", b"\xff", lambda v: {"urls": [{"url": v}]}, "urls[0].url"),
    _hostile("decimal", Decimal("1.5"), lambda v: {"externalIds": [{"externalId": "e", "x": v}]},
             "externalIds[0].x"),
    _hostile("set", {"a", "b"}, lambda v: {"sentiment": {"polarity": 1, "confidence": v}},
             "sentiment.confidence"),
    _hostile("nested", object(), lambda v: {"locations": [{"name": {"deep": [1, {"x": v}]}}]},
             "locations[0].name.deep[1].x"),
    _hostile("num-nan", math.nan, lambda v: {"custom": {"ltvNum": v}}, "custom.ltvNum"),
    _hostile("num-inf", Decimal("-Infinity"), lambda v: {"custom": {"ltvNum": v}},
             "custom.ltvNum"),
    _hostile("huge-int", 2**64 + 1, lambda v: {"sentiment": {"polarity": v}},
             "sentiment.polarity"),
    _hostile("giant-int", 10**5000, lambda v: {"custom": {"ltvNum": v}}, "custom.ltvNum"),
    _hostile("surrogate", "Ada \ud800", lambda v: {"name": v}, "name"),
    _hostile("key", {1: "x"}, lambda v: {"sentiment": v}, "sentiment[1]"),
    _hostile("loop", _LOOP, lambda v: {"sentiment": v}, "sentiment.me"),
    _hostile("out-of-range", "9999-12-31T23:00:00-05:00", lambda v: {"custom": {"signupAt": v}},
             "custom.signupAt"),
]

MALFORMED_EMAILS = ["@", "user@", "@example.com", "a@@b.com", "a b@c.com", "user@localhost",
                    "user@example.com.", "a\u200b@b.com"]

EMAILS: list[tuple[str, dict[str, Any], str]] = [
    (f"email-{i}", {"externalId": f"bad-email-{i}", "emails": [{"email": bad}]},
     "emails[0].email")
    for i, bad in enumerate(MALFORMED_EMAILS)
] + [
    ("shared-email", {"externalId": "bad-shared", "sharedEmails": [{"email": "a@@b.com"}]},
     "sharedEmails[0].email"),
    ("second-email", {"externalId": "bad-second",
                      "emails": [{"email": "ok@example.com"}, {"email": "user@"}]},
     "emails[1].email"),
]

MULTI_IDS: list[tuple[str, dict[str, Any], str]] = [
    ("ids-nested", {"externalId": "bad-ids-1", "custom": {"ordersId": ["o-1", ["o-2"]]}},
     "custom.ordersId[1]"),
    ("ids-object", {"externalId": "bad-ids-2", "custom": {"ordersId": [{"id": "o-1"}]}},
     "custom.ordersId[0]"),
    ("ids-number", {"externalId": "bad-ids-3", "custom": {"ordersId": ["o-1", 7]}},
     "custom.ordersId[1]"),
]

CLASSES = {"non-json": NON_JSON, "emails": EMAILS, "multi-ids": MULTI_IDS}


def _interleave(hostile: list[tuple[str, dict[str, Any], str]],
                ) -> tuple[list[dict[str, Any]], dict[int, str], set[str]]:
    """good, bad, good, bad, ..., good: the rows, the path expected per bad row, good ids."""
    rows: list[dict[str, Any]] = [_good(0)]
    expected: dict[int, str] = {}
    for i, (_, row, path) in enumerate(hostile, start=1):
        expected[len(rows)] = path
        rows.append(row)
        rows.append(_good(i))
    good = {r["externalId"] for r in rows if r["externalId"].startswith("good-")}
    return rows, expected, good


def _check_invalid(result: UpsertResult, path: str) -> None:
    assert result.outcome is Outcome.INVALID, result
    assert isinstance(result.error, InvalidRecordError), result
    assert result.error.field == path, (result.error.field, path)
    assert path in (result.reason or ""), result.reason


@pytest.mark.parametrize("kind", list(CLASSES))
def test_upsert_many_isolates_hostile_rows(flavor: str, kind: str) -> None:
    rows, expected, good = _interleave(CLASSES[kind])
    emu = _emulator()
    client = _client(flavor, emu)
    report = _upsert_many(flavor, client, rows, key="externalId")
    assert report.rows == len(rows) == sum(report.counts.values())
    assert (report.created, report.invalid) == (len(good), len(expected)), report.summary()
    failures = {f.row: f for f in report.failures}
    assert set(failures) == set(expected)
    for index, path in expected.items():
        _check_invalid(failures[index], path)
        assert failures[index].source is not None
    assert _stored_external_ids(emu) == good
    stored = emu.find_customers(externalId="good-1")[0]
    assert stored["custom"]["ltvNum"] == 12.5
    assert stored["custom"]["signupAt"].startswith("2024-05-01T12:00:00")
    assert stored["custom"]["ordersId"] == ["order-1", "order-1"]

    again = _upsert_many(flavor, client, rows, key="externalId")
    assert (again.unchanged, again.invalid, again.rows) == (len(good), len(expected), len(rows))
    assert _stored_external_ids(emu) == good


@pytest.mark.parametrize("kind", list(CLASSES))
def test_upsert_one_by_one_never_raises_for_a_hostile_row(flavor: str, kind: str) -> None:
    rows, expected, good = _interleave(CLASSES[kind])
    emu = _emulator()
    client = _client(flavor, emu)
    results = _upsert_each(flavor, client, rows, key="externalId")
    assert len(results) == len(rows)
    for index, result in enumerate(results):
        if index in expected:
            _check_invalid(result, expected[index])
        else:
            assert result.outcome is Outcome.CREATED, result
    assert _stored_external_ids(emu) == good
    again = _upsert_each(flavor, client, [r for i, r in enumerate(rows) if i not in expected],
                         key="externalId")
    assert {r.outcome for r in again} == {Outcome.UNCHANGED}


def test_a_mapping_with_the_email_shortcut_and_an_email_key(flavor: str) -> None:
    mapping = FieldMapping(
        {"email": "mail", "name": "full_name", "sentiment": "mood",
         "custom.ltvNum": "ltv", "custom.ordersId": "orders"},
        object_type="customer",
    )
    rows: list[dict[str, Any]] = []
    expected: dict[int, str] = {}
    good: set[str] = set()
    for i, bad in enumerate(MALFORMED_EMAILS):
        good.add(f"m{i}@example.com")
        rows.append({"mail": f"m{i}@example.com", "full_name": f"M {i}", "mood": None,
                     "ltv": Decimal(i), "orders": [f"o-{i}"]})
        expected[len(rows)] = "emails[0].email"
        rows.append({"mail": bad, "full_name": "Bad", "mood": None, "ltv": 1, "orders": None})
    expected[len(rows)] = "sentiment.polarity"
    rows.append({"mail": "mood@example.com", "full_name": "Bad", "mood": {"polarity": object()},
                 "ltv": 1, "orders": None})
    expected[len(rows)] = "custom.ltvNum"
    rows.append({"mail": "ltv@example.com", "full_name": "Bad", "mood": None, "ltv": math.inf,
                 "orders": None})
    expected[len(rows)] = "custom.ordersId[0]"
    rows.append({"mail": "ids@example.com", "full_name": "Bad", "mood": None, "ltv": 1,
                 "orders": [b"o-1"]})

    emu = _emulator()
    client = _client(flavor, emu)
    report = _upsert_many(flavor, client, rows, key="email", mapping=mapping)
    assert report.rows == len(rows) == sum(report.counts.values())
    assert (report.created, report.invalid) == (len(good), len(expected)), report.summary()
    for failure in report.failures:
        assert failure.row is not None
        _check_invalid(failure, expected[failure.row])
    stored = {e["email"] for c in emu.customers.all() for e in c.get("emails", [])}
    assert stored == good

    emu2 = _emulator()
    results = _upsert_each(flavor, _client(flavor, emu2), rows, key="email", mapping=mapping)
    for index, result in enumerate(results):
        if index in expected:
            _check_invalid(result, expected[index])
        else:
            assert result.outcome is Outcome.CREATED, result
    assert {e["email"] for c in emu2.customers.all() for e in c.get("emails", [])} == good


# -- Kustomer's OpenAPI error shape: integer status, source.parameters ---------------


class _RefuseWithOpenApiError:
    """Answers a write that holds ``bad`` with the OpenAPI 400 example's shape."""

    def __init__(self, inner: Any, bad: str) -> None:
        self.inner = inner
        self.bad = bad
        self.refused = 0

    def _refuse(self, request: httpx.Request) -> httpx.Response | None:
        if request.method not in ("POST", "PUT") or "/search" in request.url.path:
            return None
        if self.bad.encode() not in request.content:
            return None
        self.refused += 1
        error = {"status": 400, "code": "invalid_parameter", "title": "Invalid parameter",
                 "source": {"parameters": "emails"}}
        return httpx.Response(400, json={"errors": [error]}, request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._refuse(request) or self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._refuse(request) or await self.inner.handle_async_request(request)


def _check_rejected(result: UpsertResult) -> None:
    assert result.outcome is Outcome.REJECTED, result
    assert isinstance(result.error, APIError)
    [detail] = result.error.errors
    assert (detail.status, detail.parameter) == ("400", "emails")
    assert "(at emails)" in (result.reason or str(result.error))


def test_an_error_with_source_parameters_names_the_parameter(flavor: str) -> None:
    rows = [_good(i) for i in range(5)]
    emu = _emulator()
    transport = _RefuseWithOpenApiError(emu.transport, "good3@example.com")
    client = _client(flavor, emu, transport=transport)
    report = _upsert_many(flavor, client, rows, key="externalId")
    assert (report.created, report.rejected, report.rows) == (4, 1, 5), report.summary()
    [failure] = report.failures
    assert failure.row == 3
    _check_rejected(failure)
    assert _stored_external_ids(emu) == {"good-0", "good-1", "good-2", "good-4"}

    emu2 = _emulator()
    results = _upsert_each(flavor, _client(flavor, emu2, _RefuseWithOpenApiError(
        emu2.transport, "good3@example.com")), rows, key="externalId")
    assert [r.outcome for r in results].count(Outcome.CREATED) == 4
    _check_rejected(results[3])


# -- property tests: the mapping + coercion layer -------------------------------------

_TZ = st.sampled_from([None, timezone.utc, timezone(timedelta(hours=-5)),
                       timezone(timedelta(hours=14)), timezone(timedelta(minutes=-719))])
ODD_TEXT = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zs", "Zl", "L", "N", "P"]), max_size=6),
    st.sampled_from([
        "", " ", "\t", "\n", "\x00", "\ud800", "a\udfffb", "\u200b", "\u00a0", "NaN",
        "Infinity", "-0", "1e999", "12.5", " 7 ", "yes", "2024-13-45", "2024-05-01",
        "2024-05-01T10:00:00Z", "9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00",
        "https://example.com/x", "http://", "a@b.co", "a@@b.com", "@", "user@", "x" * 1100,
        "\U0001f600", "vip, gold", "o-1",
    ]),
)
JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False), ODD_TEXT,
)
# Over 4300 digits: repr() and str() refuse it (built lazily: hypothesis reprs its strategies).
GIANT_INT = st.integers(4301, 4400).map(lambda digits: 10**digits)
HOSTILE_LEAF = st.one_of(
    GIANT_INT,
    st.builds(object),
    st.sampled_from([math.nan, math.inf, -math.inf, 2**53 + 1, -(2**70) - 1, 10**400,
                     Decimal("sNaN"), 1j, len, int]),
    st.binary(max_size=4),
    st.builds(bytearray, st.binary(max_size=2)),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sets(st.integers(0, 3), max_size=3),
    st.frozensets(ODD_TEXT, max_size=2),
    st.datetimes(timezones=_TZ),
    st.dates(),
    st.integers(),
)
LEAF = st.one_of(JSON_LEAF, HOSTILE_LEAF)
KEY = st.one_of(ODD_TEXT, st.sampled_from([1, None, ("a", 1), 2.5, True]), GIANT_INT)
VALUE = st.recursive(
    LEAF,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.tuples(children, children),
        st.dictionaries(KEY, children, max_size=3),
    ),
    max_leaves=8,
)

EMAIL_TEXT = st.one_of(
    st.sampled_from(["a@b.co", "Ada@Example.com", "x.y+z@sub.example.org", "a@@b.com", "@",
                     "user@", "@example.com", "a b@c.com", "a@b.com.", "a\ud800@b.com"]),
    st.builds(lambda a, b: f"{a}@{b}.com", ODD_TEXT, ODD_TEXT),
)
STANDARD = {
    "name": ODD_TEXT, "externalId": ODD_TEXT, "username": ODD_TEXT, "company": ODD_TEXT,
    "locale": ODD_TEXT, "timeZone": ODD_TEXT, "avatarUrl": ODD_TEXT, "defaultLang": ODD_TEXT,
    "gender": st.sampled_from(["m", "f", "x", ""]),
    "rev": st.one_of(st.integers(), st.floats(), st.decimals()),
    "signedUpAt": st.one_of(st.datetimes(timezones=_TZ), st.dates(), ODD_TEXT),
    "birthdayAt": st.one_of(st.datetimes(timezones=_TZ), st.dates(), ODD_TEXT),
    "tags": st.one_of(st.lists(st.one_of(st.sampled_from(["vip", "gold", "a b"]), ODD_TEXT),
                               max_size=3), ODD_TEXT),
    "emails": st.lists(st.one_of(
        EMAIL_TEXT,
        st.fixed_dictionaries({"email": EMAIL_TEXT}, optional={
            "type": st.sampled_from(["home", "work", "mobile"]), "verified": st.booleans()}),
    ), max_size=3),
    "sharedEmails": st.lists(EMAIL_TEXT, max_size=2),
    "phones": st.lists(ODD_TEXT, max_size=2),
    "sentiment": st.dictionaries(ODD_TEXT, VALUE, max_size=3),
    "locations": st.lists(st.dictionaries(ODD_TEXT, VALUE, max_size=3), max_size=2),
    "socials": st.lists(st.dictionaries(ODD_TEXT, VALUE, max_size=2), max_size=2),
    "externalIds": st.lists(st.dictionaries(ODD_TEXT, VALUE, max_size=2), max_size=2),
    "urls": st.lists(st.dictionaries(ODD_TEXT, VALUE, max_size=2), max_size=2),
}
TYPED_CUSTOM = {
    "tierStr": ODD_TEXT,
    "notesTxt": ODD_TEXT,
    "ltvNum": st.one_of(st.integers(), st.floats(), st.decimals(), ODD_TEXT),
    "signupAt": st.one_of(st.datetimes(timezones=_TZ), st.dates(), ODD_TEXT),
    "isVipBool": st.one_of(st.booleans(), ODD_TEXT),
    "homeUrl": ODD_TEXT,
    "ordersId": st.one_of(ODD_TEXT, st.lists(st.one_of(ODD_TEXT, VALUE), max_size=3)),
}


def _field(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value for the field, sometimes anything at all."""
    return st.one_of(strategy, strategy, VALUE)


CUSTOM = st.dictionaries(
    st.one_of(st.sampled_from(list(TYPED_CUSTOM)), st.sampled_from(["bad", "Str", "xNum"]), KEY),
    VALUE, max_size=2,
).flatmap(lambda extra: st.fixed_dictionaries({}, optional={
    name: _field(s) for name, s in TYPED_CUSTOM.items()}).map(lambda typed: {**typed, **extra}))

IDENTITY_ROW = st.fixed_dictionaries({}, optional={
    **{name: _field(s) for name, s in STANDARD.items()},
    "custom": st.one_of(CUSTOM, VALUE),
    "companyExternalId": _field(ODD_TEXT),
    "bogusField": VALUE,
})

NAMED = FieldMapping(
    {"externalId": "id", "name": "full_name", "email": "mail", "tags": "tags",
     "sentiment": "mood", "locations": "where", "signedUpAt": "signup",
     "companyExternalId": "company", "custom.ltvNum": "ltv", "custom.signupAt": "since",
     "custom.isVipBool": "vip", "custom.ordersId": "orders", "custom.tierStr": "tier"},
    object_type="customer",
)
NAMED_PARSING = FieldMapping(NAMED.spec, object_type="customer", parse_strings=True,
                             skip_nulls=False)
NAMED_ROW = st.fixed_dictionaries({
    "id": _field(ODD_TEXT), "full_name": _field(ODD_TEXT), "mail": _field(EMAIL_TEXT),
    "tags": _field(STANDARD["tags"]), "mood": _field(STANDARD["sentiment"]),
    "where": _field(STANDARD["locations"]), "signup": _field(STANDARD["signedUpAt"]),
    "company": _field(ODD_TEXT), "ltv": _field(TYPED_CUSTOM["ltvNum"]),
    "since": _field(TYPED_CUSTOM["signupAt"]), "vip": _field(TYPED_CUSTOM["isVipBool"]),
    "orders": _field(TYPED_CUSTOM["ordersId"]), "tier": _field(ODD_TEXT),
})


def _holds(mapping: FieldMapping, row: Mapping[str, Any]) -> None:
    """The property: a strict JSON payload, or an InvalidRecordError with a field."""
    try:
        record = mapping.apply(row)
    except InvalidRecordError as exc:
        assert isinstance(exc.field, str) and exc.field, repr(exc)
        str(exc.for_record(7))  # describing the error never fails either
        return
    text = json.dumps(record.payload, allow_nan=False, ensure_ascii=False)
    text.encode("utf-8")  # what httpx sends
    assert json.loads(text) == record.payload  # plain data: nothing changes on the way
    if record.company_external_id is not None:
        record.company_external_id.encode("utf-8")


@PROFILE
@given(IDENTITY_ROW)
def test_identity_mapping_gives_strict_json_or_invalid(row: dict[str, Any]) -> None:
    _holds(FieldMapping.identity("customer"), row)
    _holds(FieldMapping.identity("customer", parse_strings=True), row)


@PROFILE
@given(NAMED_ROW)
def test_named_mapping_gives_strict_json_or_invalid(row: dict[str, Any]) -> None:
    _holds(NAMED, row)
    _holds(NAMED_PARSING, row)


@PROFILE
@given(st.fixed_dictionaries({}, optional={
    "name": _field(ODD_TEXT), "externalId": _field(ODD_TEXT),
    "domains": _field(st.lists(st.one_of(ODD_TEXT, st.builds(lambda d: {"domain": d}, ODD_TEXT)),
                               max_size=2)),
    "emails": _field(STANDARD["emails"]), "employeeCount": _field(STANDARD["rev"]),
    "locations": _field(STANDARD["locations"]), "custom": st.one_of(CUSTOM, VALUE),
}))
def test_company_identity_mapping_gives_strict_json_or_invalid(row: dict[str, Any]) -> None:
    _holds(FieldMapping.identity("company"), row)


@PROFILE
@given(VALUE)
def test_any_value_in_any_free_form_field(value: Any) -> None:
    for field in ("sentiment", "locations", "socials", "externalIds", "urls", "custom"):
        wrapped = value if field in ("sentiment", "custom") else [value]
        _holds(FieldMapping.identity("customer"), {"externalId": "x", field: wrapped})
