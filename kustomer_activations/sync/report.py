"""``SyncReport``: one outcome per row read, the failures, and what it cost."""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from ..errors import KustomerError
from ..results import FAILURE_OUTCOMES, Outcome, UpsertResult

__all__ = ["DEFAULT_MAX_FAILURES", "SyncCancelledError", "SyncFailuresError", "SyncReport",
           "read_failures"]

_META = ("_row", "_outcome", "_reason")

#: Failed rows a report keeps by default (``SyncReport(max_failures=...)``).
DEFAULT_MAX_FAILURES = 100_000


@attrs.define(kw_only=True)
class SyncReport:
    """The result of a batch sync: counts that always sum to the rows read.

    Attributes:
        object_type: ``"customer"`` or ``"company"``.
        key: the sync key's label.
        mode: ``"upsert"``, ``"update_only"`` or ``"create_only"``.
        dry_run: True when nothing was written (outcomes say what *would* happen).
        counts: rows per :class:`~kustomer_activations.Outcome`.
        failures: the results of failed rows (ambiguous, invalid, rejected,
            failed), each with its row number, reason and source record;
            the first ``max_failures`` of them. Successful rows are only counted.
        max_failures: how many failures to keep (``None``: all of them), so
            an input that fails row after row cannot fill the memory.
        failures_dropped: failed rows counted but not kept in ``failures``.
        requests: HTTP requests sent (retries included).
        duration: seconds from start to finish (on the client's clock).
        cancelled: True when the sync was interrupted; rows not completed
            are counted as failed with a reason saying whether they were sent.
        notes: what the sync learned about the org on the way and what it
            cost (e.g. a search form Kustomer refused and the one used
            instead), one line each.
    """

    object_type: str = ""
    key: str = ""
    mode: str = "upsert"
    dry_run: bool = False
    counts: dict[Outcome, int] = attrs.field(factory=lambda: dict.fromkeys(Outcome, 0))
    failures: list[UpsertResult] = attrs.field(factory=list)
    requests: int = 0
    duration: float = 0.0
    cancelled: bool = False
    notes: list[str] = attrs.field(factory=list)
    max_failures: int | None = DEFAULT_MAX_FAILURES
    failures_dropped: int = 0
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False, eq=False)

    def add(self, result: UpsertResult) -> None:
        """Count one row's result (thread-safe)."""
        with self._lock:
            self.counts[result.outcome] += 1
            if result.outcome in FAILURE_OUTCOMES:
                if self.max_failures is not None and len(self.failures) >= self.max_failures:
                    self.failures_dropped += 1
                    return
                _drop_tracebacks(result.error)
                self.failures.append(result)

    @property
    def rows(self) -> int:
        """Rows read from the input; equals the sum of :attr:`counts`."""
        return sum(self.counts.values())

    @property
    def created(self) -> int:
        """Rows created."""
        return self.counts[Outcome.CREATED]

    @property
    def updated(self) -> int:
        """Rows updated."""
        return self.counts[Outcome.UPDATED]

    @property
    def unchanged(self) -> int:
        """Rows matched whose mapped fields already held the values."""
        return self.counts[Outcome.UNCHANGED]

    @property
    def skipped(self) -> int:
        """Rows not written by choice (the mode)."""
        return self.counts[Outcome.SKIPPED]

    @property
    def ambiguous(self) -> int:
        """Rows whose key matched several objects."""
        return self.counts[Outcome.AMBIGUOUS]

    @property
    def invalid(self) -> int:
        """Rows refused locally, never sent."""
        return self.counts[Outcome.INVALID]

    @property
    def rejected(self) -> int:
        """Rows refused by Kustomer."""
        return self.counts[Outcome.REJECTED]

    @property
    def failed(self) -> int:
        """Rows that could not complete (network, server, cancelled)."""
        return self.counts[Outcome.FAILED]

    @property
    def failed_rows(self) -> int:
        """Rows that ended ambiguous, invalid, rejected or failed."""
        return sum(self.counts[o] for o in FAILURE_OUTCOMES)

    @property
    def ok(self) -> bool:
        """True when no row failed and the sync was not cancelled."""
        return self.failed_rows == 0 and not self.cancelled

    @property
    def rows_per_minute(self) -> float:
        """Throughput over the whole sync."""
        return self.rows / self.duration * 60 if self.duration > 0 else 0.0

    @property
    def requests_per_row(self) -> float:
        """HTTP requests spent per row read."""
        return self.requests / self.rows if self.rows else 0.0

    def summary(self) -> str:
        """A few lines for a person: counts, cost, and the first failures."""
        verb = "would be " if self.dry_run else ""
        counts = ", ".join(f"{o.value} {n}" for o, n in self.counts.items() if n)
        lines = [
            f"{self.object_type} sync on {self.key} ({self.mode}{', dry run' if self.dry_run else ''}): "
            f"{self.rows} rows: {counts or 'none'}",
            f"{self.requests} requests ({self.requests_per_row:.3f}/row), "
            f"{self.duration:.1f}s, {self.rows_per_minute:,.0f} rows/min",
        ]
        if self.cancelled:
            lines.append("CANCELLED: rows not completed are counted as failed")
        lines.extend(f"note: {note}" for note in self.notes)
        for failure in self.failures[:5]:
            lines.append(f"  row {failure.row}: {failure.describe()}")
        if len(self.failures) > 5:
            lines.append(f"  ... and {len(self.failures) - 5} more failures")
        if self.failures_dropped:
            lines.append(f"  {self.failures_dropped} more failed rows counted but not kept "
                         f"(max_failures={self.max_failures})")
        if verb:
            lines[0] = lines[0].replace("rows:", f"rows ({verb}written):", 1)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def raise_for_failures(self) -> SyncReport:
        """Raise :class:`SyncFailuresError` when any row failed; else return ``self``."""
        if not self.ok:
            raise SyncFailuresError(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        """Counts and cost as plain data (for logs and JSON)."""
        return {
            "object_type": self.object_type,
            "key": self.key,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "counts": {o.value: n for o, n in self.counts.items()},
            "requests": self.requests,
            "duration": self.duration,
            "cancelled": self.cancelled,
            "failures": len(self.failures),
            "failures_dropped": self.failures_dropped,
            "notes": list(self.notes),
        }

    def export_failures(self, path: str | Path) -> int:
        """Write the failed rows kept to ``.csv`` or ``.jsonl``; returns the count written.

        Each line holds the source record as given plus ``_row``,
        ``_outcome`` and ``_reason``; :func:`read_failures` reads the source
        records back, so they can be fixed and fed to another sync.
        """
        target = Path(path)
        rows = [_failure_row(f) for f in sorted(self.failures, key=lambda f: f.row or 0)]
        # A failed row's source is whatever the input held (it may be why the row failed):
        # odd keys, cycles and unencodable text are written in a readable form, never raised.
        if target.suffix.lower() == ".jsonl":
            with target.open("w", encoding="utf-8", errors="backslashreplace") as fh:
                for row in rows:
                    fh.write(json.dumps(_plain(row), ensure_ascii=False) + "\n")
        elif target.suffix.lower() == ".csv":
            columns: dict[str, None] = dict.fromkeys(_META)
            for row in rows:
                columns.update(dict.fromkeys(row))
            with target.open("w", encoding="utf-8", errors="backslashreplace", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(columns))
                writer.writeheader()
                for row in rows:
                    writer.writerow({k: _cell(v) for k, v in row.items()})
        else:
            raise ValueError(f"export_failures() writes .csv or .jsonl, not {target.suffix!r}")
        return len(rows)


def _drop_tracebacks(error: BaseException | None) -> None:
    # A chunk-wide error's traceback holds the flow's frames, and they the whole chunk
    # of rows: kept with a failure, it would keep every row of that chunk alive.
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        error = error.__cause__ or error.__context__


def _failure_row(result: UpsertResult) -> dict[str, Any]:
    row: dict[str, Any] = {
        "_row": result.row,
        "_outcome": result.outcome.value,
        "_reason": result.reason or (str(result.error) if result.error else ""),
    }
    for name, value in (result.source or {}).items():
        if name not in row:
            row[str(name)] = value
    return row


def _cell(value: Any) -> Any:
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return json.dumps(_plain(value), ensure_ascii=False)
    return value


def _plain(value: Any, seen: frozenset[int] = frozenset()) -> Any:
    """``value`` as JSON-ready data: string keys, no cycles, anything else as text."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if id(value) in seen:
        return "<cycle>"
    inner = seen | {id(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v, inner) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v, inner) for v in value]
    return str(value)


def read_failures(path: str | Path) -> Iterator[dict[str, Any]]:
    """The source records in a file written by :meth:`SyncReport.export_failures`."""
    source = Path(path)
    with source.open(encoding="utf-8", newline="") as fh:
        lines: Iterable[Mapping[str, Any]]
        if source.suffix.lower() == ".jsonl":
            lines = (json.loads(line) for line in fh if line.strip())
        else:
            lines = csv.DictReader(fh)
        for line in lines:
            yield {k: v for k, v in line.items() if k not in _META}


class SyncFailuresError(KustomerError):
    """Raised by :meth:`SyncReport.raise_for_failures`; carries the report."""

    def __init__(self, report: SyncReport) -> None:
        self.report = report
        super().__init__(f"{report.failed_rows} of {report.rows} rows failed\n{report.summary()}")


class SyncCancelledError(KustomerError):
    """The sync was interrupted (Ctrl-C); ``report`` says what was written."""

    def __init__(self, report: SyncReport) -> None:
        self.report = report
        super().__init__(f"sync cancelled\n{report.summary()}")
