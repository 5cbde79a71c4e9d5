"""Incremental syncs: what the batch engine asks of a state store, and when.

One :class:`StateLink` per sync wraps the store's run (see
:mod:`kustomer_activations.state`). Every method works on a batch and is
plain blocking code: the sync driver calls it from its coordinating thread,
the async driver in a worker thread (``anyio.to_thread``), so SQLite never
blocks an event loop. The rules (docs/state.rst):

* a row whose mapped record hashes as last time, and whose last attempt did
  not fail, is ``unchanged`` at once: no request;
* a changed row the state knows (id and snapshot) is planned against the
  snapshot and updated by id: no lookup (a 404 falls back to a lookup by key);
* every other row (new, failed last time, pending from a killed run, or
  without a snapshot) goes the usual way: lookup, decide, write;
* before a batch is sent its intents are recorded, and each row's outcome
  after, in one transaction per batch; a run killed in between leaves the
  intents pending, and the next run looks those rows up (after the search
  index has had time to show a write that landed) instead of trusting the
  state.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ..results import Outcome, UpsertResult
from ..state import (
    Intent,
    SqliteStateStore,
    StateOutcome,
    StateRun,
    StateStore,
    mapped_hash,
    mapping_fingerprint,
)
from ..state.hashing import pack, unpack
from ..upsert.batch import Row, WriteBatch

__all__ = ["SEARCH_SETTLE_SECONDS", "StateLink", "open_store"]

#: How long after a write the search index may still not show it: rows a killed
#: run may have written are looked up only once this much time has passed.
SEARCH_SETTLE_SECONDS = 60.0
#: Keys of rows gone from the source kept in the report (the count is exact).
GONE_SHOWN = 100

_CONFIRMED = frozenset({Outcome.CREATED, Outcome.UPDATED, Outcome.UNCHANGED})


def open_store(state: StateStore | str | os.PathLike[str]) -> tuple[StateStore, bool]:
    """The store for ``state=``: a store as given, or a :class:`SqliteStateStore` at a path
    (then ``True``: the engine closes it when the sync ends)."""
    if isinstance(state, (str, os.PathLike)):
        return SqliteStateStore(os.fspath(state)), True
    if not callable(getattr(state, "open_run", None)):
        raise TypeError(f"state= takes a StateStore or a file path, not {type(state).__name__}")
    return state, False


class StateLink:
    """One sync's run of a state store, seen from the engine."""

    def __init__(self, store: StateStore, *, sync: str, object_type: str, key_label: str,
                 mapping: Any, options: dict[str, Any], dry_run: bool, full_resync: bool,
                 retry_failed_only: bool, verify_every: float | None, close_store: bool,
                 fresh_reads: bool = False) -> None:
        self.store = store
        # The store stamps its records with its own clock: compare ages on that one.
        now = getattr(store, "now", None)
        self._now: Any = now if callable(now) else time.time
        #: Plan changed rows from a fresh read by id, not from the stored snapshot.
        self.fresh_reads = fresh_reads
        self._close_store = close_store
        self.retry_failed_only = retry_failed_only
        self.verify_every = verify_every
        self.run: StateRun = store.open_run(
            sync, object_type, key_label, mapping_fingerprint(mapping, extra=options),
            dry_run=dry_run, full_resync=full_resync)
        #: Rows a killed run may have written: looked up, never trusted, this run.
        self.pending: set[str] = set()
        newest = 0.0
        for write in self.run.pending():
            self.pending.add(write.key_value)
            newest = max(newest, write.at)
        self.settle_until = newest + SEARCH_SETTLE_SECONDS if self.pending else 0.0

    def settle_wait(self) -> float:
        """Seconds to wait before looking up the rows a killed run may have written."""
        return max(0.0, self.settle_until - self._now()) if self.pending else 0.0

    def admit(self, rows: list[Row], kind: str, key: str) -> tuple[list[Row], list[UpsertResult]]:
        """One query for a chunk: the rows still to decide, and those the state settles."""
        known = self.run.known([r.key_value for r in rows])
        todo: list[Row] = []
        settled: list[UpsertResult] = []
        now = self._now()
        for row in rows:
            row.state_hash = mapped_hash(row.mapped)
            entry = known.get(row.key_value)
            failed_before = entry is not None and entry.failure is not None
            if self.retry_failed_only and not failed_before:
                row.state_hash = None  # left alone: its state stays as it was
                settled.append(UpsertResult(
                    outcome=Outcome.SKIPPED, object_type=kind, key=key, key_value=row.key_value,
                    row=row.index, id=entry.kustomer_id if entry else None,
                    reason="retry_failed_only: this row did not fail last time"))
                continue
            if entry is None or row.key_value in self.pending:
                todo.append(row)
                continue
            if entry.is_unchanged(row.state_hash, now=now, max_age=self.verify_every):
                row.state_hash = None  # settled by the state: nothing new to record
                settled.append(UpsertResult(
                    outcome=Outcome.UNCHANGED, object_type=kind, key=key, key_value=row.key_value,
                    row=row.index, id=entry.kustomer_id,
                    reason="unchanged since the last sync (state store): nothing sent"))
                continue
            stale = (self.verify_every is not None and entry.synced_at is not None
                     and now - entry.synced_at > self.verify_every)
            if (entry.kustomer_id and entry.snapshot is not None and not failed_before and not stale
                    and not self.fresh_reads):
                try:
                    row.snapshot = unpack(entry.snapshot)
                    row.known_id = entry.kustomer_id
                except ValueError:
                    row.snapshot = None  # unreadable: look the row up by its key
            todo.append(row)
        return todo, settled

    def intents(self, batch: WriteBatch) -> None:
        """Record a batch's writes before it is sent (one transaction)."""
        self.run.record_intents([
            Intent(key_value=w.row.key_value, op=batch.op, payload_hash=w.row.state_hash)
            for w in batch.writes])

    def outcomes(self, counted: Iterable[tuple[UpsertResult, Row | None]]) -> None:
        """Record how rows ended (one transaction). Rows the state settled need nothing."""
        records: list[StateOutcome] = []
        for result, row in counted:
            if row is None or result.key_value is None or row.state_hash is None:
                continue
            if result.outcome in _CONFIRMED:
                snapshot = pack(row.after) if row.after is not None else None
                records.append(StateOutcome.from_result(result, row.state_hash, snapshot=snapshot))
            else:
                uncertain = result.outcome is Outcome.FAILED and (
                    row.sent or "may have been written" in (result.reason or ""))
                records.append(StateOutcome.from_result(result, None, write_uncertain=uncertain))
        if records:
            self.run.record_outcomes(records)

    def finish(self, report: Any, success: bool) -> None:
        """Note the rows gone from the source in ``report`` and end the run."""
        try:
            if success and not self.retry_failed_only:
                gone: Sequence[str] = []
                count = 0
                shown: list[str] = []
                for key_value in self.run.missing_from_source():
                    count += 1
                    if len(shown) < GONE_SHOWN:
                        shown.append(key_value)
                gone = shown
                report.gone_from_source = count
                report.gone_keys = list(gone)
        finally:
            try:
                self.run.close(success)
            finally:
                if self._close_store:
                    close = getattr(self.store, "close", None)
                    if callable(close):
                        close()
