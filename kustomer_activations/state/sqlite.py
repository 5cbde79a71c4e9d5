"""The default state store: one SQLite file (standard library ``sqlite3``), WAL mode, no server.

Several named syncs share one file. A store holds one connection, opened on
first use and shared by its runs and by worker threads (created with
``check_same_thread=False``; every use holds the store's lock). The
connection runs in WAL mode with ``synchronous=NORMAL``: a commit is durable
against a killed process (the point of the state) but not fsynced, so each
batch's transaction costs no disk flush; after a power cut the last few
batches may be forgotten, which the next run handles like any unknown row (a
lookup by key), never as a duplicate.

Locks: a run of a sync holds a row in ``locks`` (taken in a ``BEGIN
IMMEDIATE`` transaction, so two processes cannot both see it free) whose
heartbeat every batch refreshes. A second run of the same sync is refused
with :class:`~kustomer_activations.state.SyncAlreadyRunningError`, unless the
lock is stale: its holder was a process of this host that no longer exists,
or its heartbeat is older than ``stale_after`` seconds. Then the new run
takes it over and logs a warning; the old run, should it still be alive,
gets :class:`~kustomer_activations.state.StateLockLostError` at its next batch
instead of writing.

Dry runs never change the file: they open it read-only (``immutable`` when
no ``-wal`` file exists, so SQLite creates no ``-wal``/``-shm`` either) and
record into temporary tables that vanish with the run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from ..results import FAILURE_OUTCOMES, Outcome
from .errors import StateLockLostError, StateSchemaError, SyncAlreadyRunningError
from .records import (
    Entry,
    Failure,
    Intent,
    LockInfo,
    PendingWrite,
    RunInfo,
    StateOutcome,
    StateSummary,
    SyncSummary,
)
from .schema import SCHEMA_VERSION, check_version, migrate

__all__ = ["SqliteRun", "SqliteStateStore"]

logger = logging.getLogger("kustomer_activations.state")

#: Most bound parameters per statement: below SQLite's historical limit of 999.
MAX_PARAMS = 900
#: Rows per page of the iterators (pending, missing, failed): memory stays flat.
PAGE = 1000

_SUCCESS = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED})

_COLS = ("key_value, kustomer_id, payload_hash, hash_gen, synced_at, failure_reason, failure_outcome, "
         "failed_at, attempts, intent_op, intent_ref, intent_at, intent_run, intent_hash, seen_run, "
         "snapshot")
# Every column of entries (version 3), in table order, for the dry-run overlay.
_ALL = ("scope_id, key_value, kustomer_id, payload_hash, synced_at, failure_reason, failure_outcome, "
        "failed_at, attempts, seen_run, hash_gen, intent_op, intent_ref, intent_at, intent_run, intent_hash, "
        "snapshot")
_CLEAR_INTENT = "intent_op = NULL, intent_ref = NULL, intent_at = NULL, intent_run = NULL, intent_hash = NULL"
_CLEAR_FAILURE = "failure_reason = NULL, failure_outcome = NULL, failed_at = NULL, attempts = 0"

_INTENT_SQL = """INSERT INTO {t} (scope_id, key_value, intent_op, intent_ref, intent_at, intent_run,
    intent_hash, seen_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (scope_id, key_value) DO UPDATE SET intent_op = excluded.intent_op,
    intent_ref = excluded.intent_ref, intent_at = excluded.intent_at, intent_run = excluded.intent_run,
    intent_hash = excluded.intent_hash, seen_run = excluded.seen_run"""
_SUCCESS_SQL = f"""INSERT INTO {{t}} (scope_id, key_value, kustomer_id, payload_hash, hash_gen, synced_at,
    seen_run, snapshot) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (scope_id, key_value) DO UPDATE SET
    kustomer_id = coalesce(excluded.kustomer_id, kustomer_id), payload_hash = excluded.payload_hash,
    snapshot = excluded.snapshot,
    hash_gen = excluded.hash_gen, synced_at = excluded.synced_at, {_CLEAR_FAILURE}, {_CLEAR_INTENT},
    seen_run = excluded.seen_run"""
_SKIPPED_SQL = f"""INSERT INTO {{t}} (scope_id, key_value, kustomer_id, seen_run) VALUES (?, ?, ?, ?)
    ON CONFLICT (scope_id, key_value) DO UPDATE SET
    kustomer_id = coalesce(excluded.kustomer_id, kustomer_id), {_CLEAR_FAILURE}, {_CLEAR_INTENT},
    seen_run = excluded.seen_run"""
_FAILURE_SQL = """INSERT INTO {{t}} (scope_id, key_value, kustomer_id, failure_reason, failure_outcome,
    failed_at, attempts, seen_run) VALUES (?, ?, ?, ?, ?, ?, 1, ?)
    ON CONFLICT (scope_id, key_value) DO UPDATE SET
    kustomer_id = coalesce(excluded.kustomer_id, kustomer_id), failure_reason = excluded.failure_reason,
    failure_outcome = excluded.failure_outcome, failed_at = excluded.failed_at,
    attempts = attempts + 1, {clear}seen_run = excluded.seen_run"""
_RESOLVE_SQL = f"""UPDATE {{t}} SET kustomer_id = coalesce(?, kustomer_id), payload_hash = NULL,
    {_CLEAR_INTENT} WHERE scope_id = ? AND key_value = ?"""


def _slices(items: Sequence[str], size: int = MAX_PARAMS) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _marks(n: int) -> str:
    return ",".join("?" * n)


def _blob(hex_hash: str | None) -> bytes | None:
    return None if hex_hash is None else bytes.fromhex(hex_hash)


def _hex(blob: bytes | None) -> str | None:
    return None if blob is None else blob.hex()


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":  # no cheap probe: rely on the heartbeat rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


class SqliteStateStore:
    """The default :class:`~kustomer_activations.state.StateStore`: one SQLite file.

    Args:
        path: the state file; created (with its directory's permission) on the
            first run that is not a dry run.
        stale_after: seconds without a heartbeat after which a sync's lock may
            be taken over by a new run (default 15 minutes). A run refreshes
            it at every batch; an engine that may wait longer between batches
            (rate-limit waits, long bulk jobs) calls :meth:`SqliteRun.heartbeat`.
        now: the clock (epoch seconds); tests pass a fake one.
        busy_timeout: seconds a transaction waits for another process's
            transaction on the same file before failing.

    Usage::

        store = SqliteStateStore("state.db")
        with store.open_run("nightly", "customer", "externalId", fingerprint) as run:
            known = run.known(keys)          # one query per chunk
            ...
        print(store.summary())
    """

    def __init__(self, path: str | os.PathLike[str], *, stale_after: float = 900.0,
                 now: Callable[[], float] = time.time, busy_timeout: float = 30.0) -> None:
        self.path = str(Path(os.fspath(path)).absolute())
        self.stale_after = stale_after
        self._now = now
        self._busy_timeout = busy_timeout
        self._host = socket.gethostname()
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"SqliteStateStore({self.path!r})"

    def now(self) -> float:
        """The store's clock (epoch seconds): what its records are stamped with."""
        return self._now()

    # -- connection ---------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        with self._lock:
            if self._db is None:
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=self._busy_timeout)
                try:
                    db.execute("PRAGMA journal_mode=WAL")
                    db.execute("PRAGMA synchronous=NORMAL")
                    migrate(db, self.path)
                except BaseException:
                    db.close()
                    raise
                self._db = db
            return self._db

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (runs still open can no longer record). Idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> SqliteStateStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- locks --------------------------------------------------------------

    def _stale_reason(self, holder: LockInfo, now: float) -> str | None:
        age = now - holder.heartbeat
        if age > self.stale_after:
            return f"its last heartbeat is {age:.0f} s old (stale after {self.stale_after:.0f} s)"
        if holder.host == self._host and holder.pid != os.getpid() and not _pid_alive(holder.pid):
            return f"process {holder.pid} no longer exists on {holder.host}"
        return None

    def _holder(self, db: sqlite3.Connection, sync: str) -> LockInfo | None:
        row = db.execute("SELECT run_id, pid, host, acquired_at, heartbeat_at FROM locks WHERE sync = ?",
                         (sync,)).fetchone()
        if row is None:
            return None
        return LockInfo(run_id=row[0], pid=row[1], host=row[2], since=row[3], heartbeat=row[4])

    def _refuse_live(self, db: sqlite3.Connection, sync: str, now: float, *, take_over: bool) -> None:
        holder = self._holder(db, sync)
        if holder is None:
            return
        reason = self._stale_reason(holder, now)
        if reason is None:
            raise SyncAlreadyRunningError(sync, pid=holder.pid, host=holder.host, since=holder.since,
                                          heartbeat=holder.heartbeat, path=self.path)
        if take_over:
            logger.warning("state %s: taking over the stale lock of sync %r held by process %d on %s "
                           "since %.0f (%s); its run %s is marked abandoned",
                           self.path, sync, holder.pid, holder.host, holder.since, reason, holder.run_id)
            self._drop_lock(db, sync, holder)

    @staticmethod
    def _drop_lock(db: sqlite3.Connection, sync: str, holder: LockInfo) -> None:
        db.execute("UPDATE runs SET status = 'abandoned' WHERE run_id = ? AND status = 'running'",
                   (holder.run_id,))
        db.execute("DELETE FROM locks WHERE sync = ? AND run_id = ?", (sync, holder.run_id))

    def break_lock(self, sync: str) -> LockInfo | None:
        """Remove a sync's lock whatever its age; return the holder it had, if any.

        For a holder known to be dead that the stale rule cannot see (a
        process on another host, before its heartbeat goes stale). If that
        run is in fact alive it stops at its next batch
        (:class:`~kustomer_activations.state.StateLockLostError`).
        """
        with self._tx() as db:
            holder = self._holder(db, sync)
            if holder is not None:
                logger.warning("state %s: breaking the lock of sync %r held by process %d on %s",
                               self.path, sync, holder.pid, holder.host)
                self._drop_lock(db, sync, holder)
            return holder

    # -- runs ---------------------------------------------------------------

    def open_run(
        self,
        sync: str,
        object_type: str,
        key_label: str,
        mapping_fingerprint: str | None = None,
        *,
        dry_run: bool = False,
        full_resync: bool = False,
    ) -> SqliteRun:
        """Start a run of ``sync`` over one object type and key label.

        Args:
            sync: the sync's name (several share one file).
            object_type: ``"customer"`` or ``"company"``.
            key_label: the sync key's label (``SyncKey.label``).
            mapping_fingerprint: :func:`~kustomer_activations.state.mapping_fingerprint`
                of this run's mapping; when it differs from the previous run's,
                every stored hash of this sync, object type and key is ignored
                (rows count as changed; ids are kept). ``None``: not tracked.
            dry_run: record nothing in the file (which is only read).
            full_resync: ignore every stored hash this run (ids are kept).

        Raises:
            SyncAlreadyRunningError: a live run of the same sync holds its lock.
            StateSchemaError: the file is newer than this code (or, for a dry
                run, older: a dry run cannot migrate it).
        """
        if dry_run:
            return self._open_dry(sync, object_type, key_label, mapping_fingerprint, full_resync)
        now = self._now()
        run_id = uuid.uuid4().hex
        with self._tx() as db:
            scope_id, gen, changed = self._scope(db, sync, object_type, key_label, mapping_fingerprint)
            self._refuse_live(db, sync, now, take_over=True)
            cur = db.execute("INSERT INTO runs (run_id, scope_id, started_at, status, pid, host) "
                             "VALUES (?, ?, ?, 'running', ?, ?)",
                             (run_id, scope_id, now, os.getpid(), self._host))
            seq = int(cur.lastrowid or 0)
            db.execute("INSERT INTO locks (sync, run_id, pid, host, acquired_at, heartbeat_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)", (sync, run_id, os.getpid(), self._host, now, now))
        return SqliteRun(self, self._db, self._lock, sync=sync, object_type=object_type,
                         key_label=key_label, scope_id=scope_id, gen=gen, seq=seq, run_id=run_id,
                         dry_run=False, full_resync=full_resync, mapping_changed=changed)

    @staticmethod
    def _scope(db: sqlite3.Connection, sync: str, object_type: str, key_label: str,
               fingerprint: str | None) -> tuple[int, int, bool]:
        row = db.execute("SELECT scope_id, mapping_fingerprint, mapping_gen FROM scopes "
                         "WHERE sync = ? AND object_type = ? AND key_label = ?",
                         (sync, object_type, key_label)).fetchone()
        if row is None:
            cur = db.execute("INSERT INTO scopes (sync, object_type, key_label, mapping_fingerprint) "
                             "VALUES (?, ?, ?, ?)", (sync, object_type, key_label, fingerprint))
            return int(cur.lastrowid or 0), 0, False
        scope_id, stored, gen = int(row[0]), row[1], int(row[2])
        if fingerprint is None or fingerprint == stored:
            return scope_id, gen, False
        # A new generation invalidates every stored hash at once, without
        # touching the rows: a row's hash counts only under its own generation.
        changed = stored is not None
        gen += 1 if changed else 0
        db.execute("UPDATE scopes SET mapping_fingerprint = ?, mapping_gen = ? WHERE scope_id = ?",
                   (fingerprint, gen, scope_id))
        return scope_id, gen, changed

    def _open_dry(self, sync: str, object_type: str, key_label: str, fingerprint: str | None,
                  full_resync: bool) -> SqliteRun:
        path = Path(self.path)
        if path.exists() and path.stat().st_size > 0:
            # immutable: no -wal/-shm gets created. With a -wal present another
            # connection may be writing (or a run was killed): plain read-only.
            wal = Path(self.path + "-wal").exists()
            uri = path.as_uri() + ("?mode=ro" if wal else "?mode=ro&immutable=1")
            db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                 timeout=self._busy_timeout)
            try:
                found = check_version(db, self.path)
                if found != SCHEMA_VERSION:
                    raise StateSchemaError(
                        f"state file {self.path} has schema version {found}; a dry run cannot "
                        f"migrate it to {SCHEMA_VERSION}: run once without dry_run first")
            except BaseException:
                db.close()
                raise
        else:
            db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            migrate(db, ":memory:")
        try:
            row = db.execute("SELECT scope_id, mapping_fingerprint, mapping_gen FROM scopes "
                             "WHERE sync = ? AND object_type = ? AND key_label = ?",
                             (sync, object_type, key_label)).fetchone()
            scope_id, gen, changed = -1, 0, False
            if row is not None:
                scope_id, gen = int(row[0]), int(row[2])
                changed = fingerprint is not None and row[1] is not None and fingerprint != row[1]
                gen += 1 if changed else 0
            self._refuse_live(db, sync, self._now(), take_over=False)
            seq = int(db.execute("SELECT coalesce(max(run_seq), 0) + 1 FROM runs").fetchone()[0])
            db.execute(f"CREATE TEMP TABLE overlay ({_ALL.replace('scope_id,', 'scope_id INTEGER NOT NULL,')}"
                       ", PRIMARY KEY (scope_id, key_value)) WITHOUT ROWID")
            db.execute("CREATE TEMP TABLE seen (key_value TEXT PRIMARY KEY) WITHOUT ROWID")
            db.execute(f"CREATE TEMP VIEW merged AS SELECT {_ALL} FROM temp.overlay UNION ALL "
                       f"SELECT {_ALL} FROM main.entries e WHERE NOT EXISTS (SELECT 1 FROM temp.overlay o "
                       "WHERE o.scope_id = e.scope_id AND o.key_value = e.key_value)")
        except BaseException:
            db.close()
            raise
        return SqliteRun(self, db, threading.RLock(), sync=sync, object_type=object_type,
                         key_label=key_label, scope_id=scope_id, gen=gen, seq=seq,
                         run_id="dry-" + uuid.uuid4().hex, dry_run=True, full_resync=full_resync,
                         mapping_changed=changed)

    # -- reports and maintenance ---------------------------------------------

    def _readable(self) -> bool:
        return self._db is not None or Path(self.path).exists()

    def syncs(self) -> list[str]:
        """The names of the syncs with state in this file, sorted."""
        if not self._readable():
            return []
        with self._lock:
            rows = self._conn().execute("SELECT DISTINCT sync FROM scopes ORDER BY sync").fetchall()
        return [r[0] for r in rows]

    def summary(self, sync: str | None = None) -> StateSummary:
        """Per sync, object type and key: last run, rows known, failed and pending rows, live lock.

        Counting reads each sync's index once (about a second for 10 million
        rows); nothing is written.
        """
        if not self._readable():
            return StateSummary(path=self.path, syncs=())
        out: list[SyncSummary] = []
        with self._lock:
            db = self._conn()
            where, args = ("WHERE sync = ?", (sync,)) if sync is not None else ("", ())
            scopes = db.execute(f"SELECT scope_id, sync, object_type, key_label FROM scopes {where} "
                                "ORDER BY sync, object_type, key_label", args).fetchall()
            for scope_id, name, object_type, key_label in scopes:
                def count(cond: str, scope_id: int = scope_id) -> int:
                    return int(db.execute(f"SELECT count(*) FROM entries WHERE scope_id = ? {cond}",
                                          (scope_id,)).fetchone()[0])
                last = db.execute("SELECT run_id, started_at, ended_at, status, outcomes FROM runs "
                                  "WHERE scope_id = ? ORDER BY run_seq DESC LIMIT 1", (scope_id,)).fetchone()
                run = None if last is None else RunInfo(
                    run_id=last[0], started_at=last[1], ended_at=last[2], status=last[3],
                    outcomes=json.loads(last[4]) if last[4] else {})
                out.append(SyncSummary(
                    sync=name, object_type=object_type, key_label=key_label, rows_known=count(""),
                    rows_failed=count("AND failure_reason IS NOT NULL"),
                    rows_pending=count("AND intent_op IS NOT NULL"), last_run=run,
                    lock=self._holder(db, name)))
        return StateSummary(path=self.path, syncs=tuple(out))

    def reset(self, sync: str) -> int:
        """Forget one sync entirely (rows, runs, mapping fingerprint); return the rows deleted.

        The next run of that sync starts from nothing: every row is looked up
        by key again (no duplicates: the lookup finds what earlier runs
        created). Other syncs in the file are untouched. The file does not
        shrink (SQLite reuses the pages); ``VACUUM`` it to reclaim the space.

        Raises:
            SyncAlreadyRunningError: a live run of the sync holds its lock.
        """
        if not self._readable():
            return 0
        with self._tx() as db:
            self._refuse_live(db, sync, self._now(), take_over=True)
            ids = [r[0] for r in db.execute("SELECT scope_id FROM scopes WHERE sync = ?", (sync,))]
            deleted = 0
            for scope_id in ids:
                deleted += db.execute("DELETE FROM entries WHERE scope_id = ?", (scope_id,)).rowcount
                db.execute("DELETE FROM runs WHERE scope_id = ?", (scope_id,))
            db.execute("DELETE FROM scopes WHERE sync = ?", (sync,))
        return deleted


