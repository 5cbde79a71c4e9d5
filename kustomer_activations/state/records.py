"""The records the state store takes and returns (frozen attrs classes)."""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ..results import Outcome, UpsertResult

__all__ = [
    "Entry",
    "Failure",
    "Intent",
    "LockInfo",
    "PendingWrite",
    "RunInfo",
    "StateOutcome",
    "StateSummary",
    "SyncSummary",
]

#: The write an intent announces.
WriteOp = Literal["create", "update"]


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return _dt.datetime.fromtimestamp(epoch, tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@attrs.frozen(kw_only=True)
class Failure:
    """The last failure recorded for a row.

    Attributes:
        reason: why (the result's reason or error text).
        outcome: the failure outcome (``ambiguous``, ``invalid``, ``rejected``, ``failed``).
        at: when (epoch seconds).
        attempts: consecutive failed runs, reset by a success.
    """

    reason: str
    outcome: Outcome
    at: float
    attempts: int


@attrs.frozen(kw_only=True)
class PendingWrite:
    """A write announced by :meth:`StateRun.record_intents` whose outcome was never recorded.

    Attributes:
        key_value: the row's sync key value.
        op: ``"create"`` or ``"update"``.
        ref: the engine's client reference for the write (e.g. a bulk job id), if any.
        at: when the intent was recorded (epoch seconds).
        run_id: the run that recorded it.
        kustomer_id: the Kustomer id the state held for the row, if any.
        payload_hash: the hash of the payload that was about to be written, if given.
    """

    key_value: str
    op: str
    ref: str | None
    at: float
    run_id: str | None
    kustomer_id: str | None
    payload_hash: str | None


@attrs.frozen(kw_only=True)
class Entry:
    """What the state knows of one row (one sync, object type, key label and key value).

    Attributes:
        key_value: the row's sync key value.
        kustomer_id: the Kustomer id last written or matched (``None`` if never).
        payload_hash: the hash of the last payload Kustomer accepted; ``None``
            when there is none, or when the run ignores it (the mapping changed
            since, or ``full_resync``).
        synced_at: when Kustomer last accepted or confirmed the row (epoch seconds).
        failure: the last failure, until a success clears it.
        pending: a write announced and never concluded (a killed run).
    """

    key_value: str
    kustomer_id: str | None
    payload_hash: str | None
    synced_at: float | None
    failure: Failure | None
    pending: PendingWrite | None
    #: The mapped fields as Kustomer holds them after the last confirmed write
    #: (compressed JSON, see :func:`kustomer_activations.state.hashing.pack`), if kept.
    snapshot: bytes | None = None

    def is_unchanged(self, payload_hash: str, *, now: float | None = None,
                     max_age: float | None = None) -> bool:
        """Whether the row can be skipped with zero requests.

        True only when the stored hash equals ``payload_hash``, an id is known,
        the last attempt did not fail, no write is pending and, with
        ``max_age`` (seconds, e.g. ``verify_every`` days * 86400) and ``now``,
        the row was confirmed no longer ago than that.
        """
        if (self.payload_hash != payload_hash or self.kustomer_id is None
                or self.failure is not None or self.pending is not None):
            return False
        if max_age is not None:
            if now is None:
                raise ValueError("max_age needs now")
            return self.synced_at is not None and now - self.synced_at <= max_age
        return True


@attrs.frozen(kw_only=True)
class Intent:
    """A write about to be sent, recorded before sending it (crash safety).

    Attributes:
        key_value: the row's sync key value.
        op: ``"create"`` or ``"update"``.
        ref: a client reference that lets a later run find out what became of
            the write (a bulk job id, a request id), if the engine has one.
        payload_hash: the hash of the payload about to be written.
    """

    key_value: str
    op: WriteOp
    ref: str | None = None
    payload_hash: str | None = None


@attrs.frozen(kw_only=True)
class StateOutcome:
    """How one row ended, to record with :meth:`StateRun.record_outcomes`.

    Attributes:
        key_value: the row's sync key value.
        outcome: the :class:`~kustomer_activations.results.Outcome`.
        kustomer_id: the id written or matched (``None`` keeps the stored one).
        payload_hash: for ``created``/``updated``/``unchanged``, the hash of the
            payload Kustomer now holds (``None`` stores none: the row counts as
            changed next run).
        reason: for failures, why.
        write_uncertain: for failures, the write may have reached Kustomer
            (a timeout, a bulk job that never reported): the row's intent stays
            pending, to be reconciled before the next run's work.
    """

    key_value: str
    outcome: Outcome
    kustomer_id: str | None = None
    payload_hash: str | None = None
    reason: str | None = None
    write_uncertain: bool = False
    #: For ``created``/``updated``/``unchanged``: the snapshot to keep (``None`` keeps none).
    snapshot: bytes | None = None

    @classmethod
    def from_result(cls, result: UpsertResult, payload_hash: str | None = None, *,
                    write_uncertain: bool = False, snapshot: bytes | None = None) -> StateOutcome:
        """The record for an :class:`~kustomer_activations.results.UpsertResult`.

        Raises:
            ValueError: the result has no key value.
        """
        if result.key_value is None:
            raise ValueError("the result has no key_value to record")
        reason = result.reason or (str(result.error) if result.error is not None else None)
        return cls(key_value=result.key_value, outcome=result.outcome, kustomer_id=result.id,
                   payload_hash=payload_hash, reason=reason, write_uncertain=write_uncertain,
                   snapshot=snapshot)


@attrs.frozen(kw_only=True)
class RunInfo:
    """One run of a sync.

    Attributes:
        run_id: the run's id.
        started_at: when it started (epoch seconds).
        ended_at: when it ended (``None`` while running or if it was killed).
        status: ``running``, ``succeeded``, ``failed`` or ``abandoned`` (killed,
            its lock taken over).
        outcomes: how many rows each recorded outcome counted.
    """

    run_id: str
    started_at: float
    ended_at: float | None
    status: str
    outcomes: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class LockInfo:
    """Who holds a sync's lock.

    Attributes:
        run_id: the holder's run.
        pid: the holder's process id.
        host: the holder's host name.
        since: when it took the lock (epoch seconds).
        heartbeat: when it last refreshed the lock (epoch seconds).
    """

    run_id: str
    pid: int
    host: str
    since: float
    heartbeat: float


@attrs.frozen(kw_only=True)
class SyncSummary:
    """The state of one sync for one object type and key.

    Attributes:
        sync: the sync's name.
        object_type: ``"customer"`` or ``"company"``.
        key_label: the sync key's label (``"externalId"``, ``"custom.skuStr"``).
        rows_known: rows with state.
        rows_failed: rows whose last attempt failed.
        rows_pending: rows with a write announced and never concluded.
        last_run: the latest run, if any.
        lock: the live lock's holder, if a run holds it.
    """

    sync: str
    object_type: str
    key_label: str
    rows_known: int
    rows_failed: int
    rows_pending: int
    last_run: RunInfo | None
    lock: LockInfo | None

    def __str__(self) -> str:
        head = f"{self.sync} ({self.object_type} by {self.key_label})"
        counts = f"{self.rows_known:,} rows known, {self.rows_failed:,} failed"
        if self.rows_pending:
            counts += f", {self.rows_pending:,} pending"
        if self.last_run is None:
            run = "never run"
        else:
            r = self.last_run
            run = f"last run {r.status}: {_when(r.started_at)} -> {_when(r.ended_at)} UTC"
        line = f"{head}: {counts}; {run}"
        if self.lock is not None:
            line += f"; running now (pid {self.lock.pid} on {self.lock.host})"
        return line


@attrs.frozen(kw_only=True)
class StateSummary:
    """What a state file holds: one :class:`SyncSummary` per sync, object type and key.

    Attributes:
        path: the state file.
        syncs: the summaries, by sync name, object type and key label.
    """

    path: str
    syncs: tuple[SyncSummary, ...]

    @property
    def rows_known(self) -> int:
        """Rows with state, over every sync listed."""
        return sum(s.rows_known for s in self.syncs)

    @property
    def rows_failed(self) -> int:
        """Rows whose last attempt failed, over every sync listed."""
        return sum(s.rows_failed for s in self.syncs)

    def __str__(self) -> str:
        if not self.syncs:
            return f"{self.path}: no syncs"
        return "\n".join([f"{self.path}:", *(f"  {s}" for s in self.syncs)])

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's display: the summary's text."""
        printer.text("StateSummary(...)" if cycle else str(self))

    def _repr_html_(self) -> str:
        """Jupyter's display: one table row per sync (every value escaped)."""
        esc = html.escape
        head = ("<tr><th>sync</th><th>object</th><th>key</th><th>rows known</th>"
                "<th>failed</th><th>pending</th><th>last run</th><th>running</th></tr>")
        rows = []
        for s in self.syncs:
            r = s.last_run
            last = "never" if r is None else f"{r.status}, {_when(r.started_at)} UTC"
            running = "" if s.lock is None else f"pid {s.lock.pid} on {s.lock.host}"
            rows.append("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
                s.sync, s.object_type, s.key_label, f"{s.rows_known:,}", f"{s.rows_failed:,}",
                f"{s.rows_pending:,}", last, running)) + "</tr>")
        body = "".join(rows) or "<tr><td colspan='8'>no syncs</td></tr>"
        return (f"<div><strong>State file</strong> <code>{esc(self.path)}</code>"
                f"<table>{head}{body}</table></div>")
