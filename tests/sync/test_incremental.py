"""Incremental syncs against the emulator: what a second run sends, and what the state keeps.

Each test runs a sync, changes something (the input, the mapping, Kustomer
behind the state's back), runs it again with a fresh client (as the next
nightly job would, in a new process) and checks the requests by endpoint,
the outcomes, what Kustomer holds and what the state file holds.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from kustomer_activations import AsyncKustomerClient, Outcome, SyncReport
from kustomer_activations.mapping import FieldMapping
from kustomer_activations.results import FAILURE_OUTCOMES
from kustomer_activations.state import SqliteRun, SqliteStateStore, SyncAlreadyRunningError
from kustomer_activations.testing import KustomerEmulator, VirtualClock

from ..helpers import drive, make_client

SCHEMA = "GET /v1/metadata/{resource}"
SEARCH = "POST /v1/customers/search"
BULK_CREATE = "POST /v1/customers/bulk"
BULK_UPDATE = "PUT /v1/customers/bulk"
BATCHES = "GET /v1/bulk/{id}/batches"


def _emulator() -> KustomerEmulator:
    return KustomerEmulator(clock=VirtualClock(), log_bodies=False)


def _rows(n: int, *, renamed: set[int] | frozenset[int] = frozenset(),
          emails: dict[int, str] | None = None) -> list[dict[str, Any]]:
    emails = emails or {}
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {"externalId": f"ext-{i}",
                               "name": f"Customer {i}" + (" (renamed)" if i in renamed else "")}
        if i in emails:
            row["emails"] = [{"email": emails[i]}]
        rows.append(row)
    return rows


def _sync(flavor: str, emu: KustomerEmulator, rows: Any, state: Any,
          **kw: Any) -> tuple[SyncReport, dict[str, int]]:
    """One run with a fresh client; the report and the requests it sent, by endpoint."""
    client = make_client(flavor, transport=emu.transport, base_url=emu.base_url, clock=emu.clock)
    kw.setdefault("keep", "all")
    before = Counter(emu.counts_by_endpoint())
    report: SyncReport = drive(flavor, client, lambda c: c.customers.upsert_many(
        rows, key="externalId", state=state, **kw))
    sent = Counter(emu.counts_by_endpoint())
    sent.subtract(before)
    return report, {k: v for k, v in sent.items() if v}


def _one(emu: KustomerEmulator, external_id: str) -> dict[str, Any]:
    found = emu.find_customers(externalId=external_id)
    assert len(found) == 1, (external_id, found)
    return found[0]


def _known(path: Path, keys: list[str], sync: str = "default") -> dict[str, Any]:
    """The state's entries of ``keys``, read in a run of its own (nothing marked seen)."""
    with SqliteStateStore(path) as store, store.open_run(sync, "customer", "externalId") as run:
        return run.known(keys, mark_seen=False)


def test_an_unchanged_input_sends_no_request(flavor: str, tmp_path: Path) -> None:
    emu = _emulator()
    state = tmp_path / "state.db"
    rows = _rows(10_000)
    report, _ = _sync(flavor, emu, rows, state)
    assert report.created == 10_000
    ids = {c["externalId"]: c["id"] for c in emu.customers.all()}

    report, sent = _sync(flavor, emu, rows, state)
    # The custom-field schema is read once per client (per sync), never per row.
    assert sent == {SCHEMA: 1}, sent
    assert report.unchanged == 10_000 and report.rows == 10_000
    assert report.requests == 1
    assert {r.id for r in report.row_results if r.key_value == "ext-42"} == {ids["ext-42"]}

    report, sent = _sync(flavor, emu, rows, state, validate_fields=False)
    assert sent == {}, sent
    assert report.unchanged == 10_000 and report.requests == 0
    assert len(emu.customers) == 10_000
    summary = SqliteStateStore(state).summary().syncs[0]
    assert summary.rows_known == 10_000 and summary.rows_failed == 0 and summary.rows_pending == 0


