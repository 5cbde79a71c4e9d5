"""The batch engine against the emulator: outcomes, faults, splitting, modes, cancellation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest

from kustomer_activations import (
    FieldMapping,
    Outcome,
    SyncAbortedError,
    SyncCancelledError,
    SyncReport,
    read_failures,
)
from kustomer_activations.testing import Fault, KustomerEmulator, VirtualClock

from ..helpers import assert_link_refused, drive, link_hidden, make_client


def _emulator(**options: Any) -> KustomerEmulator:
    options.setdefault("clock", VirtualClock())
    emu = KustomerEmulator(**options)
    emu.define_custom_attribute("customer", "accountStr")
    emu.define_custom_attribute("customer", "ltvNum")
    return emu


def _client(flavor: str, emu: KustomerEmulator, transport: Any = None, **options: Any) -> Any:
    return make_client(flavor, transport=transport or emu.transport, base_url=emu.base_url,
                       clock=emu.clock, **options)


def _sync(flavor: str, client: Any, rows: Any, *, resource: str = "customers", **kw: Any) -> SyncReport:
    report: SyncReport = drive(flavor, client, lambda c: getattr(c, resource).upsert_many(rows, **kw))
    return report


def _rows(n: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"externalId": f"ext-{i}", "name": f"Customer {i}",
         "emails": [{"email": f"c{i}@example.com"}], "custom": {"accountStr": f"acct-{i}"}, **extra}
        for i in range(start, start + n)
    ]


def _writes(emu: KustomerEmulator) -> int:
    return sum(n for endpoint, n in emu.counts_by_endpoint().items()
               if endpoint.split()[0] in ("POST", "PUT", "PATCH") and "search" not in endpoint)


def test_cold_then_warm_sync_counts_and_requests(flavor: str) -> None:
    emu = _emulator()
    co = emu.seed_company({"name": "Acme"})
    client = _client(flavor, emu)
    # The rows set the company link, so the warm updates are safe under every reading.
    rows = _rows(1200, company=co)
    cold = _sync(flavor, client, rows, key="externalId")
    assert cold.created == 1200 and cold.rows == 1200 and cold.ok
    assert len(emu.customers.all()) == 1200
    # One search per 500 keys. Where Kustomer takes at most 20 values in an 'in'
    # (search_in="max:20"), the SDK steps down once per sync, 500 -> 100 -> 20 values (two
    # refused searches, one note each), then searches 20 keys at a time.
    searches = emu.count("POST", "/v1/customers/search")
    if emu.readings.search_in == "max:20":
        assert len(cold.notes) == 2
        assert searches == 2 + 1200 // 20
    else:
        assert searches == -(-1200 // 500)
        # Bulk writes (12) + polls + batches + the searches; far below 2 per record.
        assert cold.requests_per_row <= 0.05
    # Every other request (metadata, 12 bulk writes, polls, batches) is the same under
    # every reading.
    assert cold.requests - searches <= 0.04 * cold.rows
    assert emu.rate_limited == 0

    changed = [dict(r, name=r["name"] + " (renamed)") if i % 20 == 0 else r for i, r in enumerate(rows)]
    warm = _sync(flavor, client, changed, key="externalId")
    if link_hidden(emu):
        # The link cannot be compared, so every matched row is written, with the link.
        assert (warm.updated, warm.unchanged, warm.rows) == (1200, 0, 1200)
    else:
        assert (warm.updated, warm.unchanged, warm.rows) == (60, 1140, 1200)
    assert warm.ok
    renamed = emu.find_customers(externalId="ext-0")[0]
    assert renamed["name"] == "Customer 0 (renamed)"
    assert emu.find_customers(externalId="ext-1")[0]["name"] == "Customer 1"
    assert len(emu.customers.all()) == 1200
    assert all(c["company"] == co for c in emu.customers.all())


def test_every_outcome_is_counted_once(flavor: str) -> None:
    emu = _emulator()
    co = emu.seed_company({"name": "Acme"})
    emu.seed_customer({"name": "Old name", "custom": {"accountStr": "A1"}, "company": co})
    emu.seed_customer({"name": "Same", "custom": {"accountStr": "A2"}})
    emu.seed_customer({"name": "Twin 1", "custom": {"accountStr": "A3"}})
    emu.seed_customer({"name": "Twin 2", "custom": {"accountStr": "A3"}})
    emu.seed_customer({"name": "Email owner", "emails": [{"email": "taken@example.com"}]})
    linked = emu.seed_customer({"name": "Linked", "custom": {"accountStr": "A8"}, "company": co})
    client = _client(flavor, emu)
    before = emu.customers[linked]
    hidden = link_hidden(emu)
    rows = [
        {"name": "New name", "custom": {"accountStr": "A1"}, "company": co},  # updated
        {"name": "Same", "custom": {"accountStr": "A2"}},              # unchanged
        {"name": "Which one?", "custom": {"accountStr": "A3"}},        # ambiguous
        {"name": "Brand new", "custom": {"accountStr": "A4"}},         # created
        {"name": "No key"},                                            # invalid: no key
        {"name": "Bad number", "custom": {"accountStr": "A6", "ltvNum": "lots"}},  # invalid
        {"name": "Steals an email", "emails": [{"email": "taken@example.com"}],
         "custom": {"accountStr": "A7"}},                              # rejected: duplicate email
        {"name": "Brand new", "custom": {"accountStr": "A4"}},         # invalid: key repeats row 3
        # updated, the link kept; failed where no answer shows the link (the row does not
        # set it, and an update without it would unlink)
        {"name": "Linked renamed", "custom": {"accountStr": "A8"}},
    ]
    report = _sync(flavor, client, rows, key="custom.accountStr")
    by_row = {f.row: f for f in report.failures}
    assert report.counts == {
        Outcome.CREATED: 1, Outcome.UPDATED: 1 if hidden else 2, Outcome.UNCHANGED: 1,
        Outcome.SKIPPED: 0, Outcome.AMBIGUOUS: 1, Outcome.INVALID: 3, Outcome.REJECTED: 1,
        Outcome.FAILED: 1 if hidden else 0,
    }
    assert report.rows == len(rows)
    assert by_row[2].outcome is Outcome.AMBIGUOUS and len(by_row[2].candidates) == 2
    assert by_row[4].outcome is Outcome.INVALID and by_row[4].error is not None
    assert by_row[4].error.field == "custom.accountStr"
    assert by_row[5].error is not None and by_row[5].error.field == "custom.ltvNum"
    assert by_row[6].outcome is Outcome.REJECTED and "duplicate" in (by_row[6].reason or "").lower()
    assert by_row[7].outcome is Outcome.INVALID and "row 3" in (by_row[7].reason or "")
    assert [c["name"] for c in emu.find_customers(name="New name")] == ["New name"]
    assert emu.find_customers(name="New name")[0]["company"] == co
    if hidden:
        assert_link_refused(by_row[8], linked, before, emu.customers[linked])
    else:
        assert 8 not in by_row
        assert emu.customers[linked]["name"] == "Linked renamed"
        assert emu.customers[linked]["company"] == co
    assert len(emu.customers.all()) == 7


def test_lost_bulk_responses_create_no_duplicates(flavor: str) -> None:
    emu = _emulator()
    emu.faults.add(Fault.lost_response(), match="POST /v1/customers/bulk", times=2)
    emu.faults.add(Fault.lost_response(), match="POST /v1/customers", times=1)
    client = _client(flavor, emu)
    report = _sync(flavor, client, _rows(450), key="externalId")
    assert report.created == 450 and report.ok, report.summary()
    stored = emu.customers.all()
    assert len(stored) == 450
    assert len({c["externalId"] for c in stored}) == 450


def test_lost_responses_with_custom_key_use_a_unique_anchor(flavor: str) -> None:
    emu = _emulator(search_lag=30.0)  # the index lags: search alone cannot see the lost writes
    emu.faults.add(Fault.lost_response(), match="POST /v1/customers/bulk", times=3)
    client = _client(flavor, emu)
    report = _sync(flavor, client, _rows(300), key="custom.accountStr")
    assert report.created == 300, report.summary()
    assert len(emu.customers.all()) == 300


def test_random_faults_still_one_outcome_per_row_and_no_duplicates(flavor: str) -> None:
    emu = _emulator(seed=7)
    emu.faults.random(rate=0.15, kinds=["lost_response", "connection_reset", "status:503", "timeout"])
    client = _client(flavor, emu, max_retries=4)
    report = _sync(flavor, client, _rows(600), key="externalId")
    assert report.rows == 600
    stored = emu.customers.all()
    assert len({c["externalId"] for c in stored}) == len(stored)  # never a duplicate
    written = report.created + report.updated + report.unchanged
    maybe = [f for f in report.failures if "may have" in (f.reason or "")]
    assert len(stored) >= report.created
    assert len(stored) <= written + len(maybe)
    assert report.failed == len(report.failures) - report.rejected - report.invalid - report.ambiguous


class _RejectOneItem(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Kustomer refusing a whole bulk request because of one item (400), else the emulator."""

    def __init__(self, inner: Any, bad_name: str, *, pointer: bool) -> None:
        self.inner = inner
        self.bad_name = bad_name
        self.pointer = pointer
        self.refused = 0

    def _refuse(self, request: httpx.Request) -> httpx.Response | None:
        if request.method != "POST" or not request.url.path.startswith("/v1/customers"):
            return None
        body = json.loads(request.content or b"null")
        items = body if isinstance(body, list) else [body]
        bad = [i for i, item in enumerate(items) if item.get("name") == self.bad_name]
        if not bad:
            return None
        self.refused += 1
        error: dict[str, Any] = {"status": "400", "code": "invalid", "title": "invalid item"}
        if self.pointer:
            error["source"] = {"pointer": f"/{bad[0]}/name"}
        return httpx.Response(400, json={"errors": [error]}, request=request)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._refuse(request) or self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._refuse(request) or await self.inner.handle_async_request(request)


