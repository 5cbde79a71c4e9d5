"""A dry run never changes the state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kustomer_activations import Outcome
from kustomer_activations.state import (
    Intent,
    SqliteStateStore,
    StateOutcome,
    StateSchemaError,
    SyncAlreadyRunningError,
    payload_hash,
)

from .conftest import Tick

H1 = payload_hash({"name": "Ann"})


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in path.parent.iterdir()}


def _seed(path: Path, tick: Tick) -> None:
    with SqliteStateStore(path, now=tick) as store:
        with store.open_run("s", "customer", "externalId", "fp") as run:
            run.record_outcomes([StateOutcome(key_value=f"k{i}", outcome=Outcome.CREATED,
                                              kustomer_id=f"id{i}", payload_hash=H1) for i in range(50)])
            run.record_outcomes([StateOutcome(key_value="k7", outcome=Outcome.FAILED, reason="5xx")])
        run = store.open_run("s", "customer", "externalId", "fp")
        run.record_intents([Intent(key_value="k3", op="update")])
        run.close(False)


def test_a_dry_run_leaves_the_file_byte_identical(path: Path, tick: Tick) -> None:
    _seed(path, tick)
    before = _files(path)
    assert sorted(before) == ["state.db"], "a cleanly closed store leaves no -wal/-shm"
    tick.advance(60)
    store = SqliteStateStore(path, now=tick)
    with store.open_run("s", "customer", "externalId", "fp-changed", dry_run=True) as run:
        assert run.dry_run and run.mapping_changed and run.run_id.startswith("dry-")
        assert [p.key_value for p in run.pending()] == ["k3"]
        run.resolve_pending({"k3": None})
        known = run.known([f"k{i}" for i in range(40)] + ["new"])
        assert len(known) == 40 and known["k1"].payload_hash is None  # mapping changed
        run.record_intents([Intent(key_value="new", op="create")])
        run.record_outcomes([
            StateOutcome(key_value="new", outcome=Outcome.CREATED, kustomer_id="id-new", payload_hash=H1),
            StateOutcome(key_value="k7", outcome=Outcome.UPDATED, kustomer_id="id7", payload_hash=H1),
            StateOutcome(key_value="k1", outcome=Outcome.REJECTED, reason="bad"),
        ])
        # the dry run sees its own records
        after = run.known(["new", "k7", "k1", "k3"])
        assert after["new"].kustomer_id == "id-new" and after["k7"].failure is None
        assert after["k1"].failure is not None and after["k1"].failure.attempts == 1
        assert after["k3"].pending is None
        assert list(run.pending()) == []
        assert list(run.missing_from_source()) == [f"k{i}" for i in range(40, 50)]
        assert sorted(run.failed_keys()) == ["k1"]
    store.close()
    assert _files(path) == before


def test_a_dry_run_on_a_missing_file_creates_nothing(path: Path) -> None:
    store = SqliteStateStore(path)
    with store.open_run("s", "customer", "externalId", dry_run=True) as run:
        assert run.known(["a"]) == {}
        run.record_outcomes([StateOutcome(key_value="a", outcome=Outcome.CREATED, kustomer_id="1")])
        assert run.known(["a"])["a"].kustomer_id == "1"
        assert list(run.missing_from_source()) == []
    assert store.summary().syncs == ()
    assert store.syncs() == []
    assert not path.parent.exists() or list(path.parent.iterdir()) == []


def test_a_dry_run_is_refused_while_the_sync_runs(path: Path, tick: Tick) -> None:
    writer = SqliteStateStore(path, now=tick)
    with writer.open_run("s", "customer", "externalId"), pytest.raises(SyncAlreadyRunningError):
        SqliteStateStore(path, now=tick).open_run("s", "customer", "externalId", dry_run=True)
    writer.close()


def test_a_dry_run_cannot_migrate(path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 1")
    db.close()
    with pytest.raises(StateSchemaError, match="dry run cannot migrate"):
        SqliteStateStore(path).open_run("s", "customer", "externalId", dry_run=True)
