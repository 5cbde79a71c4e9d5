"""Incremental syncs: an embedded state store (see the "Incremental syncs and state" guide).

Per sync, object type, key label and key value the store keeps the Kustomer
id, a stable hash of the last mapped payload Kustomer accepted, when, the
last failure and any write announced but never concluded. An engine opens a
:class:`StateRun` per sync run and talks to it in batches (one transaction
per chunk): :meth:`StateRun.known` before deciding, :meth:`StateRun.record_intents`
before writing, :meth:`StateRun.record_outcomes` after.

:class:`SqliteStateStore` is the default (one SQLite file, WAL mode, no
server); :class:`AsyncStateStore` runs any store's calls in worker threads.
"""

from .aio import AsyncStateRun, AsyncStateStore
from .errors import StateError, StateLockLostError, StateSchemaError, SyncAlreadyRunningError
from .hashing import canonical_json, mapped_hash, mapping_fingerprint, payload_hash
from .protocol import StateRun, StateStore
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
from .schema import MIGRATIONS, SCHEMA_VERSION
from .sqlite import SqliteRun, SqliteStateStore

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AsyncStateRun",
    "AsyncStateStore",
    "Entry",
    "Failure",
    "Intent",
    "LockInfo",
    "PendingWrite",
    "RunInfo",
    "SqliteRun",
    "SqliteStateStore",
    "StateError",
    "StateLockLostError",
    "StateOutcome",
    "StateRun",
    "StateSchemaError",
    "StateStore",
    "StateSummary",
    "SyncAlreadyRunningError",
    "SyncSummary",
    "canonical_json",
    "mapped_hash",
    "mapping_fingerprint",
    "payload_hash",
]