@pytest.mark.parametrize("pointer", [True, False], ids=["pointer", "bisect"])
def test_one_bad_row_among_100_is_isolated(flavor: str, pointer: bool) -> None:
    emu = _emulator()
    transport = _RejectOneItem(emu.transport, "Customer 37", pointer=pointer)
    client = _client(flavor, emu, transport=transport)
    report = _sync(flavor, client, _rows(100), key="externalId")
    assert (report.created, report.rejected, report.rows) == (99, 1, 100)
    [failure] = report.failures
    assert failure.row == 37 and failure.source is not None and failure.source["name"] == "Customer 37"
    assert len(emu.customers.all()) == 99
    if pointer:
        assert transport.refused == 1  # the blamed item is dropped, the rest sent once
    else:
        assert 2 <= transport.refused <= 8  # halves until the bad record stands alone


def test_dry_run_writes_nothing_and_reports_the_plan(flavor: str) -> None:
    emu = _emulator()
    co = emu.seed_company({"name": "Acme"})
    emu.seed_customer({"externalId": "ext-0", "name": "Old", "company": co})
    emu.seed_customer({"externalId": "ext-1", "name": "Customer 1",
                       "emails": [{"email": "c1@example.com"}], "custom": {"accountStr": "acct-1"}})
    client = _client(flavor, emu)
    rows = _rows(5)
    rows[0]["company"] = co  # the changed row sets the link: its update is safe under every reading
    report = _sync(flavor, client, rows, key="externalId", dry_run=True)
    assert (report.created, report.updated, report.unchanged) == (3, 1, 1)
    assert report.dry_run and "would be" in report.summary()
    assert _writes(emu) == 0
    assert len(emu.customers.all()) == 2


