"""What an engine needs of a state store: :class:`StateStore` and the :class:`StateRun` it opens."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Protocol

from .records import Entry, Intent, PendingWrite, StateOutcome, StateSummary

__all__ = ["StateRun", "StateStore"]


class StateRun(Protocol):
    """One run of one sync over one object type and key, holding the sync's lock.

    Every method works on a batch (an engine chunk) and costs one transaction,
    never one per row. A run is closed with :meth:`close` (or by leaving it as
    a context manager: success unless an exception escapes).
    """

    @property
    def run_id(self) -> str:
        """This run's id."""
        ...

    @property
    def dry_run(self) -> bool:
        """Whether nothing this run records reaches the file."""
        ...

    @property
    def mapping_changed(self) -> bool:
        """Whether the mapping fingerprint differs from the previous run's (stored hashes ignored)."""
        ...

    def known(self, key_values: Sequence[str], *, mark_seen: bool = True) -> dict[str, Entry]:
        """The entries of the given keys that the state knows (absent keys are new rows).

        With ``mark_seen`` the keys count as present in the source this run
        (see :meth:`missing_from_source`). Also refreshes the lock's heartbeat.
        """
        ...

    def record_intents(self, intents: Sequence[Intent]) -> None:
        """Record writes about to be sent, before sending them (one transaction)."""
        ...

    def record_outcomes(self, outcomes: Sequence[StateOutcome]) -> None:
        """Record how rows ended, clearing their intents (one transaction)."""
        ...

    def pending(self) -> Iterator[PendingWrite]:
        """Writes announced by earlier runs and never concluded: reconcile them before new work."""
        ...

    def resolve_pending(self, found: Mapping[str, str | None]) -> None:
        """Conclude pending writes: key value -> the Kustomer id found for it (``None``: none)."""
        ...

    def missing_from_source(self) -> Iterator[str]:
        """Key values the state knows that this run never saw (rows gone from the source)."""
        ...

    def failed_keys(self) -> Iterator[str]:
        """Key values whose last attempt failed."""
        ...

    def heartbeat(self) -> None:
        """Show the lock's holder is alive (every batch method does it too)."""
        ...

    def close(self, success: bool) -> None:
        """End the run: record its status and release the lock. Idempotent."""
        ...

    def __enter__(self) -> StateRun: ...

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


class StateStore(Protocol):
    """Where incremental syncs keep their state; :class:`SqliteStateStore` is the default."""

    def open_run(
        self,
        sync: str,
        object_type: str,
        key_label: str,
        mapping_fingerprint: str | None = None,
        *,
        dry_run: bool = False,
        full_resync: bool = False,
    ) -> StateRun:
        """Start a run: take the sync's lock and note the mapping fingerprint."""
        ...

    def summary(self, sync: str | None = None) -> StateSummary:
        """Last run, rows known and failed rows, for one sync or all of them."""
        ...

    def reset(self, sync: str) -> int:
        """Forget everything about one sync; return the rows deleted."""
        ...

    def syncs(self) -> list[str]:
        """The names of the syncs with state, sorted."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...
