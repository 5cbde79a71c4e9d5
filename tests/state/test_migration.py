"""Versioned schema: an older file is migrated in place; a newer one is refused clearly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kustomer_activations.state import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SqliteStateStore,
    StateSchemaError,
    payload_hash,
)

# The version-1 layout, written out by hand as a file of that version holds it
# (no intents, no mapping generations).
V1 = """
CREATE TABLE scopes (scope_id INTEGER PRIMARY KEY, sync TEXT NOT NULL, object_type TEXT NOT NULL,
    key_label TEXT NOT NULL, mapping_fingerprint TEXT, UNIQUE (sync, object_type, key_label));
CREATE TABLE entries (scope_id INTEGER NOT NULL, key_value TEXT NOT NULL, kustomer_id TEXT,
    payload_hash BLOB, synced_at REAL, failure_reason TEXT, failure_outcome TEXT, failed_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0, seen_run INTEGER,
    PRIMARY KEY (scope_id, key_value)) WITHOUT ROWID;
CREATE INDEX entries_failed ON entries (scope_id, key_value) WHERE failure_reason IS NOT NULL;
CREATE TABLE runs (run_seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL UNIQUE,
    scope_id INTEGER NOT NULL, started_at REAL NOT NULL, ended_at REAL, status TEXT NOT NULL,
    pid INTEGER, host TEXT, outcomes TEXT);
CREATE INDEX runs_scope ON runs (scope_id, run_seq);
CREATE TABLE locks (sync TEXT PRIMARY KEY, run_id TEXT NOT NULL, pid INTEGER NOT NULL,
    host TEXT NOT NULL, acquired_at REAL NOT NULL, heartbeat_at REAL NOT NULL);
INSERT INTO scopes VALUES (1, 'legacy', 'customer', 'externalId', 'fp-old');
INSERT INTO runs (run_id, scope_id, started_at, ended_at, status, outcomes)
    VALUES ('r1', 1, 1700000000, 1700000100, 'succeeded', '{"created": 2}');
PRAGMA user_version = 1;
"""
H = payload_hash({"name": "Ann"})


def test_a_version_1_file_is_migrated_with_its_rows(path: Path) -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) == 3
    db = sqlite3.connect(path)
    db.executescript(V1)
    db.executemany("INSERT INTO entries (scope_id, key_value, kustomer_id, payload_hash, synced_at, "
                   "failure_reason, failure_outcome, failed_at, attempts, seen_run) "
                   "VALUES (1, ?, ?, ?, 1700000050, ?, ?, ?, ?, 1)",
                   [("a", "id-a", bytes.fromhex(H), None, None, None, 0),
                    ("b", "id-b", None, "rejected: bad", "rejected", 1700000060, 3)])
    db.commit()
    db.close()

    store = SqliteStateStore(path)
    summary = store.summary("legacy").syncs[0]
    assert (summary.rows_known, summary.rows_failed, summary.rows_pending) == (2, 1, 0)
    assert summary.last_run is not None and summary.last_run.outcomes == {"created": 2}
    with store.open_run("legacy", "customer", "externalId", "fp-old") as run:
        known = run.known(["a", "b"])
        assert known["a"].payload_hash == H and known["a"].is_unchanged(H)
        assert known["b"].failure is not None and known["b"].failure.attempts == 3
        assert list(run.pending()) == []
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'entries_pending'").fetchone()[0] == 1
    db.close()


def test_a_new_file_runs_every_migration(path: Path) -> None:
    SqliteStateStore(path).open_run("s", "customer", "externalId").close(True)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_a_newer_file_is_refused_with_a_clear_error(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    store = SqliteStateStore(path)
    with pytest.raises(StateSchemaError, match=r"schema version 99, newer than the 3 .* upgrade"):
        store.open_run("s", "customer", "externalId")
    with pytest.raises(StateSchemaError):
        store.summary()