@pytest.mark.parametrize(("mode", "expected"), [
    ("update_only", {Outcome.UPDATED: 1, Outcome.SKIPPED: 3}),
    ("create_only", {Outcome.CREATED: 3, Outcome.SKIPPED: 1}),
])
def test_modes(flavor: str, mode: str, expected: dict[Outcome, int]) -> None:
    emu = _emulator()
    co = emu.seed_company({"name": "Acme"})
    emu.seed_customer({"externalId": "ext-0", "name": "Old", "company": co})
    client = _client(flavor, emu)
    rows = _rows(4)
    rows[0]["company"] = co  # the matched row sets the link: its update is safe under every reading
    report = _sync(flavor, client, rows, key="externalId", mode=mode)
    assert {o: n for o, n in report.counts.items() if n} == expected
    assert len(emu.customers.all()) == (1 if mode == "update_only" else 4)
    assert emu.find_customers(externalId="ext-0")[0]["name"] == (
        "Customer 0" if mode == "update_only" else "Old")
    assert emu.find_customers(externalId="ext-0")[0]["company"] == co


def test_duplicate_keys_in_input_first_row_wins(flavor: str) -> None:
    emu = _emulator()
    client = _client(flavor, emu)
    rows = [*_rows(3), dict(_rows(1)[0], name="Second copy")]
    report = _sync(flavor, client, rows, key="externalId")
    assert (report.created, report.invalid) == (3, 1)
    assert report.failures[0].row == 3 and "row 0" in (report.failures[0].reason or "")
    assert emu.find_customers(externalId="ext-0")[0]["name"] == "Customer 0"