class SqliteRun:
    """A run opened by :meth:`SqliteStateStore.open_run` (see :class:`~kustomer_activations.state.StateRun`).

    Attributes:
        sync: the sync's name.
        object_type: the object type.
        key_label: the sync key's label.
        full_resync: whether stored hashes are ignored this run.
    """

    def __init__(self, store: SqliteStateStore, db: sqlite3.Connection | None, lock: threading.RLock, *,
                 sync: str, object_type: str, key_label: str, scope_id: int, gen: int, seq: int,
                 run_id: str, dry_run: bool, full_resync: bool, mapping_changed: bool) -> None:
        assert db is not None
        self._store = store
        self._db = db
        self._lock = lock
        self.sync = sync
        self.object_type = object_type
        self.key_label = key_label
        self.full_resync = full_resync
        self._scope = scope_id
        self._gen = gen
        self._seq = seq
        self._run_id = run_id
        self._dry = dry_run
        self._mapping_changed = mapping_changed
        self._closed = False
        self._counts: Counter[str] = Counter()
        self._run_ids: dict[int, str | None] = {}
        # dry runs write to a temporary overlay and read through a view over it
        self._write_table = "temp.overlay" if dry_run else "main.entries"
        self._read_table = "temp.merged" if dry_run else "main.entries"

    def __repr__(self) -> str:
        return (f"SqliteRun({self.sync!r}, {self.object_type!r}, {self.key_label!r}, "
                f"run_id={self._run_id!r}{', dry_run=True' if self._dry else ''})")

    @property
    def run_id(self) -> str:
        """This run's id (``dry-...`` for a dry run)."""
        return self._run_id

    @property
    def dry_run(self) -> bool:
        """Whether nothing this run records reaches the file."""
        return self._dry

    @property
    def mapping_changed(self) -> bool:
        """Whether the mapping fingerprint differs from the previous run's (stored hashes ignored)."""
        return self._mapping_changed

    # -- plumbing -----------------------------------------------------------

    @contextlib.contextmanager
    def _batch(self) -> Iterator[sqlite3.Connection]:
        """One transaction that first proves this run still holds the lock."""
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            db = self._db
            # A dry run's main database is read-only: a deferred transaction
            # only ever writes to its temporary tables.
            db.execute("BEGIN" if self._dry else "BEGIN IMMEDIATE")
            try:
                if not self._dry:
                    self._beat(db)
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _beat(self, db: sqlite3.Connection) -> None:
        cur = db.execute("UPDATE locks SET heartbeat_at = ? WHERE sync = ? AND run_id = ?",
                         (self._store._now(), self.sync, self._run_id))
        if cur.rowcount == 0:
            raise StateLockLostError(
                f"run {self._run_id} of sync {self.sync!r} lost its lock in {self._store.path} "
                "(taken over as stale): it must stop writing")

    def _entry(self, db: sqlite3.Connection, row: Sequence[Any]) -> Entry:
        (key, kid, blob, gen, synced, f_reason, f_outcome, f_at, attempts,
         i_op, i_ref, i_at, i_run, i_hash, _seen, snapshot) = row
        valid = blob is not None and gen == self._gen and not self.full_resync
        failure = None if f_reason is None else Failure(
            reason=f_reason, outcome=Outcome(f_outcome), at=f_at, attempts=attempts)
        pending = None if i_op is None else PendingWrite(
            key_value=key, op=i_op, ref=i_ref, at=i_at, run_id=self._run_id_of(db, i_run),
            kustomer_id=kid, payload_hash=_hex(i_hash))
        return Entry(key_value=key, kustomer_id=kid, payload_hash=_hex(blob) if valid else None,
                     synced_at=synced, failure=failure, pending=pending,
                     snapshot=bytes(snapshot) if snapshot is not None and valid else None)

    def _run_id_of(self, db: sqlite3.Connection, seq: int | None) -> str | None:
        if seq is None:
            return None
        if seq == self._seq:
            return self._run_id
        if seq not in self._run_ids:
            row = db.execute("SELECT run_id FROM runs WHERE run_seq = ?", (seq,)).fetchone()
            self._run_ids[seq] = None if row is None else row[0]
        return self._run_ids[seq]

    def _copy_in(self, db: sqlite3.Connection, keys: Sequence[str]) -> None:
        # Dry runs: bring the stored rows into the overlay before changing them there.
        for part in _slices(keys):
            db.execute(f"INSERT OR IGNORE INTO temp.overlay ({_ALL}) SELECT {_ALL} FROM main.entries "
                       f"WHERE scope_id = ? AND key_value IN ({_marks(len(part))})", (self._scope, *part))

    def _mark(self, db: sqlite3.Connection, keys: Sequence[str]) -> None:
        if self._dry:
            db.executemany("INSERT OR IGNORE INTO temp.seen (key_value) VALUES (?)", ((k,) for k in keys))

    # -- batch API ----------------------------------------------------------

    def known(self, key_values: Sequence[str], *, mark_seen: bool = True) -> dict[str, Entry]:
        """The stored entries of these keys (absent keys are rows the state never saw).

        One query per slice of 900 keys, in one transaction that also
        refreshes the lock's heartbeat. With ``mark_seen`` (the default) the
        keys count as present in the source this run, for
        :meth:`missing_from_source`. An entry's ``payload_hash`` is ``None``
        when this run ignores it (changed mapping, ``full_resync``).

        Raises:
            StateLockLostError: the lock was taken over; stop.
        """
        keys = list(dict.fromkeys(key_values))
        out: dict[str, Entry] = {}
        with self._batch() as db:
            for part in _slices(keys):
                rows = db.execute(f"SELECT {_COLS} FROM {self._read_table} WHERE scope_id = ? "
                                  f"AND key_value IN ({_marks(len(part))})", (self._scope, *part)).fetchall()
                unseen = []
                for row in rows:
                    out[row[0]] = self._entry(db, row)
                    if row[14] != self._seq:
                        unseen.append(row[0])
                if not mark_seen:
                    continue
                if self._dry:
                    self._mark(db, part)
                elif unseen:
                    db.execute(f"UPDATE main.entries SET seen_run = ? WHERE scope_id = ? "
                               f"AND key_value IN ({_marks(len(unseen))})", (self._seq, self._scope, *unseen))
        return out

    def record_intents(self, intents: Sequence[Intent]) -> None:
        """Record writes about to be sent, in one transaction, before sending them.

        A row with an intent counts as pending until :meth:`record_outcomes`
        (or :meth:`resolve_pending`) concludes it; a run killed in between
        leaves it for the next run's :meth:`pending`.

        Raises:
            ValueError: an intent's op is neither ``create`` nor ``update``.
            StateLockLostError: the lock was taken over; send nothing.
        """
        if not intents:
            return
        now = self._store._now()
        rows = []
        for i in intents:
            if i.op not in ("create", "update"):
                raise ValueError(f"intent op must be 'create' or 'update', not {i.op!r}")
            rows.append((self._scope, i.key_value, i.op, i.ref, now, self._seq, _blob(i.payload_hash),
                         self._seq))
        with self._batch() as db:
            if self._dry:
                keys = [i.key_value for i in intents]
                self._copy_in(db, keys)
                self._mark(db, keys)
            db.executemany(_INTENT_SQL.format(t=self._write_table), rows)

    def record_outcomes(self, outcomes: Sequence[StateOutcome]) -> None:
        """Record how rows ended, in one transaction; each clears its row's intent.

        * ``created``/``updated``/``unchanged`` (confirmed by Kustomer): the id,
          the payload hash and the time are stored; any failure is cleared.
        * ``skipped``: the id (if any) is stored; the hash is left as it was.
        * failures: reason, time and attempt count; id and hash are kept, and
          the row is retried next run. With ``write_uncertain`` the intent
          stays pending, to be reconciled.

        Rows left alone because their hash matched need no outcome: :meth:`known`
        already counted them as seen.

        Raises:
            StateLockLostError: the lock was taken over.
        """
        if not outcomes:
            return
        now = self._store._now()
        success: list[tuple[Any, ...]] = []
        skipped: list[tuple[Any, ...]] = []
        failed: list[tuple[Any, ...]] = []
        uncertain: list[tuple[Any, ...]] = []
        for o in outcomes:
            outcome = Outcome(o.outcome)
            if outcome in _SUCCESS:
                success.append((self._scope, o.key_value, o.kustomer_id, _blob(o.payload_hash), self._gen,
                                now, self._seq, o.snapshot))
            elif outcome is Outcome.SKIPPED:
                skipped.append((self._scope, o.key_value, o.kustomer_id, self._seq))
            else:
                assert outcome in FAILURE_OUTCOMES
                row = (self._scope, o.key_value, o.kustomer_id, o.reason or outcome.value, outcome.value,
                       now, self._seq)
                (uncertain if o.write_uncertain else failed).append(row)
        t = self._write_table
        with self._batch() as db:
            if self._dry:
                keys = [o.key_value for o in outcomes]
                self._copy_in(db, keys)
                self._mark(db, keys)
            if success:
                db.executemany(_SUCCESS_SQL.format(t=t), success)
            if skipped:
                db.executemany(_SKIPPED_SQL.format(t=t), skipped)
            if failed:
                db.executemany(_FAILURE_SQL.format(clear=_CLEAR_INTENT + ", ").format(t=t), failed)
            if uncertain:
                db.executemany(_FAILURE_SQL.format(clear="").format(t=t), uncertain)
        self._counts.update(Outcome(o.outcome).value for o in outcomes)

    def resolve_pending(self, found: Mapping[str, str | None]) -> None:
        """Conclude pending writes: key value -> the Kustomer id found for it, or ``None``.

        The id (when found) is stored and the hash cleared, since whether the
        write applied in full is unknown: the row is sent again the next time
        it is in the source (an update by id, harmless if it had applied).
        """
        if not found:
            return
        rows = [(kid, self._scope, key) for key, kid in found.items()]
        with self._batch() as db:
            if self._dry:
                self._copy_in(db, list(found))
            db.executemany(_RESOLVE_SQL.format(t=self._write_table), rows)

    def heartbeat(self) -> None:
        """Refresh the lock's heartbeat (every batch method does it too).

        Raises:
            StateLockLostError: the lock was taken over.
        """
        with self._batch():
            pass

    # -- iterators (keyset pages: memory stays flat, no cursor held across yields) --

    def _pages(self, columns: str, table: str, cond: str, args: Sequence[Any]) -> Iterator[list[Any]]:
        after: str | None = None
        while True:
            page_cond = "" if after is None else "AND key_value > ?"
            page_args = [self._scope, *args] + ([] if after is None else [after])
            with self._lock:
                if self._closed:
                    raise RuntimeError(f"{self!r} is closed")
                rows = self._db.execute(
                    f"SELECT {columns} FROM {table} WHERE scope_id = ? {cond} {page_cond} "
                    f"ORDER BY key_value LIMIT {PAGE}", page_args).fetchall()
            if rows:
                yield rows
            if len(rows) < PAGE:
                return
            after = rows[-1][0]

    def pending(self) -> Iterator[PendingWrite]:
        """Writes announced by earlier runs and never concluded, by key value.

        Reconcile them before new work: find out (by the intent's ``ref``, or
        by a key lookup) whether each create reached Kustomer, then call
        :meth:`resolve_pending`. Updates are idempotent: resolve them with
        ``None``.
        """
        for rows in self._pages(_COLS, self._read_table, "AND intent_op IS NOT NULL AND intent_run IS NOT ?",
                                [self._seq]):
            with self._lock:
                entries = [self._entry(self._db, row) for row in rows]
            for entry in entries:
                assert entry.pending is not None
                yield entry.pending

    def missing_from_source(self) -> Iterator[str]:
        """Key values the state knows that no :meth:`known` call of this run saw, by key value.

        Meaningful once the whole source has been read (after the last chunk).
        Nothing is deleted: the rows stay, and are listed again next run if
        still absent.
        """
        if self._dry:
            cond = ("AND seen_run IS NOT ? AND NOT EXISTS (SELECT 1 FROM temp.seen s "
                    "WHERE s.key_value = merged.key_value)")
        else:
            cond = "AND seen_run IS NOT ?"
        for rows in self._pages("key_value", self._read_table, cond, [self._seq]):
            yield from (r[0] for r in rows)

    def failed_keys(self) -> Iterator[str]:
        """Key values whose last attempt failed, by key value."""
        for rows in self._pages("key_value", self._read_table, "AND failure_reason IS NOT NULL", []):
            yield from (r[0] for r in rows)

    # -- end ----------------------------------------------------------------

    def close(self, success: bool) -> None:
        """End the run: its status (``succeeded``/``failed``) and outcome counts, and release the lock.

        A dry run drops its temporary tables. Idempotent.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._dry:
                self._db.close()
                return
            status = "succeeded" if success else "failed"
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("UPDATE runs SET ended_at = ?, status = ?, outcomes = ? "
                           "WHERE run_seq = ? AND status = 'running'",
                           (self._store._now(), status, json.dumps(dict(self._counts)), self._seq))
                db.execute("DELETE FROM locks WHERE sync = ? AND run_id = ?", (self.sync, self._run_id))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def __enter__(self) -> SqliteRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(exc_type is None)
