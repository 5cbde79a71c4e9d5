"""The SQLite state store: round trips, failures, intents, mapping changes, reports, reset."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from kustomer_activations import KustomerError, Outcome, UpsertResult
from kustomer_activations.state import (
    Intent,
    SqliteStateStore,
    StateLockLostError,
    StateOutcome,
    StateStore,
    SyncAlreadyRunningError,
    payload_hash,
)
from kustomer_activations.state.sqlite import PAGE

from .conftest import Tick

H1 = payload_hash({"name": "Ann"})
H2 = payload_hash({"name": "Anne"})


def ok(key: str, kid: str, h: str | None = H1, outcome: Outcome = Outcome.CREATED) -> StateOutcome:
    return StateOutcome(key_value=key, outcome=outcome, kustomer_id=kid, payload_hash=h)


def test_the_sqlite_store_fits_the_protocol(store: SqliteStateStore) -> None:
    typed: StateStore = store
    assert typed.syncs() == []


def test_known_returns_what_the_last_run_recorded(store: SqliteStateStore, tick: Tick) -> None:
    with store.open_run("nightly", "customer", "externalId", "fp") as run:
        assert run.known(["a", "b"]) == {}
        run.record_outcomes([ok("a", "id-a"), ok("b", "id-b", outcome=Outcome.UPDATED)])
    tick.advance(10)
    with store.open_run("nightly", "customer", "externalId", "fp") as run:
        known = run.known(["a", "b", "c", "a"])
    assert sorted(known) == ["a", "b"]
    a = known["a"]
    assert (a.kustomer_id, a.payload_hash, a.synced_at, a.failure, a.pending) == (
        "id-a", H1, 1_800_000_000.0, None, None)
    assert a.is_unchanged(H1) and not a.is_unchanged(H2)
    # verify_every: older than max_age means "read it again"
    assert a.is_unchanged(H1, now=tick(), max_age=60)
    assert not a.is_unchanged(H1, now=tick() + 61, max_age=60)


def test_scopes_are_separate_and_share_one_file(store: SqliteStateStore) -> None:
    with store.open_run("crm", "customer", "externalId") as run:
        run.record_outcomes([ok("k", "cust")])
    with store.open_run("crm", "company", "externalId") as run:
        assert run.known(["k"]) == {}
        run.record_outcomes([ok("k", "comp")])
    with store.open_run("billing", "customer", "email") as run:
        run.record_outcomes([ok("k", "bill")])
    assert store.syncs() == ["billing", "crm"]
    with store.open_run("crm", "customer", "externalId") as run:
        assert run.known(["k"])["k"].kustomer_id == "cust"


def test_many_keys_are_looked_up_in_slices(store: SqliteStateStore) -> None:
    keys = [f"k{i:05d}" for i in range(2_500)]
    with store.open_run("s", "customer", "externalId") as run:
        run.record_outcomes([ok(k, "id-" + k) for k in keys])
        known = run.known(keys)
    assert len(known) == 2_500 and known["k02499"].kustomer_id == "id-k02499"


def test_failures_count_attempts_keep_the_id_and_clear_on_success(store: SqliteStateStore) -> None:
    with store.open_run("s", "customer", "externalId") as run:
        run.record_outcomes([ok("a", "id-a")])
    for _ in range(2):
        with store.open_run("s", "customer", "externalId") as run:
            run.record_outcomes([StateOutcome(key_value="a", outcome=Outcome.REJECTED, reason="bad email")])
    with store.open_run("s", "customer", "externalId") as run:
        entry = run.known(["a"])["a"]
        assert entry.failure is not None
        assert (entry.failure.reason, entry.failure.outcome, entry.failure.attempts) == (
            "bad email", Outcome.REJECTED, 2)
        assert entry.kustomer_id == "id-a" and entry.payload_hash == H1
        assert not entry.is_unchanged(H1), "a failed row is retried even if its payload did not change"
        assert list(run.failed_keys()) == ["a"]
        run.record_outcomes([ok("a", "id-a", H2, Outcome.UPDATED)])
        entry = run.known(["a"])["a"]
    assert entry.failure is None and entry.payload_hash == H2
    assert store.summary("s").syncs[0].rows_failed == 0


def test_skipped_keeps_the_hash_and_takes_the_id(store: SqliteStateStore) -> None:
    with store.open_run("s", "customer", "externalId") as run:
        run.record_outcomes([ok("a", "id-a"), StateOutcome(key_value="b", outcome=Outcome.SKIPPED,
                                                           kustomer_id="id-b")])
        run.record_outcomes([StateOutcome(key_value="a", outcome=Outcome.SKIPPED)])
        known = run.known(["a", "b"])
    assert (known["a"].kustomer_id, known["a"].payload_hash) == ("id-a", H1)
    assert (known["b"].kustomer_id, known["b"].payload_hash) == ("id-b", None)


def test_outcomes_from_upsert_results(store: SqliteStateStore) -> None:
    created = UpsertResult(outcome=Outcome.CREATED, object_type="customer", id="c1", key="externalId",
                           key_value="x")
    failed = UpsertResult(outcome=Outcome.FAILED, object_type="customer", key="externalId",
                          key_value="y", error=KustomerError("timed out"))
    with store.open_run("s", "customer", "externalId") as run:
        run.record_outcomes([StateOutcome.from_result(created, H1), StateOutcome.from_result(failed)])
        known = run.known(["x", "y"])
    assert known["x"].kustomer_id == "c1" and known["x"].payload_hash == H1
    assert known["y"].failure is not None and known["y"].failure.reason == "timed out"
    with pytest.raises(ValueError, match="key_value"):
        StateOutcome.from_result(UpsertResult(outcome=Outcome.INVALID, object_type="customer"))


def test_intents_left_by_a_crash_are_pending_next_run(path: Path, tick: Tick,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    first = SqliteStateStore(path, now=tick, stale_after=600)
    run = first.open_run("s", "customer", "externalId")
    run.record_outcomes([ok("old", "id-old")])
    run.record_intents([Intent(key_value="new", op="create", ref="job-1", payload_hash=H1),
                        Intent(key_value="old", op="update", ref="job-1", payload_hash=H2)])
    assert list(run.pending()) == [], "a run's own intents are not left over from a crash"
    first.close()  # the process dies: the run is never closed

    second = SqliteStateStore(path, now=tick, stale_after=600)
    with pytest.raises(SyncAlreadyRunningError):
        second.open_run("s", "customer", "externalId")
    tick.advance(601)
    with caplog.at_level(logging.WARNING, logger="kustomer_activations.state"):
        run2 = second.open_run("s", "customer", "externalId")
    assert "stale lock" in caplog.text
    pending = {p.key_value: p for p in run2.pending()}
    assert sorted(pending) == ["new", "old"]
    assert (pending["new"].op, pending["new"].ref, pending["new"].kustomer_id) == ("create", "job-1", None)
    assert pending["old"].kustomer_id == "id-old" and pending["old"].payload_hash == H2
    assert pending["new"].run_id == run.run_id
    entry = run2.known(["old"])["old"]
    assert entry.pending is not None and not entry.is_unchanged(H1)
    # the create turned out to have reached Kustomer; the update is idempotent
    run2.resolve_pending({"new": "id-new", "old": None})
    assert list(run2.pending()) == []
    known = run2.known(["new", "old"])
    assert known["new"].kustomer_id == "id-new" and known["new"].payload_hash is None
    assert known["old"].kustomer_id == "id-old" and known["old"].payload_hash is None
    run2.close(True)
    assert [s.last_run.status for s in second.summary().syncs if s.last_run] == ["succeeded"]
    second.close()


def test_an_uncertain_failure_stays_pending(store: SqliteStateStore) -> None:
    with store.open_run("s", "customer", "externalId") as run:
        run.record_intents([Intent(key_value="a", op="create"), Intent(key_value="b", op="create")])
        run.record_outcomes([
            StateOutcome(key_value="a", outcome=Outcome.FAILED, reason="timeout", write_uncertain=True),
            StateOutcome(key_value="b", outcome=Outcome.FAILED, reason="connect refused"),
        ])
    with store.open_run("s", "customer", "externalId") as run:
        assert [p.key_value for p in run.pending()] == ["a"]
        assert sorted(run.failed_keys()) == ["a", "b"]


def test_a_run_whose_lock_was_taken_over_stops_writing(path: Path, tick: Tick) -> None:
    a = SqliteStateStore(path, now=tick, stale_after=60)
    b = SqliteStateStore(path, now=tick, stale_after=60)
    slow = a.open_run("s", "customer", "externalId")
    tick.advance(61)
    fresh = b.open_run("s", "customer", "externalId")
    with pytest.raises(StateLockLostError):
        slow.record_outcomes([ok("a", "id-a")])
    fresh.close(True)
    slow.close(False)
    assert b.summary().syncs[0].rows_known == 0
    a.close()
    b.close()


def test_heartbeats_keep_a_slow_run_alive(path: Path, tick: Tick) -> None:
    a = SqliteStateStore(path, now=tick, stale_after=60)
    b = SqliteStateStore(path, now=tick, stale_after=60)
    with a.open_run("s", "customer", "externalId") as run:
        for _ in range(5):
            tick.advance(50)
            run.heartbeat()
        with pytest.raises(SyncAlreadyRunningError, match="'s' is already running") as info:
            b.open_run("s", "customer", "externalId")
    assert info.value.sync == "s" and info.value.since == 1_800_000_000.0
    b.open_run("s", "customer", "externalId").close(True)  # released at close
    a.close()
    b.close()


def test_rows_gone_from_the_source_are_listed(store: SqliteStateStore) -> None:
    keys = [f"k{i:05d}" for i in range(PAGE * 2 + 10)]
    with store.open_run("s", "customer", "externalId") as run:
        run.record_outcomes([ok(k, "id") for k in keys])
        assert list(run.missing_from_source()) == []
    with store.open_run("s", "customer", "externalId") as run:
        present = [k for i, k in enumerate(keys) if i % 3]
        for start in range(0, len(present), 500):
            run.known(present[start:start + 500])
        run.record_outcomes([ok("brand-new", "id")])
        missing = list(run.missing_from_source())
    assert missing == [k for i, k in enumerate(keys) if i % 3 == 0]
    with store.open_run("s", "customer", "externalId") as run:
        run.known(keys)
        assert list(run.missing_from_source()) == ["brand-new"]
    assert store.summary("s").syncs[0].rows_known == len(keys) + 1, "nothing is deleted"


def test_a_changed_mapping_ignores_stored_hashes_but_keeps_ids(store: SqliteStateStore) -> None:
    with store.open_run("s", "customer", "externalId", "fp-1") as run:
        run.record_outcomes([ok("a", "id-a"), ok("b", "id-b")])
    with store.open_run("other", "customer", "externalId", "fp-9") as run:
        run.record_outcomes([ok("a", "id-o")])
    with store.open_run("s", "customer", "externalId", "fp-2") as run:
        assert run.mapping_changed
        known = run.known(["a", "b"])
        assert [(e.kustomer_id, e.payload_hash) for e in known.values()] == [("id-a", None), ("id-b", None)]
        run.record_outcomes([ok("a", "id-a", H2, Outcome.UPDATED)])
    with store.open_run("s", "customer", "externalId", "fp-2") as run:
        assert not run.mapping_changed
        known = run.known(["a", "b"])
        assert known["a"].payload_hash == H2 and known["b"].payload_hash is None
    with store.open_run("other", "customer", "externalId", "fp-9") as run:
        assert run.known(["a"])["a"].payload_hash == H1, "other syncs' hashes are unaffected"
    with store.open_run("s", "customer", "externalId", None) as run:
        assert not run.mapping_changed and run.known(["a"])["a"].payload_hash == H2


def test_full_resync_ignores_hashes_for_one_run_only(store: SqliteStateStore) -> None:
    with store.open_run("s", "customer", "externalId") as run:
        run.record_outcomes([ok("a", "id-a")])
    with store.open_run("s", "customer", "externalId", full_resync=True) as run:
        entry = run.known(["a"])["a"]
        assert (entry.kustomer_id, entry.payload_hash) == ("id-a", None)
    with store.open_run("s", "customer", "externalId") as run:
        assert run.known(["a"])["a"].payload_hash == H1


def test_summary_and_reset(store: SqliteStateStore, tick: Tick) -> None:
    assert str(store.summary()).endswith("no syncs")
    with store.open_run("crm", "customer", "externalId") as run:
        run.record_outcomes([ok("a", "1"), ok("b", "2"),
                             StateOutcome(key_value="c", outcome=Outcome.INVALID, reason="no email")])
        tick.advance(5)
    with store.open_run("web", "customer", "email") as run:
        run.record_outcomes([ok("x@example.com", "9")])
    summary = store.summary()
    crm = summary.syncs[0]
    assert (crm.sync, crm.rows_known, crm.rows_failed, crm.rows_pending) == ("crm", 3, 1, 0)
    assert crm.last_run is not None and crm.last_run.status == "succeeded"
    assert (crm.last_run.started_at, crm.last_run.ended_at) == (1_800_000_000.0, 1_800_000_005.0)
    assert dict(crm.last_run.outcomes) == {"created": 2, "invalid": 1}
    assert summary.rows_known == 4 and summary.rows_failed == 1
    text = str(summary)
    assert "crm (customer by externalId): 3 rows known, 1 failed; last run succeeded" in text
    assert "web (customer by email): 1 rows known" in text
    assert store.reset("crm") == 3
    assert store.syncs() == ["web"]
    with store.open_run("crm", "customer", "externalId") as run:
        assert run.known(["a"]) == {}
    assert store.summary("web").syncs[0].rows_known == 1


def test_reset_refuses_a_running_sync(store: SqliteStateStore) -> None:
    with store.open_run("crm", "customer", "externalId") as run:
        run.record_outcomes([ok("a", "1")])
        with pytest.raises(SyncAlreadyRunningError):
            store.reset("crm")
        summary = store.summary("crm").syncs[0]
        assert summary.lock is not None and "running now" in str(summary)


def test_a_failed_run_is_recorded_as_failed(store: SqliteStateStore) -> None:
    with pytest.raises(RuntimeError), store.open_run("s", "customer", "externalId") as run:
        run.record_outcomes([ok("a", "1")])
        raise RuntimeError("source broke")
    last = store.summary("s").syncs[0].last_run
    assert last is not None and last.status == "failed"
    with store.open_run("s", "customer", "externalId") as run:  # the lock was released
        assert run.known(["a"])["a"].kustomer_id == "1"


def test_the_file_is_wal_and_its_key_is_the_primary_index(store: SqliteStateStore, path: Path) -> None:
    store.open_run("s", "customer", "externalId").close(True)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    plan = db.execute("EXPLAIN QUERY PLAN SELECT kustomer_id FROM entries WHERE scope_id = 1 "
                      "AND key_value IN ('a', 'b')").fetchall()
    assert "PRIMARY KEY" in str(plan) and "SCAN" not in str(plan)
    db.close()


def test_bad_intents_are_refused(store: SqliteStateStore) -> None:
    with store.open_run("s", "customer", "externalId") as run, pytest.raises(ValueError, match="op"):
        run.record_intents([Intent(key_value="a", op="delete")])  # type: ignore[arg-type]


def test_the_summary_displays_in_notebooks_with_every_value_escaped(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    with store.open_run("<b>nightly</b>", "customer", "externalId") as run:
        run.record_outcomes([StateOutcome(key_value="c-1", outcome=Outcome.REJECTED, reason="bad")])
    summary = store.summary()
    html_text = summary._repr_html_()
    assert "&lt;b&gt;nightly&lt;/b&gt;" in html_text and "<b>nightly</b>" not in html_text
    assert "<td>1</td>" in html_text  # rows known, and failed
    printed: list[str] = []

    class Printer:
        def text(self, value: str) -> None:
            printed.append(value)

    summary._repr_pretty_(Printer(), False)
    assert printed == [str(summary)] and "1 failed" in printed[0]