def test_one_percent_changed_is_written_by_id_without_a_search(flavor: str, tmp_path: Path) -> None:
    emu = _emulator()
    state = tmp_path / "state.db"
    _sync(flavor, emu, _rows(2_000), state)
    ids = {c["externalId"]: c["id"] for c in emu.customers.all()}
    changed = set(range(0, 2_000, 100))  # 20 rows

    report, sent = _sync(flavor, emu, _rows(2_000, renamed=changed), state)
    assert sent == {SCHEMA: 1, BULK_UPDATE: 1, BATCHES: 1}, sent
    assert report.updated == 20 and report.unchanged == 1_980
    stored = {c["externalId"]: c for c in emu.customers.all()}
    assert len(stored) == 2_000
    for i in range(2_000):
        assert stored[f"ext-{i}"]["id"] == ids[f"ext-{i}"]
        assert stored[f"ext-{i}"]["name"] == f"Customer {i}" + (" (renamed)" if i in changed else "")
    updated = {r.key_value: r.id for r in report.row_results if r.outcome is Outcome.UPDATED}
    assert updated == {f"ext-{i}": ids[f"ext-{i}"] for i in changed}

    # The state now holds the new hashes: the same input again sends nothing.
    report, sent = _sync(flavor, emu, _rows(2_000, renamed=changed), state)
    assert sent == {SCHEMA: 1}, sent
    assert report.unchanged == 2_000


def test_a_changed_mapping_looks_every_row_up_again(flavor: str, tmp_path: Path) -> None:
    emu = _emulator()
    state = tmp_path / "state.db"
    source = [{"id": f"ext-{i}", "full": f"Customer {i}", "login": f"user{i}"} for i in range(300)]
    first = FieldMapping({"externalId": "id", "name": "full"}, object_type="customer")
    report, _ = _sync(flavor, emu, source, state, mapping=first)
    assert report.created == 300
    ids = {c["externalId"]: c["id"] for c in emu.customers.all()}

    second = FieldMapping({"externalId": "id", "name": "full", "username": "login"},
                          object_type="customer")
    report, sent = _sync(flavor, emu, source, state, mapping=second)
    # Stored hashes mean nothing under another mapping: every row is searched
    # for and decided against what Kustomer holds, never created twice.
    assert report.updated == 300, report.counts
    assert sent.get(SEARCH, 0) >= 1 and BULK_CREATE not in sent and BULK_UPDATE in sent, sent
    assert len(emu.customers) == 300
    for i in (0, 150, 299):
        stored = _one(emu, f"ext-{i}")
        assert stored["id"] == ids[f"ext-{i}"]
        assert stored["username"] == f"user{i}" and stored["name"] == f"Customer {i}"

    # Under the new mapping the hashes count again.
    report, sent = _sync(flavor, emu, source, state, mapping=second)
    assert sent == {SCHEMA: 1}, sent
    assert report.unchanged == 300


