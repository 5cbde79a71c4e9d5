"""The checker checks: each invariant of ``_invariants.py`` fails when it is broken on purpose.

Without these, a reliability test could pass because the checker looks at
nothing. Each test starts from a clean sync (which must pass) and breaks one
promise: a duplicate seeded behind the SDK's back, a stored value changed, a
report that claims a row it never wrote, a refused row that was written, an
uncertain write that does not say so, rows missing or counted twice.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kustomer_activations import Outcome, SyncReport, UpsertResult

from ._harness import CUSTOM, KEYS, Run, check_run, new_client, new_emulator, rows_for, sync
from ._invariants import check_single, check_sync, snapshot

CUSTOM_KEY = f"custom.{CUSTOM}"
SHAPE_FOR_KEY = {"externalId": "all", "email": "email", CUSTOM_KEY: "custom"}


def _clean(key: str = CUSTOM_KEY, n: int = 6, via: str = "stream") -> tuple[Any, Run]:
    emu = new_emulator()
    rows = rows_for(n, shape=SHAPE_FOR_KEY[key])
    run = sync("sync", new_client("sync", emu), emu, rows, key, via=via)
    assert run.error is None, run.describe()
    check_run(emu, run).assert_ok()
    return emu, run


def _result(outcome: Outcome, row: int, reason: str | None = None, key: str = CUSTOM_KEY) -> UpsertResult:
    return UpsertResult(outcome=outcome, object_type="customer", key=key, row=row, reason=reason)


def _put(emu: Any, customer_id: str, body: dict[str, Any]) -> None:
    with httpx.Client(transport=emu.transport, base_url=emu.base_url,
                      headers={"Authorization": "Bearer tamper"}) as http:
        http.put(f"/v1/customers/{customer_id}", json=body).raise_for_status()


@pytest.mark.parametrize("via", ["stream", "many"])
@pytest.mark.parametrize("key", KEYS)
def test_a_clean_sync_passes(key: str, via: str) -> None:
    _clean(key, via=via)


def test_a_duplicate_seeded_behind_the_sdks_back_is_caught() -> None:
    emu, run = _clean()
    emu.seed_customer({"name": "Twin", "custom": {CUSTOM: "acct-3"}})
    verdict = check_run(emu, run)
    assert verdict.duplicates == 1 and not verdict.ok
    with pytest.raises(AssertionError, match="duplicate"):
        verdict.assert_ok()


def test_a_stored_value_that_differs_from_the_input_is_caught() -> None:
    emu, run = _clean("externalId", via="many")
    [doc] = emu.find_customers(externalId="ext-2")
    _put(emu, doc["id"], {"name": "Someone else"})
    verdict = check_run(emu, run)
    assert verdict.lost == 1 and "row 2" in verdict.problems[0] and "name" in verdict.problems[0]


def test_a_row_reported_created_but_not_stored_is_caught() -> None:
    emu = new_emulator()
    rows = rows_for(3, shape="custom")
    before = snapshot(emu)
    results = [_result(Outcome.CREATED, i) for i in range(3)]
    verdict = check_sync(emu, rows, CUSTOM_KEY, before=before, results=results)
    assert verdict.lost == 3
    report = SyncReport()
    for result in results:
        report.add(result)
    assert check_sync(emu, rows, CUSTOM_KEY, before=before, report=report).lost == 3


@pytest.mark.parametrize("outcome", [Outcome.REJECTED, Outcome.INVALID, Outcome.AMBIGUOUS])
def test_a_refused_row_that_was_written_is_caught(outcome: Outcome) -> None:
    emu, run = _clean()
    assert run.results is not None
    run.results[1] = _result(outcome, 1, reason="refused")
    verdict = check_run(emu, run)
    assert verdict.wrong == 1 and "yet was written" in verdict.problems[0]


def test_a_failed_row_that_was_written_must_say_it_may_have_been() -> None:
    emu, run = _clean()
    assert run.results is not None
    run.results[4] = _result(Outcome.FAILED, 4, reason="POST /v1/customers/bulk: 503")
    assert check_run(emu, run).wrong == 1
    run.results[4] = _result(Outcome.FAILED, 4, reason="503 (the create was sent: it may have happened)")
    assert check_run(emu, run).ok
    run.results[4] = _result(Outcome.FAILED, 4, reason="bulk job lost: the row may have been written")
    assert check_run(emu, run).ok


def test_a_failed_row_that_was_not_written_needs_no_warning() -> None:
    emu = new_emulator()
    rows = rows_for(2, shape="custom")
    results = [_result(Outcome.FAILED, 0, "503"), _result(Outcome.REJECTED, 1, "400")]
    assert check_sync(emu, rows, CUSTOM_KEY, before=snapshot(emu), results=results).ok


def test_missing_repeated_or_foreign_rows_are_caught() -> None:
    emu, run = _clean()
    assert run.results is not None
    results = list(run.results)
    run.results = results[:-1]
    assert not check_run(emu, run).ok
    run.results = [*results, results[0]]
    assert not check_run(emu, run).ok
    run.results = [*results[:-1], _result(Outcome.FAILED, 99, "x")]
    assert not check_run(emu, run).ok


def test_counts_that_do_not_sum_to_the_rows_are_caught() -> None:
    emu, run = _clean(via="many")
    assert run.report is not None
    run.report.counts[Outcome.CREATED] -= 1
    verdict = check_run(emu, run)
    assert verdict.wrong >= 1 and any("report.rows" in p for p in verdict.problems)
    run.report.counts[Outcome.CREATED] += 2
    assert not check_run(emu, run).ok


def test_a_failure_listed_twice_is_caught() -> None:
    emu = new_emulator()
    rows = rows_for(2, shape="custom")
    report = SyncReport()
    report.add(_result(Outcome.FAILED, 0, "503"))
    report.add(_result(Outcome.FAILED, 0, "503"))
    verdict = check_sync(emu, rows, CUSTOM_KEY, before=snapshot(emu), report=report)
    assert any("repeated" in p for p in verdict.problems)


def test_a_single_upsert_that_raised_after_writing_must_say_so() -> None:
    emu = new_emulator()
    row = rows_for(1)[0]
    before = snapshot(emu)
    emu.seed_customer(row)
    silent = check_single(emu, row, "externalId", before=before, error=RuntimeError("502 Bad Gateway"))
    assert silent.wrong == 1
    honest = check_single(emu, row, "externalId", before=before,
                          error=RuntimeError("502: the create may have happened"))
    assert honest.ok