def test_email_key_with_mapping_and_company_links(flavor: str) -> None:
    emu = _emulator()
    acme = emu.seed_company({"name": "Acme Corp", "externalId": "co-1"})
    client = _client(flavor, emu)
    mapping = FieldMapping({"email": "mail", "name": "full_name", "companyExternalId": "company",
                            "custom.accountStr": "account"}, object_type="customer")
    rows = [{"mail": f"p{i}@example.com", "full_name": f"Person {i}", "company": "co-1",
             "account": f"a{i}", "unused": "never sent"} for i in range(8)]
    rows.append({"mail": "lost@example.com", "full_name": "No company", "company": "co-404",
                 "account": "x"})
    report = _sync(flavor, client, rows, key="email", mapping=mapping)
    assert (report.created, report.invalid) == (8, 1), report.summary()
    assert "co-404" in (report.failures[0].reason or "")
    stored = emu.find_customers(name="Person 3")[0]
    assert stored["emails"][0]["email"] == "p3@example.com"
    assert "unused" not in json.dumps(stored)
    assert [c for c in emu.customers.all() if _company_of(c) != acme] == []


def _company_of(doc: dict[str, Any]) -> Any:
    rel = doc.get("relationships", {}).get("company", {}).get("data")
    return (rel or {}).get("id", doc.get("company"))


def test_export_failures_and_feed_them_back(flavor: str, tmp_path: Any) -> None:
    emu = _emulator()
    client = _client(flavor, emu)
    rows = [*_rows(3), {"externalId": "bad-1", "name": "x" * 300}]
    report = _sync(flavor, client, rows, key="externalId")
    assert report.invalid == 1
    for name in ("failures.csv", "failures.jsonl"):
        assert report.export_failures(tmp_path / name) == 1
    fixed = [dict(r, name="Fixed") for r in read_failures(tmp_path / "failures.jsonl")]
    assert fixed == [{"externalId": "bad-1", "name": "Fixed"}]
    csv_rows = list(read_failures(tmp_path / "failures.csv"))
    assert csv_rows[0]["externalId"] == "bad-1"
    again = _sync(flavor, client, fixed, key="externalId")
    assert again.created == 1 and again.ok
    with pytest.raises(Exception, match="1 of 4 rows failed"):
        report.raise_for_failures()