def _blocked_run(flavor: str, emu: KustomerEmulator, state: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """A first run where rows 3 and 7 fail: their emails belong to other customers."""
    blockers = [emu.seed_customer({"name": "Owner A", "emails": [{"email": "a@example.com"}]}),
                emu.seed_customer({"name": "Owner B", "emails": [{"email": "b@example.com"}]})]
    rows = _rows(100, emails={3: "a@example.com", 7: "b@example.com"})
    report, _ = _sync(flavor, emu, rows, state)
    failed = {r.key_value for r in report.row_results if r.outcome in FAILURE_OUTCOMES}
    assert failed == {"ext-3", "ext-7"}, report.counts
    assert report.created == 98
    summary = SqliteStateStore(state).summary().syncs[0]
    assert summary.rows_failed == 2
    return blockers, rows


def test_failed_rows_are_retried_even_when_unchanged(flavor: str, tmp_path: Path) -> None:
    emu = _emulator()
    state = tmp_path / "state.db"
    blockers, rows = _blocked_run(flavor, emu, state)
    for blocker in blockers:  # fixed in Kustomer: the emails are free now
        emu.delete_customer(blocker)

    report, sent = _sync(flavor, emu, rows, state)
    assert report.created == 2 and report.unchanged == 98, report.counts
    created = {r.key_value for r in report.row_results if r.outcome is Outcome.CREATED}
    assert created == {"ext-3", "ext-7"}
    # Only the two failed rows cost requests: a lookup, then two single creates.
    assert BULK_UPDATE not in sent and BULK_CREATE not in sent, sent
    assert sent.get("POST /v1/customers") == 2 and sent.get(SEARCH, 0) >= 1, sent
    assert _one(emu, "ext-3")["emails"][0]["email"] == "a@example.com"
    assert _one(emu, "ext-7")["emails"][0]["email"] == "b@example.com"
    assert SqliteStateStore(state).summary().syncs[0].rows_failed == 0


def test_retry_failed_only_processes_only_the_failed_rows(flavor: str, tmp_path: Path) -> None:
    emu = _emulator()
    state = tmp_path / "state.db"
    _, _ = _blocked_run(flavor, emu, state)
    # The input is fixed (new emails), and another row changed meanwhile.
    fixed = _rows(100, renamed={10}, emails={3: "c@example.com", 7: "d@example.com"})

    report, sent = _sync(flavor, emu, fixed, state, retry_failed_only=True)
    assert report.created == 2 and report.skipped == 98, report.counts
    assert report.gone_from_source == 0
    skipped = [r for r in report.row_results if r.outcome is Outcome.SKIPPED]
    assert all("retry_failed_only" in (r.reason or "") for r in skipped)
    assert BULK_UPDATE not in sent and sent.get("POST /v1/customers") == 2, sent
    assert _one(emu, "ext-3")["emails"][0]["email"] == "c@example.com"
    assert _one(emu, "ext-10")["name"] == "Customer 10"  # skipped: not written yet

    # The next full run writes the skipped change, and only it.
    report, sent = _sync(flavor, emu, fixed, state)
    assert report.updated == 1 and report.unchanged == 99, report.counts
    assert _one(emu, "ext-10")["name"] == "Customer 10 (renamed)"
    assert SEARCH not in sent, sent


@pytest.mark.parametrize("changed", [1, 10])
def test_a_deleted_object_is_created_again_once(flavor: str, tmp_path: Path, changed: int) -> None:
    """``changed`` rows change; one of them was deleted in Kustomer since the last run.
    One change goes as a single PUT, ten as one bulk PUT: both meet the 404."""
    emu = _emulator()
    state = tmp_path / "state.db"
    _sync(flavor, emu, _rows(200), state)
    old = _one(emu, "ext-5")["id"]
    emu.delete_customer(old)
    renamed = set(range(5, 5 + changed))

    report, sent = _sync(flavor, emu, _rows(200, renamed=renamed), state)
    results = {r.key_value: r for r in report.row_results}
    assert results["ext-5"].outcome is Outcome.CREATED, results["ext-5"].describe()
    assert report.created == 1 and report.updated == changed - 1, report.counts
    new = _one(emu, "ext-5")
    assert new["id"] != old and new["id"] == results["ext-5"].id
    assert new["name"] == "Customer 5 (renamed)"
    assert len(emu.customers) == 200
    assert BULK_CREATE not in sent and sent.get("POST /v1/customers") == 1, sent
    # The state follows the new object: the next run sends nothing.
    assert _known(state, ["ext-5"])["ext-5"].kustomer_id == new["id"]
    report, sent = _sync(flavor, emu, _rows(200, renamed=renamed), state)
    assert sent == {SCHEMA: 1} and report.unchanged == 200, sent


def test_verify_every_reads_rows_whose_state_is_old(flavor: str, tmp_path: Path) -> None:
    emu = _emulator()
    now = [1_900_000_000.0]
    state = SqliteStateStore(tmp_path / "state.db", now=lambda: now[0])
    _sync(flavor, emu, _rows(50), state)
    emu.delete_customer(_one(emu, "ext-9")["id"])  # unchanged row: the state cannot tell

    report, sent = _sync(flavor, emu, _rows(50), state, verify_every=1)
    assert sent == {SCHEMA: 1} and report.unchanged == 50, sent

    now[0] += 2 * 86_400.0  # two days later, every row's state is older than a day
    report, sent = _sync(flavor, emu, _rows(50), state, verify_every=1)
    assert report.unchanged == 49 and report.created == 1, report.counts
    assert sent.get(SEARCH, 0) >= 1 and len(emu.find_customers(externalId="ext-9")) == 1, sent
    state.close()


def _fingerprint(path: Path) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for suffix in ("", "-wal", "-shm"):
        part = Path(str(path) + suffix)
        out[suffix] = hashlib.sha256(part.read_bytes()).hexdigest() if part.exists() else None
    return out


@pytest.mark.parametrize("wal", [False, True], ids=["closed", "wal-open"])
def test_a_dry_run_leaves_the_state_file_byte_identical(flavor: str, tmp_path: Path, wal: bool) -> None:
    emu = _emulator()
    state = tmp_path / "state.db"
    _sync(flavor, emu, _rows(300), state)
    holder = SqliteStateStore(state)
    if wal:  # another connection keeps a -wal file around
        holder.summary()
        assert Path(str(state) + "-wal").exists()
    before = _fingerprint(state)
    stored = {c["externalId"]: c["name"] for c in emu.customers.all()}

    rows = _rows(310, renamed={1, 2, 3})  # 3 changes, 10 new rows
    report, sent = _sync(flavor, emu, rows, state, dry_run=True)
    assert report.updated == 3 and report.created == 10 and report.unchanged == 297, report.counts
    assert not [e for e in sent if e.startswith(("POST /v1/customers/bulk", "PUT", "PATCH"))
                and e != SEARCH], sent
    assert "POST /v1/customers" not in sent and BULK_UPDATE not in sent, sent
    assert _fingerprint(state) == before
    assert {c["externalId"]: c["name"] for c in emu.customers.all()} == stored
    holder.close()

    # The real run afterwards still sees the three changes and the new rows.
    report, _ = _sync(flavor, emu, rows, state)
    assert report.updated == 3 and report.created == 10


def test_a_second_run_of_the_same_sync_is_refused_before_any_request(
        flavor: str, tmp_path: Path) -> None:
    emu = _emulator()
    state = tmp_path / "state.db"
    store = SqliteStateStore(state)
    held = store.open_run("nightly", "customer", "externalId")
    with pytest.raises(SyncAlreadyRunningError) as caught:
        _sync(flavor, emu, _rows(20), state, sync_name="nightly")
    assert "nightly" in str(caught.value)
    assert emu.requests == []
    # Another sync in the same file runs meanwhile.
    report, _ = _sync(flavor, emu, _rows(20), state, sync_name="other")
    assert report.created == 20
    held.close(True)
    report, sent = _sync(flavor, emu, _rows(20), state, sync_name="nightly")
    assert report.unchanged == 20 and SEARCH in sent  # nightly never ran: rows looked up
    store.close()


def test_rows_gone_from_the_source_are_reported(flavor: str, tmp_path: Path) -> None:
    emu = _emulator()
    state = tmp_path / "state.db"
    _sync(flavor, emu, _rows(150), state)
    rows = [r for r in _rows(150) if r["externalId"] not in {"ext-7", "ext-140", "ext-99"}]

    report, sent = _sync(flavor, emu, rows, state)
    assert report.gone_from_source == 3
    assert sorted(report.gone_keys) == ["ext-140", "ext-7", "ext-99"]
    assert sent == {SCHEMA: 1}
    assert "gone from" in report.summary()
    assert len(emu.customers) == 150  # nothing is deleted in Kustomer

    # Still absent next time: listed again. Back in the source: no longer listed.
    report, _ = _sync(flavor, emu, rows, state)
    assert report.gone_from_source == 3
    report, _ = _sync(flavor, emu, _rows(150), state)
    assert report.gone_from_source == 0 and report.gone_keys == []


def test_full_resync_ignores_hashes_but_keeps_ids(flavor: str, tmp_path: Path) -> None:
    emu = _emulator()
    state = tmp_path / "state.db"
    _sync(flavor, emu, _rows(200), state)
    ids = {c["externalId"]: c["id"] for c in emu.customers.all()}

    report, sent = _sync(flavor, emu, _rows(200), state, full_resync=True)
    assert report.unchanged == 200, report.counts
    assert sent.get(SEARCH, 0) >= 1 and BULK_CREATE not in sent and BULK_UPDATE not in sent, sent
    known = _known(state, list(ids))
    assert {k: e.kustomer_id for k, e in known.items()} == ids

    report, sent = _sync(flavor, emu, _rows(200), state)
    assert sent == {SCHEMA: 1} and report.unchanged == 200


def test_fresh_reads_plans_a_change_from_a_read_not_the_snapshot(flavor: str, tmp_path: Path) -> None:
    emu = _emulator()
    state = tmp_path / "state.db"
    _sync(flavor, emu, _rows(20), state)
    report, sent = _sync(flavor, emu, _rows(20, renamed={4}), state, fresh_reads=True)
    assert report.updated == 1 and report.unchanged == 19, report.counts
    # Looked up and read by id before the write: the snapshot is not trusted.
    assert sent.get(SEARCH, 0) >= 1 and sent.get("GET /v1/customers/{id}", 0) >= 1, sent
    assert _one(emu, "ext-4")["name"] == "Customer 4 (renamed)"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_the_async_client_never_runs_sqlite_on_the_event_loop(
        backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int]] = []

    def spy(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen.append((name, threading.get_ident()))
            return original(*args, **kwargs)
        monkeypatch.setattr(cls, name, wrapper)

    def spy_iter(cls: type, name: str) -> None:
        original = getattr(cls, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for item in original(*args, **kwargs):
                seen.append((name, threading.get_ident()))
                yield item
            seen.append((name, threading.get_ident()))
        monkeypatch.setattr(cls, name, wrapper)

    for name in ("open_run", "close", "_conn"):
        spy(SqliteStateStore, name)
    for name in ("known", "record_intents", "record_outcomes", "close"):
        spy(SqliteRun, name)
    for name in ("pending", "missing_from_source"):
        spy_iter(SqliteRun, name)

    emu = _emulator()
    state = tmp_path / "state.db"
    loop_threads: list[int] = []

    async def main(rows: list[dict[str, Any]]) -> SyncReport:
        loop_threads.append(threading.get_ident())
        client = make_client(backend, transport=emu.transport, base_url=emu.base_url,
                             clock=emu.clock)
        assert isinstance(client, AsyncKustomerClient)
        report: SyncReport = await client.customers.upsert_many(rows, key="externalId", state=state,
                                                                keep="all")
        return report

    anyio.run(main, _rows(700), backend=backend)  # creates: intents and outcomes
    first = anyio.run(main, _rows(800, renamed={1, 2, 3, 4, 5, 6}), backend=backend)
    assert first.updated == 6 and first.created == 100 and first.unchanged == 694
    names = {name for name, _ in seen}
    assert {"open_run", "known", "record_intents", "record_outcomes", "pending",
            "missing_from_source", "close", "_conn"} <= names, names
    on_loop = [name for name, ident in seen if ident in loop_threads]
    assert on_loop == [], on_loop
