"""``SyncReport``: one outcome per row read, the failures, and what it cost."""

from __future__ import annotations

import csv
import html
import importlib
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from ..errors import KustomerError
from ..results import FAILURE_OUTCOMES, Outcome, UpsertResult

__all__ = ["DEFAULT_MAX_FAILURES", "SyncCancelledError", "SyncFailuresError", "SyncReport",
           "read_failures"]

_META = ("_row", "_outcome", "_reason")

#: The columns of :meth:`SyncReport.to_pandas` / :meth:`SyncReport.to_polars`, in order.
ROW_COLUMNS = ("row", "outcome", "key", "key_value", "id", "reason", "fields_written", "candidates")

#: Below these a rows-per-minute figure is noise (a 3-row sync in 9 ms is not "20,000 rows/min").
_MIN_RATE_ROWS = 100
_MIN_RATE_SECONDS = 1.0

#: Failures listed by ``summary()`` and the notebook display.
_SHOWN_FAILURES = 5

Keep = Literal["failures", "all"]


def plural(count: int, word: str) -> str:
    """``"1 row"``, ``"2 rows"``, ``"1,000 rows"``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"

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
        keep: ``"failures"`` (the default: memory stays flat whatever the
            input size) or ``"all"``: :attr:`row_results` then holds every row's
            result, for :meth:`to_pandas` and audits.
        simulated: True when the client ran on a clock other than the system
            clock (an emulator's virtual or scaled clock), so :attr:`duration`
            is simulated seconds, not wall-clock ones.
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
    keep: Keep = attrs.field(default="failures")
    simulated: bool = False
    #: With a state store: rows the state knows that this run's input no longer
    #: has (never deleted: Kustomer's Update or Create), and the first of their keys.
    gone_from_source: int = 0
    gone_keys: list[str] = attrs.field(factory=list)
    max_failures: int | None = DEFAULT_MAX_FAILURES
    failures_dropped: int = 0
    _kept: list[UpsertResult] = attrs.field(factory=list, init=False, repr=False)
    _lock: threading.Lock = attrs.field(factory=threading.Lock, repr=False, eq=False)

    @keep.validator
    def _check_keep(self, _attribute: Any, value: Any) -> None:
        if value not in ("failures", "all"):
            raise ValueError(f"keep must be 'failures' or 'all', not {value!r}")

    def add(self, result: UpsertResult) -> None:
        """Count one row's result (thread-safe); kept when it failed, or always with ``keep="all"``."""
        with self._lock:
            self.counts[result.outcome] += 1
            failed = result.outcome in FAILURE_OUTCOMES
            if failed:
                if self.max_failures is not None and len(self.failures) >= self.max_failures:
                    self.failures_dropped += 1
                    return
                _drop_tracebacks(result.error)
                self.failures.append(result)
            if self.keep == "all":
                # The source record stays only on failures (to export them): a kept
                # success costs its id and outcome, not a copy of the input row.
                self._kept.append(result if failed or result.source is None
                                  else attrs.evolve(result, source=None))

    @property
    def row_results(self) -> list[UpsertResult]:
        """Every row's result in row order with ``keep="all"``; otherwise the failures."""
        kept = self._kept if self.keep == "all" else self.failures
        return sorted(kept, key=lambda r: -1 if r.row is None else r.row)

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
        """Throughput over the whole sync (see :meth:`rate_text` for when it means anything)."""
        return self.rows / self.duration * 60 if self.duration > 0 else 0.0

    def duration_text(self) -> str:
        """The duration for a person, e.g. ``"2.4 s"`` or ``"95.0 s simulated"``."""
        return f"{self.duration:,.1f} s{' simulated' if self.simulated else ''}"

    def rate_text(self) -> str:
        """Rows per minute for a person, or ``"—"`` for runs too small to measure.

        Under 100 rows or 1 second the figure says more about timer
        resolution than about throughput, so it is not shown.
        """
        if self.rows < _MIN_RATE_ROWS or self.duration < _MIN_RATE_SECONDS:
            return "—"
        return f"{self.rows_per_minute:,.0f} rows/min"

    @property
    def requests_per_row(self) -> float:
        """HTTP requests spent per row read."""
        return self.requests / self.rows if self.rows else 0.0

    def summary(self) -> str:
        """A few lines for a person: counts, cost, and the first failures."""
        counts = ", ".join(f"{o.value} {n:,}" for o, n in self.counts.items() if n)
        written = " (would be written)" if self.dry_run else ""
        rate = self.rate_text()
        lines = [
            f"{self._title()}: {plural(self.rows, 'row')}{written}: {counts or 'none'}",
            f"{plural(self.requests, 'request')} ({self.requests_per_row:.3f}/row), "
            f"{self.duration_text()}" + ("" if rate == "—" else f", {rate}"),
        ]
        if self.cancelled:
            lines.append("CANCELLED: rows not completed are counted as failed")
        if self.gone_from_source:
            shown = ", ".join(self.gone_keys[:5])
            lines.append(f"{plural(self.gone_from_source, 'row')} known to the state are gone from "
                         f"the source (not deleted in Kustomer): {shown}"
                         + (", ..." if self.gone_from_source > 5 else ""))
        lines.extend(f"note: {note}" for note in self.notes)
        first = self._first_failures()
        for failure in first:
            lines.append(f"  row {failure.row}: {failure.describe()}")
        if len(self.failures) > len(first):
            lines.append(f"  ... and {plural(len(self.failures) - len(first), 'more failure')}")
        if self.failures_dropped:
            lines.append(f"  {plural(self.failures_dropped, 'more failed row')} counted but not "
                         f"kept (max_failures={self.max_failures})")
        return "\n".join(lines)

    def _title(self) -> str:
        return (f"{self.object_type} sync on {self.key} "
                f"({self.mode}{', dry run' if self.dry_run else ''})")

    def _first_failures(self) -> list[UpsertResult]:
        return sorted(self.failures, key=lambda f: -1 if f.row is None else f.row)[:_SHOWN_FAILURES]

    def __str__(self) -> str:
        return self.summary()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display: the summary, not the attrs repr."""
        printer.text("SyncReport(...)" if cycle else self.summary())

    def _repr_html_(self) -> str:
        """Jupyter's display: outcome counts, cost, and the first failures as a compact table."""
        esc = html.escape
        status = "CANCELLED" if self.cancelled else ("ok" if self.ok else
                                                    f"{plural(self.failed_rows, 'row')} failed")
        written = " (would be written)" if self.dry_run else ""
        parts = [
            '<div class="kustomer-sync-report">',
            f"<strong>{esc(self._title())}</strong>: {esc(plural(self.rows, 'row'))}{esc(written)}, "
            f"{esc(status)}",
            '<table style="text-align:left"><thead><tr><th>outcome</th><th>rows</th></tr></thead><tbody>',
        ]
        for outcome, count in self.counts.items():
            if count:
                parts.append(f"<tr><td>{esc(outcome.value)}</td><td>{count:,}</td></tr>")
        parts.append("</tbody></table>")
        parts.append(
            "<table style=\"text-align:left\"><tbody>"
            f"<tr><th>requests</th><td>{self.requests:,} ({self.requests_per_row:.3f}/row)</td></tr>"
            f"<tr><th>duration</th><td>{esc(self.duration_text())}</td></tr>"
            f"<tr><th>rate</th><td>{esc(self.rate_text())}</td></tr>"
            "</tbody></table>"
        )
        parts.extend(f"<p>note: {esc(note)}</p>" for note in self.notes)
        first = self._first_failures()
        if first:
            parts.append('<table style="text-align:left"><thead><tr><th>row</th><th>outcome</th>'
                         "<th>key</th><th>reason</th></tr></thead><tbody>")
            for failure in first:
                key = "" if failure.key_value is None else f"{failure.key}={failure.key_value}"
                reason = failure.reason or (str(failure.error) if failure.error else "")
                parts.append(f"<tr><td>{esc(str(failure.row))}</td><td>{esc(failure.outcome.value)}</td>"
                             f"<td>{esc(key)}</td><td>{esc(reason)}</td></tr>")
            parts.append("</tbody></table>")
            if len(self.failures) > len(first):
                parts.append(f"<p>... and {esc(plural(len(self.failures) - len(first), 'more failure'))}"
                             " (<code>report.failures</code>, <code>report.to_pandas()</code>)</p>")
        parts.append("</div>")
        return "".join(parts)

    def _table(self) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = {name: [] for name in ROW_COLUMNS}
        for result in self.row_results:
            columns["row"].append(result.row)
            columns["outcome"].append(result.outcome.value)
            columns["key"].append(result.key)
            columns["key_value"].append(result.key_value)
            columns["id"].append(result.id)
            columns["reason"].append(result.reason or (str(result.error) if result.error else None))
            columns["fields_written"].append(",".join(result.fields_written))
            columns["candidates"].append(",".join(result.candidates))
        return columns

    def to_pandas(self) -> Any:
        """The kept rows (:attr:`row_results`) as a ``pandas.DataFrame``, one line per row.

        Columns: ``row``, ``outcome``, ``key``, ``key_value``, ``id``,
        ``reason``, ``fields_written`` and ``candidates`` (comma-separated).
        Pass ``keep="all"`` to ``upsert_many`` to get every row, not just the
        failures. Needs pandas (``pip install 'kustomer-activations[pandas]'``).
        """
        try:
            # Imported by name: pandas is an optional extra (and has no stubs by default).
            pandas = importlib.import_module("pandas")
        except ImportError:
            raise ImportError(
                "SyncReport.to_pandas() needs pandas: pip install 'kustomer-activations[pandas]'"
            ) from None
        return pandas.DataFrame(self._table(), columns=list(ROW_COLUMNS))

    def to_polars(self) -> Any:
        """The kept rows as a ``polars.DataFrame`` (the columns of :meth:`to_pandas`).

        Needs polars (``pip install 'kustomer-activations[polars]'``).
        """
        try:
            polars = importlib.import_module("polars")
        except ImportError:
            raise ImportError(
                "SyncReport.to_polars() needs polars: pip install 'kustomer-activations[polars]'"
            ) from None
        schema = {name: (polars.Int64 if name == "row" else polars.Utf8) for name in ROW_COLUMNS}
        return polars.DataFrame(self._table(), schema=schema)

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
            "simulated": self.simulated,
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
