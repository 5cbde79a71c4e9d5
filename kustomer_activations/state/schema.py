"""The state file's schema and its migrations (``PRAGMA user_version``).

Each entry of :data:`MIGRATIONS` takes the file from version ``i`` to ``i + 1``
inside the caller's transaction; a new file runs them all. To change the
layout, append a function (never edit a released one) and bump nothing else:
:data:`SCHEMA_VERSION` is the list's length.

Layout (version 3):

* ``scopes``: one row per (sync, object type, key label), with the mapping
  fingerprint of its last run and a generation number bumped when it changes.
* ``entries``: one row per (scope, key value), clustered on that pair
  (``WITHOUT ROWID``: the primary key *is* the index on sync/object/key, so a
  lookup reads one b-tree and the key is stored once). It holds the Kustomer
  id, the last accepted payload hash (16 bytes) and the mapping generation it
  was computed under, when, the last failure, the pending intent, and the
  sequence number of the last run that saw the row, and (version 3) a
  snapshot of the mapped fields as Kustomer holds them after the last
  confirmed write, so a changed row is updated by id without a read. Partial indexes list
  failed and pending rows without scanning the others.
* ``runs``: one row per run (status, times, outcome counts).
* ``locks``: one row per running sync (holder pid/host, heartbeat).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from .errors import StateSchemaError

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate"]


def _v1(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE scopes (
        scope_id INTEGER PRIMARY KEY,
        sync TEXT NOT NULL,
        object_type TEXT NOT NULL,
        key_label TEXT NOT NULL,
        mapping_fingerprint TEXT,
        UNIQUE (sync, object_type, key_label))""")
    db.execute("""CREATE TABLE entries (
        scope_id INTEGER NOT NULL,
        key_value TEXT NOT NULL,
        kustomer_id TEXT,
        payload_hash BLOB,
        synced_at REAL,
        failure_reason TEXT,
        failure_outcome TEXT,
        failed_at REAL,
        attempts INTEGER NOT NULL DEFAULT 0,
        seen_run INTEGER,
        PRIMARY KEY (scope_id, key_value)) WITHOUT ROWID""")
    db.execute("CREATE INDEX entries_failed ON entries (scope_id, key_value) "
               "WHERE failure_reason IS NOT NULL")
    db.execute("""CREATE TABLE runs (
        run_seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL UNIQUE,
        scope_id INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        status TEXT NOT NULL,
        pid INTEGER,
        host TEXT,
        outcomes TEXT)""")
    db.execute("CREATE INDEX runs_scope ON runs (scope_id, run_seq)")
    db.execute("""CREATE TABLE locks (
        sync TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        acquired_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL)""")


def _v2(db: sqlite3.Connection) -> None:
    # Crash safety (pending intents) and mapping generations. Existing rows get
    # generation 0, which is also every existing scope's: their hashes stay valid.
    db.execute("ALTER TABLE scopes ADD COLUMN mapping_gen INTEGER NOT NULL DEFAULT 0")
    for column in ("hash_gen INTEGER NOT NULL DEFAULT 0", "intent_op TEXT", "intent_ref TEXT",
                   "intent_at REAL", "intent_run INTEGER", "intent_hash BLOB"):
        db.execute(f"ALTER TABLE entries ADD COLUMN {column}")
    db.execute("CREATE INDEX entries_pending ON entries (scope_id, key_value) "
               "WHERE intent_op IS NOT NULL")


def _v3(db: sqlite3.Connection) -> None:
    # What an update by id is planned against without a read: the fields this
    # sync maps, as Kustomer holds them after the last confirmed write
    # (compressed JSON). Existing rows have none: their next change is looked up.
    db.execute("ALTER TABLE entries ADD COLUMN snapshot BLOB")


#: Migration ``i`` takes a file from version ``i`` to ``i + 1``.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (_v1, _v2, _v3)

#: The version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)


def version_of(db: sqlite3.Connection) -> int:
    """The file's ``user_version``."""
    row = db.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def check_version(db: sqlite3.Connection, path: str) -> int:
    """The file's version; refuse one newer than this code knows.

    Raises:
        StateSchemaError: the file was written by a newer version.
    """
    found = version_of(db)
    if found > SCHEMA_VERSION:
        raise StateSchemaError(
            f"state file {path} has schema version {found}, newer than the {SCHEMA_VERSION} this "
            "version of kustomer_activations knows: upgrade the package (or use another file)"
        )
    return found


def migrate(db: sqlite3.Connection, path: str) -> int:
    """Bring the file to :data:`SCHEMA_VERSION` in one transaction; return the version found.

    ``db`` must be in autocommit mode (``isolation_level=None``).

    Raises:
        StateSchemaError: the file is newer than this code, or a migration failed.
    """
    found = check_version(db, path)
    if found == SCHEMA_VERSION:
        return found
    db.execute("BEGIN IMMEDIATE")
    try:
        found = check_version(db, path)  # another process may have migrated meanwhile
        for step in MIGRATIONS[found:]:
            step(db)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except sqlite3.Error as exc:
        db.execute("ROLLBACK")
        raise StateSchemaError(f"could not migrate state file {path} from version {found}: {exc}") from exc
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return found