def test_progress_callback_reports_rows_and_totals(flavor: str) -> None:
    emu = _emulator()
    client = _client(flavor, emu)
    seen: list[tuple[int, int | None]] = []
    report = _sync(flavor, client, _rows(250), key="externalId", chunk_size=100,
                   on_progress=lambda p: seen.append((p.done, p.total)))
    assert report.created == 250
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert seen[-1] == (250, 250)


def test_generator_input_and_flat_streaming(flavor: str) -> None:
    emu = _emulator()
    client = _client(flavor, emu)

    def rows() -> Iterator[dict[str, Any]]:
        yield from _rows(130)

    if flavor == "sync":
        with client.customers.stream_upsert(rows(), key="externalId", chunk_size=50) as results:
            outcomes = [r.outcome for r in results]
    else:
        async def main() -> list[Outcome]:
            async with client.customers.stream_upsert(rows(), key="externalId",
                                                      chunk_size=50) as results:
                return [r.outcome async for r in results]
        outcomes = anyio.run(main, backend=flavor)
    assert outcomes.count(Outcome.CREATED) == 130 and len(outcomes) == 130


def test_dataframe_input(flavor: str) -> None:
    pd = pytest.importorskip("pandas")
    emu = _emulator()
    client = _client(flavor, emu)
    frame = pd.DataFrame({"id": ["d1", "d2", "d3"], "name": ["A", None, "C"],
                          "ltv": [1.5, float("nan"), 3.0]})
    mapping = FieldMapping({"externalId": "id", "name": "name", "custom.ltvNum": "ltv"},
                           object_type="customer")
    report = _sync(flavor, client, frame, key="externalId", mapping=mapping)
    assert report.created == 3
    second = emu.find_customers(externalId="d2")[0]
    assert "name" not in second or second["name"] in (None, "")
    assert "ltvNum" not in (second.get("custom") or {})


def test_pacing_avoids_429_under_a_small_budget(flavor: str) -> None:
    emu = _emulator(requests_per_minute=30, searches_per_minute=5)
    # The org budget is learned from x-ratelimit-limit; the search budget is not in any header.
    client = _client(flavor, emu, searches_per_minute=5)
    # VirtualClock moves the shared time as soon as anyone sleeps, so with several flows in
    # flight (chunks deciding, bulk jobs waiting for their results) a flow that reached its
    # paced slot can send only after other flows' sleeps moved the time on, landing two
    # searches in one window of the virtual clock (no 429 with 8 chunks on a
    # ScaledClock(60)). One chunk at a time checks the pacing itself.
    options: dict[str, Any] = {"concurrency": 1}
    report = _sync(flavor, client, _rows(700), key="externalId", chunk_size=100, **options)
    assert report.created == 700
    assert emu.rate_limited == 0


def test_bad_api_key_aborts_with_every_row_accounted(flavor: str) -> None:
    emu = _emulator(api_keys={"good": ["org.admin.search.read"]})
    client = _client(flavor, emu, api_key="wrong")
    report = SyncReport()
    with pytest.raises(SyncAbortedError) as info:
        _sync(flavor, client, _rows(40), key="externalId", validate_fields=False,
              chunk_size=10, concurrency=2, report=report)
    assert info.value.report is report
    assert report.rows >= 10 and report.failed == report.rows
    assert "401" in str(info.value)


