"""Progress of a running sync, for a bar in a notebook or a terminal."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from ..results import Outcome

__all__ = ["Progress", "ProgressCallback"]


@attrs.frozen(kw_only=True)
class Progress:
    """A snapshot handed to ``on_progress`` after every finished batch of rows.

    Attributes:
        done: rows with an outcome so far.
        total: rows in the input, when known (lists, DataFrames), else ``None``.
        elapsed: seconds since the sync started.
        requests: HTTP requests sent so far.
        counts: rows per outcome so far.
    """

    done: int
    total: int | None
    elapsed: float
    requests: int
    counts: Mapping[Outcome, int]

    @property
    def rate(self) -> float:
        """Rows per minute so far."""
        return self.done / self.elapsed * 60 if self.elapsed > 0 else 0.0

    @property
    def fraction(self) -> float | None:
        """Share done, 0.0 to 1.0, when the total is known."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressCallback = Callable[[Progress], None]
"""``on_progress``: called with a :class:`Progress` after each batch of rows is counted.

It runs on the thread (or task) that drives the sync. If it raises, the sync
is cancelled (nothing new is read or sent, chunks in flight stop, every row
read is counted once) and it is not called again; then ``KeyboardInterrupt``
becomes :class:`~kustomer_activations.SyncCancelledError` from ``upsert_many``,
and any other exception is re-raised with the report as ``exc.report``.
"""
