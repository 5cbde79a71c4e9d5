"""Progress of a running sync, for a bar in a notebook or a terminal."""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import attrs

from ..results import FAILURE_OUTCOMES, Outcome

__all__ = ["Progress", "ProgressCallback", "ProgressOption", "progress_callback"]

#: Where the ``progress=True`` hint points when tqdm is missing.
PROGRESS_EXTRA = "pip install 'kustomer-activations[progress]'"


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

ProgressOption = bool | Literal["auto"] | ProgressCallback | None
"""``progress=``: ``True`` or ``"auto"`` for a tqdm bar, a callable for the snapshots, or off."""

#: ``progress=True`` without tqdm warns once per process, not once per sync.
_warned_missing_tqdm = False


def _load_tqdm() -> Any:
    """``tqdm.auto.tqdm`` (a widget in Jupyter, text in a terminal), or ``None`` without tqdm."""
    try:
        return importlib.import_module("tqdm.auto").tqdm
    except ImportError:
        return None


class TqdmProgress:
    """A ``ProgressCallback`` that draws a tqdm bar, opened on the first snapshot."""

    def __init__(self, tqdm: Any, desc: str) -> None:
        self._tqdm = tqdm
        self._desc = desc
        self._bar: Any = None

    def __call__(self, progress: Progress) -> None:
        """Move the bar to ``progress.done`` and show requests and failures so far."""
        if self._bar is None:
            self._bar = self._tqdm(total=progress.total, desc=self._desc, unit="row",
                                   dynamic_ncols=True)
        self._bar.update(progress.done - self._bar.n)
        failed = sum(n for o, n in progress.counts.items() if o in FAILURE_OUTCOMES)
        self._bar.set_postfix(requests=progress.requests, failed=failed, refresh=False)

    def close(self) -> None:
        """Close the bar, if one was opened."""
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def progress_callback(
    progress: ProgressOption, on_progress: ProgressCallback | None, *, desc: str = "rows",
) -> Iterator[ProgressCallback | None]:
    """The ``on_progress`` callback a sync gets for ``progress=`` and ``on_progress=``; closes the bar.

    ``True``/``"auto"`` draw a ``tqdm.auto`` bar when tqdm is installed (the
    ``[progress]`` extra); without it ``"auto"`` shows nothing and ``True``
    warns once. A callable gets every :class:`Progress` snapshot, like
    ``on_progress`` (both may be given; each is called).
    """
    global _warned_missing_tqdm
    callbacks: list[ProgressCallback] = []
    bar: TqdmProgress | None = None
    if progress is True or progress == "auto":
        tqdm = _load_tqdm()
        if tqdm is not None:
            bar = TqdmProgress(tqdm, desc)
            callbacks.append(bar)
        elif progress is True and not _warned_missing_tqdm:
            _warned_missing_tqdm = True
            warnings.warn(f"progress=True draws a bar with tqdm, which is not installed: {PROGRESS_EXTRA}",
                          RuntimeWarning, stacklevel=4)
    elif callable(progress):
        callbacks.append(progress)
    elif progress not in (None, False):
        raise ValueError(f"progress must be True, False, 'auto' or a callable, not {progress!r}")
    if on_progress is not None:
        callbacks.append(on_progress)
    try:
        if not callbacks:
            yield None
        elif len(callbacks) == 1:
            yield callbacks[0]
        else:
            def both(snapshot: Progress) -> None:
                for callback in callbacks:
                    callback(snapshot)
            yield both
    finally:
        if bar is not None:
            bar.close()