def test_cancellation_sync_client_reports_what_was_written() -> None:
    emu = _emulator()
    client = _client("sync", emu)
    calls = 0

    def interrupt(progress: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt

    with pytest.raises(SyncCancelledError) as info:
        client.customers.upsert_many(_rows(2000), key="externalId", chunk_size=100,
                                     concurrency=2, on_progress=interrupt)
    report = info.value.report
    assert report.cancelled
    _assert_cancelled_report_is_honest(emu, report)


def test_cancellation_async_client_reports_what_was_written(flavor: str) -> None:
    if flavor == "sync":
        pytest.skip("covered by the sync test above")
    emu = _emulator()
    client = _client(flavor, emu)
    report = SyncReport()

    async def main() -> None:
        with anyio.CancelScope() as scope:
            def stop(progress: Any) -> None:
                if progress.done >= 200:
                    scope.cancel()
            await client.customers.upsert_many(_rows(2000), key="externalId", chunk_size=100,
                                               concurrency=2, on_progress=stop, report=report)
        assert scope.cancelled_caught

    anyio.run(main, backend=flavor)
    assert report.cancelled
    _assert_cancelled_report_is_honest(emu, report)


def _assert_cancelled_report_is_honest(emu: KustomerEmulator, report: SyncReport) -> None:
    stored = {c["externalId"] for c in emu.customers.all()}
    assert 0 < report.rows < 2000
    assert report.created <= len(stored)
    maybe = [f for f in report.failures if "may have" in (f.reason or "")]
    assert len(stored) <= report.created + len(maybe)
    assert all(f.outcome is Outcome.FAILED for f in report.failures)
    assert report.rows == sum(report.counts.values())


def test_companies_cold_warm_and_ambiguous_external_ids(flavor: str) -> None:
    emu = _emulator()
    emu.seed_company({"name": "Twin A", "externalId": "co-dup"})
    emu.seed_company({"name": "Twin B", "externalId": "co-dup"})
    client = _client(flavor, emu)
    rows = [{"externalId": f"co-{i}", "name": f"Company {i}", "domains": [{"domain": f"c{i}.example"}]}
            for i in range(150)]
    rows.append({"externalId": "co-dup", "name": "Which twin?"})
    rows.append({"externalId": "co-short", "name": "ab"})  # Kustomer needs 3-255 characters
    cold = _sync(flavor, client, rows, resource="companies", key="externalId")
    assert (cold.created, cold.ambiguous, cold.invalid) == (150, 1, 1), cold.summary()
    assert len(emu.companies.all()) == 152
    warm_rows = [dict(r, name=r["name"] + " Inc") if i < 15 else r for i, r in enumerate(rows[:150])]
    warm = _sync(flavor, client, warm_rows, resource="companies", key="externalId")
    assert (warm.updated, warm.unchanged) == (15, 135)
    assert emu.find_companies(externalId="co-3")[0]["name"] == "Company 3 Inc"
    assert emu.find_companies(externalId="co-3")[0]["domains"] == [{"domain": "c3.example"}]


def test_email_key_rejected_for_companies() -> None:
    emu = _emulator()
    client = _client("sync", emu)
    with pytest.raises(ValueError, match="email"):
        client.companies.upsert_many([{"name": "Acme"}], key="email")


def test_capture_responses_sees_every_request_of_a_batch_sync(flavor: str) -> None:
    emu = _emulator()
    client = _client(flavor, emu)

    if flavor == "sync":
        with client.capture_responses() as calls:
            report = client.customers.upsert_many(_rows(250), key="externalId", chunk_size=100)
    else:
        async def main() -> Any:
            with client.capture_responses() as calls:
                report = await client.customers.upsert_many(_rows(250), key="externalId",
                                                            chunk_size=100)
            return calls, report
        calls, report = anyio.run(main, backend=flavor)
    assert report.created == 250
    assert report.requests == len(emu.requests)
    # capture_responses() collects successful calls only. Where Kustomer takes at most 20
    # values in an 'in' (search_in="max:20"), the SDK's first two search forms (500, then 100
    # values) are refused once per sync (400, one note each): those two are not captured.
    refused = [r for r in emu.requests if r.status >= 400]
    assert all(r.method == "POST" and r.path == "/v1/customers/search" and r.status == 400
               for r in refused)
    assert len(refused) == len(report.notes) == (2 if emu.readings.search_in == "max:20" else 0)
    assert len(calls) == report.requests - len(refused)
    assert {c.path for c in calls} >= {"/v1/customers/search", "/v1/customers/bulk"}
