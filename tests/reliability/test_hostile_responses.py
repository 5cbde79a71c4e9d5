"""Hostile answers at every endpoint a sync, a single upsert and ``check()`` call.

A transport wrapper (``_hostile.HostileTransport``) replaces the emulator's
answer to one endpoint with something Kustomer (or a proxy in front of it)
could send: an HTML 502 page, truncated JSON, a 200 of the wrong shape, a
404/418 with or without JSON, a body of several MB; optionally after letting
the emulator apply the request, so the write really landed. Every run is
checked against the invariants of ``_invariants.py``; the tests below the
matrix pin the specific behaviour each kind of answer calls for.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from kustomer_activations import (
    APIResponseValidationError,
    KustomerError,
    Outcome,
    SyncAbortedError,
)
from kustomer_activations.testing import Fault, KustomerEmulator

from ..helpers import FLAVORS, drive
from ._harness import (
    CUSTOM,
    KEYS,
    Run,
    check_run,
    link_rows,
    new_client,
    new_emulator,
    rows_for,
    seed,
    sync,
    upsert_one,
    write_requests,
)
from ._hostile import ANSWERS, STATUSES, UNREADABLE_200, HostileTransport, Rule
from ._invariants import says_may_have

CUSTOM_KEY = f"custom.{CUSTOM}"
#: Kustomer's bulk jobs time out in the SDK after 15 minutes; unreadable polls must settle well before.
SETTLE_WITHIN = 300.0
#: No reason, error message or summary may carry a multi-MB body.
MAX_TEXT = 64 * 1024

SHAPE_FOR_KEY = {"externalId": "all", "email": "email", CUSTOM_KEY: "custom"}


# -- the cases: one per endpoint and entry point ------------------------------------------

Prepared = tuple[list[dict[str, Any]], str, dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """How to make the SDK call one endpoint: setup, rows, key and the entry point."""

    name: str
    method: str
    path: str
    kind: str  # "sync", "upsert" or "check"
    prepare: Callable[[KustomerEmulator], Prepared]
    writes: bool = False  # a write endpoint: also run with the write applied
    lookup: bool = False  # a read that decides create-or-update
    when: Callable[[httpx.Request], bool] | None = None
    emu_options: dict[str, Any] = field(default_factory=dict)


# Every prepared row goes through ``link_rows``: where the emulator hides customers'
# company links (``company_link="hidden"``, in ``Readings.strictest()``) the rows map
# ``companyExternalId``, else no update could be sent; under the default readings they
# are the plain rows, so each case calls exactly the endpoints it did before.
def _new(n: int, key: str = "externalId", shape: str = "all", **options: Any) -> Callable[..., Prepared]:
    def prepare(emu: KustomerEmulator) -> Prepared:
        return link_rows(emu, rows_for(n, shape=shape)), key, dict(options)
    return prepare


def _existing(n: int, key: str = "externalId", shape: str = "all", new: int = 0,
              **options: Any) -> Callable[..., Prepared]:
    """``n`` rows whose customers exist under an old name, then ``new`` rows that do not."""
    def prepare(emu: KustomerEmulator) -> Prepared:
        rows = link_rows(emu, rows_for(n + new, shape=shape))
        seed(emu, rows[:n])
        return rows, key, dict(options)
    return prepare


def _lost_bulk(key: str, shape: str) -> Callable[..., Prepared]:
    """New rows whose bulk answer is lost: the SDK settles them with direct lookups."""
    def prepare(emu: KustomerEmulator) -> Prepared:
        emu.faults.add(Fault.lost_response(), match="POST /v1/customers/bulk", times=1)
        return link_rows(emu, rows_for(6, shape=shape)), key, {}
    return prepare


def _new_emails(emu: KustomerEmulator) -> Prepared:
    """Existing customers whose emails change: arrays make the SDK read each one by id."""
    rows = link_rows(emu, rows_for(6))
    for i, row in enumerate(rows):
        seed(emu, [row], emails=[{"email": f"old{i}@example.com"}])
    return rows, "externalId", {}


def _company_api_created(emu: KustomerEmulator) -> Prepared:
    """A company created through the API moments ago: search lags, the direct lookup is used."""
    with httpx.Client(transport=emu.transport, base_url=emu.base_url,
                      headers={"Authorization": "Bearer setup"}) as http:
        http.post("/v1/companies", json={"name": "Acme Corp", "externalId": "co-1"}).raise_for_status()
    rows = [dict(r, companyExternalId="co-1") for r in rows_for(4)]
    return rows, "externalId", {}


def _company_seeded(emu: KustomerEmulator) -> Prepared:
    emu.seed_company({"name": "Acme Corp", "externalId": "co-1"})
    return [dict(rows_for(1)[0], companyExternalId="co-1")], "externalId", {}


def _has_external_id_param(request: httpx.Request) -> bool:
    return "externalId" in request.url.params


_ID = r"(?!search$|bulk$)[^/=]+"
CASES: list[Case] = [
    # upsert_many / stream_upsert
    Case("sync-metadata", "GET", r"/v1/metadata/customer", "sync", _new(6)),
    Case("sync-search-externalId", "POST", r"/v1/customers/search", "sync",
         _existing(3, new=3), lookup=True),
    Case("sync-search-email", "POST", r"/v1/customers/search", "sync",
         _existing(3, "email", "email", new=3), lookup=True),
    Case("sync-search-custom", "POST", r"/v1/customers/search", "sync",
         _existing(3, CUSTOM_KEY, "custom", new=3), lookup=True),
    Case("sync-lookup-externalId", "GET", r"/v1/customers/externalId=[^/]*", "sync",
         _lost_bulk("externalId", "all"), lookup=True),
    Case("sync-lookup-email", "GET", r"/v1/customers/email=[^/]*", "sync",
         _lost_bulk(CUSTOM_KEY, "email"), lookup=True),
    Case("sync-get-by-id", "GET", rf"/v1/customers/{_ID}", "sync", _new_emails, lookup=True),
    Case("sync-company-lookup", "GET", r"/v1/companies", "sync", _company_api_created,
         lookup=True, when=_has_external_id_param, emu_options={"search_lag": 60.0}),
    Case("sync-create", "POST", r"/v1/customers", "sync", _new(2, CUSTOM_KEY, "custom"),
         writes=True),
    Case("sync-update", "PUT", rf"/v1/customers/{_ID}", "sync", _existing(2), writes=True),
    Case("sync-bulk-create", "POST", r"/v1/customers/bulk", "sync", _new(8, CUSTOM_KEY, "custom"),
         writes=True),
    Case("sync-bulk-update", "PUT", r"/v1/customers/bulk", "sync", _existing(8), writes=True),
    # The status is asked only when /batches is unreadable or not ready three times in a row:
    # a job slower than the first reads makes the SDK ask it.
    Case("sync-bulk-status", "GET", r"/v1/bulk/[^/]+", "sync", _new(8),
         emu_options={"bulk_delay": 30.0}),
    Case("sync-bulk-batches", "GET", r"/v1/bulk/[^/]+/batches", "sync", _new(8)),
    # a single upsert
    Case("upsert-metadata", "GET", r"/v1/metadata/customer", "upsert",
         _new(1, validate_fields=True)),
    Case("upsert-search-custom", "POST", r"/v1/customers/search", "upsert",
         _existing(1, CUSTOM_KEY, "custom"), lookup=True),
    Case("upsert-lookup-externalId", "GET", r"/v1/customers/externalId=[^/]*", "upsert",
         _existing(1), lookup=True),
    Case("upsert-lookup-email", "GET", r"/v1/customers/email=[^/]*", "upsert",
         _existing(1, "email", "email"), lookup=True),
    Case("upsert-company-lookup", "GET", r"/v1/companies", "upsert", _company_seeded,
         lookup=True, when=_has_external_id_param),
    Case("upsert-create", "POST", r"/v1/customers", "upsert", _new(1), writes=True),
    Case("upsert-update", "PUT", rf"/v1/customers/{_ID}", "upsert", _existing(1), writes=True),
    # client.check()
    Case("check-token", "GET", r"/v1/auth/tokens/current", "check", _new(0)),
]
CASE = {c.name: c for c in CASES}
#: Single upserts whose customer exists: an unreadable lookup must never lead to a create.
EXISTING = frozenset({"upsert-search-custom", "upsert-lookup-externalId", "upsert-lookup-email"})


def execute(case: Case, flavor: str, answer: str, *, times: int | None = None,
            after_apply: bool = False, via: str = "many") -> tuple[KustomerEmulator, Run, Rule]:
    """Set the case up, install the hostile answer, run it; never raises."""
    emu = new_emulator(**case.emu_options)
    rows, key, options = case.prepare(emu)
    hostile = HostileTransport(emu.transport)
    rule = hostile.add(case.method, case.path, answer, times=times, after_apply=after_apply,
                       when=case.when)
    client = new_client(flavor, emu, hostile)
    if case.kind == "sync":
        run = sync(flavor, client, emu, rows, key, via=via, **options)
    elif case.kind == "upsert":
        run = upsert_one(flavor, client, emu, rows[0], key, **options)
    else:
        run = Run(rows=[], key=key, before={})
        try:
            run.extra["check"] = drive(flavor, client, lambda c: c.check())
        except Exception as exc:
            run.error = exc
    return emu, run, rule


def _outcomes(run: Run) -> list[tuple[Outcome, str]]:
    """(outcome, reason) of every row the run reported (failures only for a bare report)."""
    if run.results is not None:
        return [(r.outcome, r.reason or str(r.error or "")) for r in run.results]
    report = run.error.report if isinstance(run.error, SyncAbortedError) else run.report
    assert report is not None
    return [(f.outcome, f.reason or str(f.error or "")) for f in report.failures]


def _counts(run: Run) -> Counter[Outcome]:
    """Rows per outcome, from the results or the report."""
    if run.results is not None:
        return Counter(r.outcome for r in run.results)
    report = run.error.report if isinstance(run.error, SyncAbortedError) else run.report
    assert report is not None
    return Counter({o: n for o, n in report.counts.items() if n})


def _texts(run: Run) -> list[str]:
    """Every text the run produced for a person: error, reasons, summary."""
    texts = [str(run.error)] if run.error is not None else []
    if run.rows:
        texts += [reason for _, reason in _outcomes(run)]
    if run.report is not None:
        texts.append(run.report.summary())
    return texts


def assert_survived(case: Case, answer: str, emu: KustomerEmulator, run: Run, rule: Rule, *,
                    times: int | None, after_apply: bool) -> None:
    """What must hold for any hostile answer at any endpoint (the matrix's checks)."""
    context = f"{case.name} / {answer} (times={times}, after_apply={after_apply}): {run.describe()}"
    assert rule.fired >= 1, f"{context}: the endpoint was never called, the case tests nothing"
    if run.error is not None:
        assert isinstance(run.error, KustomerError), (
            f"{context}: raised {type(run.error).__name__}, not a kustomer_activations error")
    if case.kind == "sync" and case.name != "sync-metadata":
        assert run.error is None, f"{context}: upsert_many must return its report, not raise"
    if case.kind == "check":
        if answer in UNREADABLE_200 and times is None:
            assert isinstance(run.error, APIResponseValidationError), (
                f"{context}: an unreadable token answer must be an error, not a key without roles")
        if (answer in STATUSES or answer == "huge_html_502") and times is None:
            assert run.error is not None or not run.extra["check"].ok, context
        if answer == "huge_valid_200":
            assert run.error is None and run.extra["check"].ok, context
        for text in _texts(run):
            assert len(text) <= MAX_TEXT, f"{context}: a text of {len(text)} characters"
        return
    check_run(emu, run, case.name).assert_ok(context)
    outcomes = _outcomes(run)
    if case.name == "sync-metadata" and answer in UNREADABLE_200 and times is None:
        assert isinstance(run.error, APIResponseValidationError), context
        assert "/v1/metadata/customer" in str(run.error), context
    if case.name.endswith("metadata") and run.error is not None:
        assert write_requests(emu) == 0, f"{context}: wrote before the metadata failed"
    if case.lookup and answer in UNREADABLE_200 and times is None:
        # An unreadable answer is an error, never "no match" (nor "no such company").
        invalid = [r for o, r in outcomes if o is Outcome.INVALID]
        assert not invalid, f"{context}: rows made invalid by an unreadable answer: {invalid[:3]}"
        creates = sum(n for e, n in emu.counts_by_endpoint().items()
                      if e in ("POST /v1/customers", "POST /v1/customers/bulk"))
        if case.name in EXISTING:
            # The customer exists: a create can only come from reading "no match".
            assert creates == 0, f"{context}: created after an unreadable lookup"
            assert outcomes[0][0] not in (Outcome.CREATED, Outcome.REJECTED), context
        if case.name.startswith("sync-search"):
            refused = [r for o, r in outcomes if o is Outcome.REJECTED]
            assert not refused, f"{context}: creates refused as duplicates: {refused[:3]}"
            for result in run.results or []:
                if result.row is not None and result.row < 3:  # the rows that exist
                    assert result.outcome is not Outcome.CREATED, f"{context}: {result.describe()}"
        if case.name == "sync-search-custom":
            # No other way to find a custom key: every row fails, nothing is written.
            assert write_requests(emu) == 0, f"{context}: wrote after an unreadable search"
            assert _counts(run) == Counter({Outcome.FAILED: len(run.rows)}), context
    if case.name in ("sync-bulk-status", "sync-bulk-batches"):
        rejected = [r for o, r in outcomes if o is Outcome.REJECTED]
        assert not rejected, f"{context}: rows of an applied job rejected: {rejected[:3]}"
        if answer in UNREADABLE_200:
            assert run.elapsed < SETTLE_WITHIN, f"{context}: settled after {run.elapsed:.0f}s"
    if answer == "huge_valid_200":
        bad = [(o, r) for o, r in outcomes if o not in (Outcome.CREATED, Outcome.UPDATED,
                                                         Outcome.UNCHANGED)]
        assert run.error is None and not bad, f"{context}: a valid answer with an unknown member"
    if answer in ("html_502", "huge_html_502") and after_apply and case.writes and "create" in case.name:
        assert _counts(run) == Counter({Outcome.CREATED: len(run.rows)}), (
            f"{context}: an applied create answered 5xx must end created")
    for text in _texts(run):
        assert len(text) <= MAX_TEXT, f"{context}: a text of {len(text)} characters"


def _matrix(answers: list[str], apply_writes: bool) -> list[Any]:
    flavors = itertools.cycle(FLAVORS)
    vias = itertools.cycle(("many", "stream"))
    params = []
    for case in CASES:
        for answer in answers:
            for after_apply in ((False, True) if case.writes and apply_writes else (False,)):
                flavor = next(flavors)
                via = next(vias) if case.kind == "sync" else "many"
                label = f"{case.name}-{answer}{'-applied' if after_apply else ''}-{flavor}"
                if case.kind == "sync":
                    label += f"-{via}"
                params.append(pytest.param(case.name, answer, after_apply, flavor, via, id=label))
    return params


@pytest.mark.parametrize(("case_name", "answer", "after_apply", "flavor_", "via"),
                         _matrix(list(ANSWERS), apply_writes=True))
def test_every_endpoint_survives_a_hostile_answer_every_time(
    case_name: str, answer: str, after_apply: bool, flavor_: str, via: str,
) -> None:
    case = CASE[case_name]
    emu, run, rule = execute(case, flavor_, answer, times=None, after_apply=after_apply, via=via)
    assert_survived(case, answer, emu, run, rule, times=None, after_apply=after_apply)


@pytest.mark.parametrize(("case_name", "answer", "after_apply", "flavor_", "via"),
                         _matrix(["html_502", "truncated_json", "data_null", "404_text", "418_json"],
                                 apply_writes=True))
def test_every_endpoint_survives_a_hostile_answer_once(
    case_name: str, answer: str, after_apply: bool, flavor_: str, via: str,
) -> None:
    case = CASE[case_name]
    emu, run, rule = execute(case, flavor_, answer, times=1, after_apply=after_apply, via=via)
    assert_survived(case, answer, emu, run, rule, times=1, after_apply=after_apply)


# -- the specific promises, on every client flavor ------------------------------------------

@pytest.mark.parametrize("answer", list(UNREADABLE_200))
@pytest.mark.parametrize("key", KEYS)
def test_an_unreadable_search_answer_is_never_no_match(flavor: str, key: str, answer: str) -> None:
    emu = new_emulator()
    rows = link_rows(emu, rows_for(6, shape=SHAPE_FOR_KEY[key]))
    seed(emu, rows[:3])
    hostile = HostileTransport(emu.transport)
    rule = hostile.add("POST", r"/v1/customers/search", answer, times=None)
    run = sync(flavor, new_client(flavor, emu, hostile), emu, rows, key, via="stream")
    assert rule.fired >= 1
    assert run.error is None, run.describe()
    check_run(emu, run).assert_ok(run.describe())
    assert run.results is not None
    outcome = {r.row: r.outcome for r in run.results}
    if key == CUSTOM_KEY:
        # Search is the only way to find a custom key: every row fails (retried next run).
        assert set(outcome.values()) == {Outcome.FAILED}, run.describe()
        assert write_requests(emu) == 0
    else:
        # The direct lookups may stand in for the search; "no match" may not.
        for row in range(3):
            assert outcome[row] in (Outcome.FAILED, Outcome.UPDATED), run.describe()
        for row in range(3, 6):
            assert outcome[row] in (Outcome.FAILED, Outcome.CREATED), run.describe()
    assert len(emu.customers) == 3 + sum(o is Outcome.CREATED for o in outcome.values())


@pytest.mark.parametrize("answer", ["data_null", "no_data", "empty_body", "top_level_list"])
def test_an_unreadable_search_answer_fails_a_single_custom_key_upsert(flavor: str, answer: str) -> None:
    emu = new_emulator()
    row = link_rows(emu, rows_for(1, shape="custom"))[0]
    seed(emu, [row])
    hostile = HostileTransport(emu.transport)
    hostile.add("POST", r"/v1/customers/search", answer, times=None)
    run = upsert_one(flavor, new_client(flavor, emu, hostile), emu, row, CUSTOM_KEY)
    check_run(emu, run).assert_ok(run.describe())
    assert run.results is not None and run.results[0].outcome is Outcome.FAILED, run.describe()
    assert write_requests(emu) == 0 and len(emu.customers) == 1


@pytest.mark.parametrize("answer", ["empty_body", "top_level_list", "no_data", "data_null",
                                    "data_string", "truncated_json"])
def test_an_unreadable_metadata_answer_raises_before_any_write(flavor: str, answer: str) -> None:
    emu = new_emulator()
    hostile = HostileTransport(emu.transport)
    hostile.add("GET", r"/v1/metadata/customer", answer, times=None)
    run = sync(flavor, new_client(flavor, emu, hostile), emu, rows_for(6), "externalId")
    assert isinstance(run.error, APIResponseValidationError), run.describe()
    assert "/v1/metadata/customer" in str(run.error)
    assert not isinstance(run.error, (TypeError, AttributeError))
    assert "unknown custom attribute" not in str(run.error)
    writes = {e: n for e, n in emu.counts_by_endpoint().items()
              if e.split()[0] in ("POST", "PUT", "PATCH") and "search" not in e}
    assert writes == {}, f"wrote before the metadata was read: {writes}"
    assert len(emu.customers) == 0


@pytest.mark.parametrize("answer", ["404_json", "404_text", "418_json", "418_text"])
@pytest.mark.parametrize("endpoint", ["status", "batches"])
@pytest.mark.parametrize("key", KEYS)
def test_an_unexpected_status_on_bulk_polling_rejects_no_row(
    flavor: str, key: str, endpoint: str, answer: str,
) -> None:
    # The status is asked only once /batches was not ready three times: slow jobs.
    emu = new_emulator(**({"bulk_delay": 30.0} if endpoint == "status" else {}))
    hostile = HostileTransport(emu.transport)
    path = r"/v1/bulk/[^/]+" + ("/batches" if endpoint == "batches" else "")
    rule = hostile.add("GET", path, answer, times=None, after_apply=True)
    rows = rows_for(8, shape=SHAPE_FOR_KEY[key])
    run = sync(flavor, new_client(flavor, emu, hostile), emu, rows, key)
    assert rule.fired >= 1
    assert run.error is None, run.describe()
    check_run(emu, run).assert_ok(run.describe())
    assert run.report is not None and run.report.rejected == 0, run.describe()
    for failure in run.report.failures:
        assert failure.outcome is Outcome.FAILED and says_may_have(failure.reason), failure.describe()
    assert run.report.created + run.report.failed == 8


@pytest.mark.parametrize("answer", list(UNREADABLE_200))
@pytest.mark.parametrize("endpoint", ["status", "batches"])
def test_an_unreadable_bulk_poll_settles_in_minutes_not_at_the_timeout(
    flavor: str, endpoint: str, answer: str,
) -> None:
    emu = new_emulator()
    hostile = HostileTransport(emu.transport)
    path = r"/v1/bulk/[^/]+" + ("/batches" if endpoint == "batches" else "")
    hostile.add("GET", path, answer, times=None, after_apply=True)
    run = sync(flavor, new_client(flavor, emu, hostile), emu, rows_for(8), "externalId")
    assert run.error is None, run.describe()
    check_run(emu, run).assert_ok(run.describe())
    assert run.elapsed < SETTLE_WITHIN, f"settled after {run.elapsed:.0f}s of simulated time"
    assert run.report is not None and run.report.rejected == 0


@pytest.mark.parametrize(("where", "method", "path", "rows", "chunk_size"), [
    ("bulk-create", "POST", r"/v1/customers/bulk", 150, 50),
    ("bulk-status", "GET", r"/v1/bulk/[^/]+", 150, 50),
    ("bulk-batches", "GET", r"/v1/bulk/[^/]+/batches", 150, 50),
    ("single-create", "POST", r"/v1/customers", 4, 2),  # a handful: single requests
])
def test_an_unreadable_answer_fails_one_chunk_not_the_sync(
    flavor: str, where: str, method: str, path: str, rows: int, chunk_size: int,
) -> None:
    # The status is asked only once /batches was not ready three times: slow jobs.
    emu = new_emulator(**({"bulk_delay": 30.0} if where == "bulk-status" else {}))
    hostile = HostileTransport(emu.transport)
    rule = hostile.add(method, path, "truncated_json", times=1, after_apply=True)
    data = rows_for(rows)
    run = sync(flavor, new_client(flavor, emu, hostile), emu, data, "externalId",
               chunk_size=chunk_size, concurrency=1)
    assert rule.fired == 1
    assert run.error is None, f"one unreadable answer aborted the sync: {run.describe()}"
    check_run(emu, run).assert_ok(run.describe())
    assert run.report is not None and run.report.rows == rows
    assert run.report.created >= rows - chunk_size, run.describe()


@pytest.mark.parametrize("via", ["sync-single", "sync-bulk", "upsert"])
@pytest.mark.parametrize("key", KEYS)
def test_an_applied_create_answered_502_ends_created_once(flavor: str, key: str, via: str) -> None:
    emu = new_emulator()
    hostile = HostileTransport(emu.transport)
    path = r"/v1/customers/bulk" if via == "sync-bulk" else r"/v1/customers"
    rule = hostile.add("POST", path, "html_502", times=None, after_apply=True)
    client = new_client(flavor, emu, hostile)
    rows = rows_for({"sync-single": 2, "sync-bulk": 8, "upsert": 1}[via], shape=SHAPE_FOR_KEY[key])
    if via == "upsert":
        run = upsert_one(flavor, client, emu, rows[0], key)
    else:
        run = sync(flavor, client, emu, rows, key)
    assert rule.fired >= 1
    assert run.error is None, run.describe()
    check_run(emu, run).assert_ok(run.describe())
    outcomes = [r.outcome for r in run.results] if run.results else None
    if run.report is not None:
        assert run.report.created == len(rows), run.describe()
    else:
        assert outcomes == [Outcome.CREATED], run.describe()
    assert len(emu.customers) == len(rows)


@pytest.mark.parametrize(("status", "method", "path"), [
    (401, "POST", r"/v1/customers/search"),
    (403, "POST", r"/v1/customers/bulk"),
    (401, "GET", r"/v1/bulk/[^/]+/batches"),
])
def test_auth_errors_abort_the_sync_and_account_for_every_row_read(
    flavor: str, status: int, method: str, path: str,
) -> None:
    emu = new_emulator()
    hostile = HostileTransport(emu.transport)

    def refuse(request: httpx.Request, real: httpx.Response | None) -> httpx.Response:
        return httpx.Response(status, json={"errors": [{"code": "unauthorized",
                                                        "message": "invalid or expired token"}]},
                              request=request)

    # The first chunk goes through; the second is refused.
    def after_first_write(request: httpx.Request) -> bool:
        return any(r.method == "POST" and r.url.path == "/v1/customers/bulk"
                   for r in hostile.requests)

    if path.endswith("/search") and emu.readings.search_in != "any":
        # Under a limited ``in`` (``search_in="max:20"`` in Readings.strictest()) the first
        # chunk's lookup is several searches: the refused ``in`` forms (learned once per
        # sync), then one search per 20 keys. Count none of them: refuse from the first
        # search after the first chunk's write.
        rule = hostile.add(method, path, refuse, times=None, when=after_first_write)
    else:
        rule = hostile.add(method, path, refuse, times=None, skip=1)
    rows = rows_for(300)
    run = sync(flavor, new_client(flavor, emu, hostile), emu, rows, "externalId",
               chunk_size=100, concurrency=1)
    assert rule.fired >= 1
    assert isinstance(run.error, SyncAbortedError), run.describe()
    assert str(status) in str(run.error)
    check_run(emu, run).assert_ok(run.describe())
    report = run.error.report
    assert 100 <= report.rows <= 300
    assert report.created >= 100
