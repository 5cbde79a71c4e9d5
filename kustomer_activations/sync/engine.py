"""The batch engine's drivers: read rows, prepare them, run chunks concurrently.

Rows are mapped and validated as they are read (invalid rows never reach
Kustomer), grouped into chunks, and each chunk runs as one flow
(:func:`~.chunk.chunk_flow`). The sync driver runs chunks on a small thread
pool; the async driver on an anyio task group. Both keep only
``concurrency`` chunks in flight, so memory stays flat for any input size,
and both share the client's rate budget, so they slow down before Kustomer
would answer 429.

Rows whose sync key repeats an earlier row's are reported ``invalid`` (the
first one wins): two writes to one object in one sync would race.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import queue
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs

from .._runners import run_async, run_sync
from ..errors import InvalidRecordError, KustomerError, reason_of
from ..mapping import FieldMapping
from ..models import CustomSchema, SyncKey
from ..results import Outcome, UpsertResult
from ..upsert import flows as _flows
from ..upsert.batch import (
    DEFAULT_MAX_BODY_BYTES,
    ChunkContext,
    Decided,
    Row,
    WriteBatch,
    Writer,
    decide_flow,
    job_flow,
)
from ..upsert.kinds import ObjectKind
from ..upsert.readback import WritePolicy
from .incremental import StateLink, open_store
from .keyindex import KeyIndex
from .progress import Progress, ProgressCallback
from .report import SyncCancelledError, SyncReport
from .sources import aiter_rows, count_hint, iter_rows

if TYPE_CHECKING:
    from ..client import AsyncKustomerClient, KustomerClient

__all__ = ["SyncAbortedError", "SyncOptions", "arun_many", "astream", "run_many", "stream"]


class SyncAbortedError(KustomerError):
    """The sync stopped because of an error that concerns every row (a bad key, a role).

    ``report`` accounts for every row read; ``__cause__`` is the error.
    """

    def __init__(self, report: SyncReport, cause: BaseException) -> None:
        self.report = report
        super().__init__(f"sync aborted: {cause}\n{report.summary()}")


@attrs.frozen(kw_only=True)
class SyncOptions:
    """How one batch sync runs. See ``upsert_many`` for the meaning of each option."""

    key: SyncKey
    mode: _flows.Mode = "upsert"
    mapping: FieldMapping | None = None
    dry_run: bool = False
    validate_fields: bool = True
    chunk_size: int = 500
    concurrency: int = 4
    bulk_size: int = 100
    on_progress: ProgressCallback | None = None
    total: int | None = None
    report: SyncReport | None = None
    policy: WritePolicy = attrs.field(factory=WritePolicy)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Bulk jobs submitted and not yet read, at most (and their bodies' bytes, at most).
    max_jobs_in_flight: int = 384
    max_bytes_in_flight: int = 16_000_000
    #: Seconds a partial bulk request waits for writes from later chunks.
    linger: float = 15.0
    #: Incremental syncs (docs/state.rst): a StateStore or a file path, and how to use it.
    state: Any = None
    sync_name: str = "default"
    full_resync: bool = False
    retry_failed_only: bool = False
    #: Seconds after which a row the state knows is read again (``verify_every`` days).
    verify_every: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.retry_failed_only and self.state is None:
            raise ValueError("retry_failed_only needs state= (the failed rows are in the state)")
        if self.verify_every is not None and self.verify_every <= 0:
            raise ValueError("verify_every must be positive (days)")
        if self.max_jobs_in_flight < 1 or self.max_bytes_in_flight < self.max_body_bytes:
            raise ValueError("max_jobs_in_flight must be >= 1 and max_bytes_in_flight "
                             ">= max_body_bytes")
        if self.max_body_bytes < 1_000:
            raise ValueError("max_body_bytes must be at least 1000 (Kustomer's limit is ~100 KB)")
        if not 1 <= self.bulk_size <= 100:
            raise ValueError("bulk_size must be 1 to 100 (Kustomer's bulk limit is 100 items)")
        if not 1 <= self.chunk_size <= 5000:
            raise ValueError("chunk_size must be 1 to 5000 rows")
        if not 1 <= self.concurrency <= 64:
            raise ValueError("concurrency must be 1 to 64")


class _Preparer:
    """Turns input rows into engine rows or immediate ``invalid`` results."""

    def __init__(self, ctx: ChunkContext, options: SyncOptions, schema: CustomSchema | None):
        self._ctx = ctx
        self._options = options
        self._schema = schema
        self._seen = KeyIndex()
        self._checked: tuple[str, ...] = ()

    def close(self) -> None:
        """Delete the key index's spill file, if any."""
        self._seen.close()

    def prepare(self, index: int, source: Any) -> Row | UpsertResult:
        ctx, key = self._ctx, self._options.key
        key_value: str | None = None
        try:
            mapped = _flows.prepare_record(ctx.caches, ctx.kind, source, self._options.mapping)
            raw, key_value = _flows.key_of(key, mapped)
            custom = mapped.payload.get("custom")
            if self._schema is not None and custom:
                names = tuple(custom)
                if names != self._checked:  # rows of one mapping repeat the same names
                    self._schema.check(names)
                    self._checked = names
            first = self._seen.first_row(key_value, index)
            if first != index:
                raise InvalidRecordError(
                    f"duplicate sync key in the input: row {first} has the same "
                    f"{key.label}; the first row wins", field=key.label, value=key_value,
                )
            return Row(index=index, source=_as_mapping(source), mapped=mapped,
                       key_value=key_value, raw_key=_flows.search_value(key, raw))
        except InvalidRecordError as exc:
            error = exc.for_record(index)
            return UpsertResult(
                outcome=Outcome.INVALID, object_type=ctx.kind.name, key=key.label,
                key_value=key_value, row=index, source=_as_mapping(source), error=error,
                reason=reason_of(error),
            )


def _as_mapping(source: Any) -> Mapping[str, Any]:
    if type(source) is dict or isinstance(source, Mapping):
        return source
    to_payload = getattr(source, "to_payload", None)
    if callable(to_payload):
        payload: Mapping[str, Any] = to_payload()
        return payload
    return {"value": repr(source)}


def _chunks(
    run: _Run, preparer: _Preparer, rows: Iterator[Any], size: int,
) -> Iterator[list[Row] | UpsertResult]:
    """Read the rows one at a time, each into ``run``'s ledger at once (:meth:`_Run.read`).

    The caller checks ``run.stopping`` before asking for the next item, so no
    row is read once the sync is told to stop; a partial chunk left here is
    still in the ledger and is counted when the sync closes out. An exception
    from the source (or from preparing a row) stops the sync like one from
    ``on_progress``: it is re-raised once every row read is counted.
    """
    batch: list[Row] = []
    try:
        for index, source in enumerate(rows):
            item = run.read(preparer, index, source)
            if isinstance(item, UpsertResult):
                yield item
                continue
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
    except Exception as exc:  # reading the rows (user code) failed: stop the sync
        run.stop(exc)
        return
    if batch:
        yield batch


def _not_sent(ctx: ChunkContext, rows: list[Row], reason: str) -> list[UpsertResult]:
    """FAILED results for rows that were read but never sent."""
    return [
        UpsertResult(outcome=Outcome.FAILED, object_type=ctx.kind.name, key=ctx.key.label,
                     key_value=r.key_value, row=r.index, source=r.source, reason=reason)
        for r in rows
    ]


def _cancelled(ctx: ChunkContext, rows: Iterable[Row]) -> list[UpsertResult]:
    """Each row's result when the sync stops with it unfinished.

    A row its flow settled keeps that result (a confirmed write stays
    ``created`` / ``updated``); any other row fails, saying whether its write
    was sent (and so may have happened) or not.
    """
    results: list[UpsertResult] = []
    for row in rows:
        if row.result is not None:
            results.append(row.result)
            continue
        reason = ("cancelled after sending: it may have been written" if row.sent
                  else "cancelled before sending: not written")
        results.extend(_not_sent(ctx, [row], reason))
    return results


class _Run:
    """Bookkeeping shared by both drivers: the ledger of rows read, the report, progress.

    **Every row read is counted exactly once.** Each row pulled from the
    source goes through :meth:`read` before anything else happens: a row
    refused locally is counted there; any other row is *open* until
    :meth:`record` counts the result a flow gave it. When the sync ends, and
    no flow runs any more, :meth:`close_out` counts every row still open (a
    partial chunk, a chunk never started, a flow that crashed or was
    cancelled) with :func:`_cancelled`. A result for a row that is not open is
    ignored, so no row can be counted twice.

    **One boundary around user code.** ``on_progress`` is only ever called by
    :meth:`_progress`, and nothing it raises escapes there: the exception is
    kept as :attr:`error` and :meth:`stop` cancels the sync (no new row is
    read, no new chunk starts, flows in flight are cancelled at their next
    step). Once the sync is stopping, ``on_progress`` is never called again,
    so the cleanup cannot be interrupted by it. The drivers re-raise
    :attr:`error` when every row is accounted for (:meth:`reraise`). An
    exception from the other user code the engine runs, the row source, takes
    the same way.
    """

    def __init__(self, core: Any, caches: Any, kind: ObjectKind, options: SyncOptions, total: int | None):
        options.key.check_supported(kind.name)  # e.g. no email key for companies: fail before I/O
        self.options = options
        self.ctx = ChunkContext(
            core=core, caches=caches, kind=kind, key=options.key, mode=options.mode,
            dry_run=options.dry_run, bulk_size=options.bulk_size, policy=options.policy,
            max_body_bytes=options.max_body_bytes,
        )
        self.report = options.report if options.report is not None else SyncReport()
        self.report.notes = self.ctx.notes
        if self.report.rows:
            raise ValueError("report= must be a fresh SyncReport()")
        self.report.object_type = kind.name
        self.report.key = options.key.label
        self.report.mode = options.mode
        self.report.dry_run = options.dry_run
        self.total = options.total if options.total is not None else total
        self._started = core.clock.now()
        self._sent_before = core.pacer.sent
        self._open: dict[int, Row] = {}
        self._on_stop: Callable[[], None] | None = None
        #: Set once the sync is cancelled: nothing new starts and on_progress is not called.
        self.stopping = False
        #: What on_progress or the source raised, if anything; re-raised once every row is counted.
        self.error: BaseException | None = None
        #: The state store's run, when the sync is incremental (see :mod:`.incremental`).
        self.link: StateLink | None = None
        self._for_state: list[tuple[UpsertResult, Row | None]] = []

    # -- the ledger ---------------------------------------------------------------

    def read(self, preparer: _Preparer, index: int, source: Any) -> Row | UpsertResult:
        """Prepare a row just pulled from the source and :meth:`admit` it.

        Should preparing raise (a bug, not a bad row), the row is counted as
        ``failed`` (never sent) before the error stops the sync (see :meth:`stop`).
        """
        try:
            item = preparer.prepare(index, source)
        except BaseException as exc:
            self._count([UpsertResult(
                outcome=Outcome.FAILED, object_type=self.ctx.kind.name, key=self.ctx.key.label,
                row=index, source=_as_mapping(source),
                reason=f"not written: {type(exc).__name__} while preparing the row: {exc}")])
            raise
        return self.admit(item)

    def admit(self, item: Row | UpsertResult) -> Row | UpsertResult:
        """Take a row just read: count it if it was refused locally, else hold it open."""
        if isinstance(item, UpsertResult):
            self._count([item])
        else:
            self._open[item.index] = item
        return item

    def record(self, results: Iterable[UpsertResult]) -> list[UpsertResult]:
        """Count the results of open rows; returns those counted (others are ignored)."""
        counted: list[UpsertResult] = []
        for result in results:
            row = self._open.pop(result.row, None) if result.row is not None else None
            if row is None:
                continue
            counted.append(result)
            # Rows the state settled (no hash to record) are not held: with most rows
            # unchanged they would pile up here until the next flush, or the sync's end.
            if self.link is not None and row.state_hash is not None:
                self._for_state.append((result, row))
        self._count(counted)
        return counted

    def take_state(self) -> list[tuple[UpsertResult, Row | None]]:
        """The rows counted since the last call, for the state store."""
        taken, self._for_state = self._for_state, []
        return taken

    def salvage(self, results: list[UpsertResult]) -> None:
        """Count what a flow cancelled part-way says it did (the sync is stopping)."""
        self.stop()
        self.record(results)

    def close_out(self) -> None:
        """Count every row still open; call only when no flow runs any more."""
        rows = list(self._open.values())
        if rows:
            self.stopping = True
            self.report.cancelled = True
            self.record(_cancelled(self.ctx, rows))
        self._touch()

    def _count(self, results: list[UpsertResult]) -> None:
        for result in results:
            self.report.add(result)
        self._touch()
        if results:
            self._progress()

    # -- stopping, and the one place user code runs -------------------------------

    def when_stopped(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` (which must not raise) when the sync is told to stop."""
        self._on_stop = hook

    def stop(self, error: BaseException | None = None) -> None:
        """Cancel the sync (idempotent); ``error`` is what user code raised, if it did."""
        if error is not None and self.error is None:
            self.error = error
        if self.stopping:
            return
        self.stopping = True
        self.report.cancelled = True
        if self._on_stop is not None:
            self._on_stop()

    def _progress(self) -> None:
        callback = self.options.on_progress
        if callback is None or self.stopping:
            return
        try:
            callback(Progress(done=self.report.rows, total=self.total,
                              elapsed=self.report.duration, requests=self.report.requests,
                              counts=dict(self.report.counts)))
        except BaseException as exc:  # the boundary: KeyboardInterrupt included
            self.stop(exc)

    def reraise(self) -> None:
        """Raise what user code raised, if it did, with the report attached as ``.report``."""
        error = self.error
        if error is None:
            return
        with contextlib.suppress(AttributeError, TypeError):
            error.report = self.report  # type: ignore[attr-defined]
        note = ("kustomer_activations: this stopped the sync; its report "
                "(every row read) is attached as .report")
        add_note = getattr(error, "add_note", None)  # Python 3.11+
        if callable(add_note) and note not in getattr(error, "__notes__", ()):
            add_note(note)
        raise error

    def _touch(self) -> None:
        core = self.ctx.core
        self.report.duration = core.clock.now() - self._started
        self.report.requests = core.pacer.sent - self._sent_before

    def finish(self) -> SyncReport:
        self._touch()
        if self.ctx.fatal is not None:
            raise SyncAbortedError(self.report, self.ctx.fatal) from self.ctx.fatal
        return self.report


def _open_link(run: _Run, kind: ObjectKind) -> StateLink | None:
    """Open the state store's run for this sync (blocking: the async driver runs it in a thread)."""
    options = run.options
    if options.state is None:
        return None
    run.ctx.snapshots = True
    store, close = open_store(options.state)
    try:
        return StateLink(
            store, sync=options.sync_name, object_type=kind.name, key_label=options.key.label,
            mapping=options.mapping,
            options={"mode": options.mode, "custom_updates": options.policy.custom_updates,
                     "company_updates": options.policy.company_updates},
            dry_run=options.dry_run, full_resync=options.full_resync,
            retry_failed_only=options.retry_failed_only, verify_every=options.verify_every,
            fresh_reads=options.policy.fresh_reads, close_store=close)
    except BaseException:
        if close:
            store.close()
        raise


def _admit(run: _Run, chunk: list[Row]) -> tuple[list[Row], list[UpsertResult]]:
    if run.link is None:
        return chunk, []
    return run.link.admit(chunk, run.ctx.kind.name, run.ctx.key.label)


def _flush_state(run: _Run) -> None:
    if run.link is not None:
        run.link.outcomes(run.take_state())


def _end_state(run: _Run, success: bool) -> None:
    if run.link is not None:
        _flush_state(run)
        run.link.finish(run.report, success)


#: Jobs a sync keeps in flight whatever their duration, and the submission rate the
#: limit for slower jobs is sized for (see :meth:`_Pipeline.job_limit`).
MIN_JOBS_IN_FLIGHT = 16
#: Batches launched but still waiting for a slot of the rate budget, at most.
MAX_UNSENT = 8
JOBS_PER_SECOND = 8


class _Pipeline:
    """The writes between deciding and collecting: shared by both drivers, no I/O.

    Chunks hand their writes to one :class:`~kustomer_activations.upsert.batch.Writer`,
    which fills bulk requests across chunks; full batches wait in ``ready``
    until the jobs in flight (by count and by bytes) leave room. While a
    batch waits there, no new chunk is decided, so memory stays bounded
    however slow Kustomer's jobs are.
    """

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.writer = Writer(run.ctx, linger=run.options.linger)
        self.ready: deque[WriteBatch] = deque()
        self.jobs = 0
        self.bytes = 0
        #: Batches launched and not done, to tell those still waiting to be sent.
        self._launched: list[WriteBatch] = []
        self._launched_at: dict[int, float] = {}
        #: Batches launched but not yet sent (waiting for a slot of the rate budget), at most:
        #: when the budget, not Kustomer's jobs, is the limit, rows wait in no queue but this.
        self.max_unsent = MAX_UNSENT

    def decided(self, decided: Decided) -> list[UpsertResult]:
        """Take a chunk's decision; returns its rows settled already."""
        now = self.run.ctx.core.clock.now()
        self.ready.extend(self.writer.add("create", decided.creates, now))
        self.ready.extend(self.writer.add("update", decided.updates, now))
        return decided.settled

    def tick(self) -> None:
        """Release batches whose writes have waited long enough."""
        self.ready.extend(self.writer.due(self.run.ctx.core.clock.now()))

    def drain(self) -> None:
        """No more chunks: every write held goes out."""
        self.ready.extend(self.writer.drain())

    def next_batch(self) -> WriteBatch | None:
        """The next batch to submit, if the jobs in flight leave room for it."""
        options = self.run.options
        if not self.ready or self.jobs >= self.job_limit():
            return None
        if self.jobs and self.bytes + self.ready[0].nbytes > options.max_bytes_in_flight:
            return None
        if sum(1 for b in self._launched if not b.writes[0].row.sent) >= self.max_unsent:
            return None
        batch = self.ready.popleft()
        self.jobs += 1
        self.bytes += batch.nbytes
        self._launched.append(batch)
        self._launched_at[id(batch)] = self.run.ctx.core.clock.now()
        return batch

    def job_limit(self) -> int:
        """Jobs in flight allowed now: as many as the budget can submit while one job runs.

        Kustomer's budget submits at most ~8 jobs a second (half of 1,000/min,
        the rest reads and searches), so a job taking ``t`` seconds needs about
        ``8 t`` in flight to keep the budget busy; more would only hold rows in
        memory. Never above ``max_jobs_in_flight``.
        """
        estimate = self.run.ctx.timing.estimate
        if self._launched_at:
            # The oldest job still running is at least that slow: grow before its
            # results are read (up to twice the estimate), so slow jobs ramp up quickly.
            age = self.run.ctx.core.clock.now() - min(self._launched_at.values())
            estimate = max(estimate, min(age, 2 * estimate))
        needed = int(estimate * JOBS_PER_SECOND) + 1
        return min(self.run.options.max_jobs_in_flight, max(MIN_JOBS_IN_FLIGHT, needed))

    def done(self, batch: WriteBatch) -> None:
        """A batch's job flow ended."""
        self.jobs -= 1
        self.bytes -= batch.nbytes
        self._launched.remove(batch)
        self._launched_at.pop(id(batch), None)

    @property
    def backlogged(self) -> bool:
        """Whether full batches wait for room: decide no new chunk until they leave."""
        return bool(self.ready)


@contextlib.contextmanager
def stream(
    client: KustomerClient, kind: ObjectKind, rows: Any, options: SyncOptions,
    report_sink: Callable[[SyncReport], None] | None = None,
) -> Iterator[Iterator[UpsertResult]]:
    """Run a sync on threads; the context value yields each row's result as it finishes.

    Chunks are decided on ``concurrency`` threads; their writes go through
    one :class:`_Pipeline`; each bulk job runs on a thread of its own from
    submission to its one read (``max_jobs_in_flight`` at most). Only the
    calling thread counts results, starts work and calls ``on_progress``.
    """
    run = _Run(client._core, client._caches, kind, options, count_hint(rows))
    if report_sink is not None:
        report_sink(run.report)
    # The state's lock first: a second run of the sync is refused before any request.
    run.link = _open_link(run, kind)
    try:
        schema = None
        if options.validate_fields:
            schema = client._run(_flows.schema_flow(client._core, client._caches, kind.name))
        if run.link is not None and run.link.settle_wait():
            # A killed run's writes may have landed moments ago: let search show them.
            client._core.clock.sleep(run.link.settle_wait())
    except BaseException:
        _end_state(run, False)
        raise
    preparer = _Preparer(run.ctx, options, schema)
    pipe = _Pipeline(run)
    cancel = threading.Event()
    run.when_stopped(cancel.set)
    deciders = ThreadPoolExecutor(options.concurrency, thread_name_prefix="kustomer-sync")
    writers = ThreadPoolExecutor(options.max_jobs_in_flight, thread_name_prefix="kustomer-job")
    decides: set[Future[Decided]] = set()
    jobs: dict[Future[list[UpsertResult]], WriteBatch] = {}
    finished: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
    completed = False

    def decide(chunk: list[Row]) -> Decided:
        return run_sync(decide_flow(run.ctx, chunk), client._http, client._core.clock, cancel)

    def write(batch: WriteBatch) -> list[UpsertResult]:
        return run_sync(job_flow(run.ctx, batch), client._http, client._core.clock, cancel)

    def launch() -> Iterator[UpsertResult]:
        while not run.stopping:
            batch = pipe.next_batch()
            if batch is None:
                return
            if run.ctx.fatal is not None:
                pipe.done(batch)
                yield from run.record(_fail_fatal(run.ctx, batch.rows))
                continue
            if run.link is not None:
                run.link.intents(batch)
            # Each flow runs in a copy of this context: capture_responses() sees it.
            job = writers.submit(contextvars.copy_context().run, write, batch)
            jobs[job] = batch
            job.add_done_callback(finished.put)

    def harvest() -> Iterator[UpsertResult]:
        done: list[Future[Any]] = []
        if decides or jobs:
            # A queue, not wait() over every future: that costs O(jobs in flight) a call.
            with contextlib.suppress(queue.Empty):
                done.append(finished.get(timeout=0.1))
                while True:
                    done.append(finished.get_nowait())
        for future in done:
            if future in decides:
                decides.discard(future)
                counted = run.record(pipe.decided(future.result()))
            else:
                pipe.done(jobs.pop(future))
                counted = run.record(future.result())
            _flush_state(run)
            if run.stopping:
                return
            yield from counted
        pipe.tick()
        yield from launch()

    def results() -> Generator[UpsertResult, None, None]:
        # Only this thread counts results and calls on_progress; a stop (an exception
        # from on_progress) is seen here before the next row is read or work started.
        nonlocal completed
        for item in _chunks(run, preparer, iter_rows(rows), options.chunk_size):
            if isinstance(item, UpsertResult):
                if not run.stopping:
                    yield item
            else:
                while ((len(decides) >= options.concurrency or pipe.backlogged)
                       and not run.stopping):
                    yield from harvest()
                if run.stopping:
                    break
                if run.ctx.fatal is not None:
                    failed = run.record(_fail_fatal(run.ctx, item))
                    if not run.stopping:
                        yield from failed
                    break
                item, settled = _admit(run, item)
                counted = run.record(settled)
                if not run.stopping:
                    yield from counted
                if item:
                    future = deciders.submit(contextvars.copy_context().run, decide, item)
                    decides.add(future)
                    future.add_done_callback(finished.put)
            if run.stopping:
                break
        while decides and not run.stopping:
            yield from harvest()
        pipe.drain()
        yield from launch()
        while (jobs or pipe.ready) and not run.stopping:
            yield from harvest()
        run.reraise()
        completed = not run.stopping

    iterator: Generator[UpsertResult, None, None] = results()
    try:
        yield iterator
    finally:
        iterator.close()
        if not completed:
            run.stop()  # left early (a break, Ctrl-C, an error): cancel the flows in flight
        cancel.set()
        deciders.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True, cancel_futures=True)
        # No flow runs any more: count what the last ones did, then every row still open.
        for future in decides:
            if not future.cancelled() and future.exception() is None:
                run.record(future.result().settled)
        for job in jobs:
            if not job.cancelled() and job.exception() is None:
                run.record(job.result())
        decides.clear()
        jobs.clear()
        run.close_out()
        preparer.close()
        _end_state(run, completed and run.error is None)
    run.finish()


def _fail_fatal(ctx: ChunkContext, rows: list[Row]) -> list[UpsertResult]:
    return _not_sent(ctx, rows, f"not sent: the sync stopped on {ctx.fatal}")


def run_many(
    client: KustomerClient, kind: ObjectKind, rows: Any, options: SyncOptions,
) -> SyncReport:
    """Run a sync to the end and return its report (the sync ``upsert_many``)."""
    holder: list[SyncReport] = []
    try:
        with stream(client, kind, rows, options, report_sink=holder.append) as results:
            for _ in results:
                pass
    except KeyboardInterrupt as exc:  # Ctrl-C, or raised by on_progress
        if not holder:
            raise
        report = holder[0]
        report.cancelled = True
        raise SyncCancelledError(report) from exc
    return holder[0]


@contextlib.asynccontextmanager
async def astream(
    client: AsyncKustomerClient, kind: ObjectKind, rows: Any, options: SyncOptions,
    report_sink: Callable[[SyncReport], None] | None = None,
) -> AsyncIterator[AsyncIterator[UpsertResult]]:
    """Run a sync on an anyio task group; the context value yields each row's result.

    The same pipeline as :func:`stream`: one coordinating task reads rows,
    starts a task per chunk to decide (``concurrency`` at most) and a task
    per bulk job, counts every result and calls ``on_progress``.
    """
    run = _Run(client._core, client._caches, kind, options, count_hint(rows))
    if report_sink is not None:
        report_sink(run.report)
    # SQLite runs in worker threads: the event loop never waits on the state file.
    # The state's lock first: a second run of the sync is refused before any request.
    run.link = await anyio.to_thread.run_sync(_open_link, run, kind)
    try:
        schema = None
        if options.validate_fields:
            schema = await client._run(_flows.schema_flow(client._core, client._caches, kind.name))
        if run.link is not None and run.link.settle_wait():
            # A killed run's writes may have landed moments ago: let search show them.
            await client._core.clock.asleep(run.link.settle_wait())
    except BaseException:
        if run.link is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_end_state, run, False)
        raise
    preparer = _Preparer(run.ctx, options, schema)
    pipe = _Pipeline(run)
    send, receive = anyio.create_memory_object_stream[list[UpsertResult]](options.concurrency)
    # Finished work, for the coordinator; unbounded, so a task never waits to report.
    done_send, done_receive = anyio.create_memory_object_stream[
        tuple[WriteBatch | None, Any]](math.inf)
    decides = 0
    finished = False

    async def emit(results: list[UpsertResult]) -> None:
        # Counted already: a reader that left, or a sync that is stopping, may miss them.
        if results and not run.stopping:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(results)

    def salvage_decided(decided: Decided) -> None:
        run.salvage(decided.settled)

    async def decide(chunk: list[Row]) -> None:
        decided = await run_async(decide_flow(run.ctx, chunk), client._http,
                                  client._core.clock, salvage=salvage_decided)
        await done_send.send((None, decided))

    async def write(batch: WriteBatch) -> None:
        results = await run_async(job_flow(run.ctx, batch), client._http,
                                  client._core.clock, salvage=run.salvage)
        await done_send.send((batch, results))

    async def launch(tasks: anyio.abc.TaskGroup) -> None:
        while not run.stopping:
            batch = pipe.next_batch()
            if batch is None:
                return
            if run.ctx.fatal is not None:
                pipe.done(batch)
                await emit(run.record(_fail_fatal(run.ctx, batch.rows)))
                continue
            if run.link is not None:
                await anyio.to_thread.run_sync(run.link.intents, batch)
            tasks.start_soon(write, batch)

    async def harvest(tasks: anyio.abc.TaskGroup) -> None:
        nonlocal decides
        done: tuple[WriteBatch | None, Any] | None = None
        # Only the wait is timed: counting, emitting and the state store must not be
        # cut short by the timeout (a result counted but never emitted is lost to the reader).
        with anyio.move_on_after(0.1):
            done = await done_receive.receive()
        if done is not None:
            batch, value = done
            if batch is None:
                decides -= 1
                counted = run.record(pipe.decided(value))
            else:
                pipe.done(batch)
                counted = run.record(value)
            if run.link is not None:
                await anyio.to_thread.run_sync(_flush_state, run)
            await emit(counted)
        pipe.tick()
        await launch(tasks)

    async def start(tasks: anyio.abc.TaskGroup, chunk: list[Row]) -> bool:
        nonlocal decides
        while (decides >= options.concurrency or pipe.backlogged) and not run.stopping:
            await harvest(tasks)
        if run.stopping:
            return False
        if run.ctx.fatal is not None:
            await emit(run.record(_fail_fatal(run.ctx, chunk)))
            return False
        if run.link is not None:
            chunk, settled = await anyio.to_thread.run_sync(_admit, run, chunk)
            await emit(run.record(settled))
            if not chunk:
                return not run.stopping
        decides += 1
        tasks.start_soon(decide, chunk)
        return True

    async def read_rows(tasks: anyio.abc.TaskGroup) -> None:
        # Rows go into the ledger as they are read: a partial chunk or one
        # waiting for room needs no bookkeeping here when cancelled.
        batch: list[Row] = []
        index = 0
        async for source in aiter_rows(rows):
            item = run.read(preparer, index, source)
            index += 1
            if isinstance(item, UpsertResult):
                await emit([item])
            else:
                batch.append(item)
                if len(batch) >= options.chunk_size:
                    chunk, batch = batch, []
                    if not await start(tasks, chunk):
                        return
            if run.stopping:
                return
        if batch and not await start(tasks, batch):
            return
        while decides and not run.stopping:
            await harvest(tasks)
        pipe.drain()
        await launch(tasks)
        while (pipe.jobs or pipe.ready) and not run.stopping:
            await harvest(tasks)

    async def produce() -> None:
        nonlocal finished
        async with send, done_send, done_receive, anyio.create_task_group() as tasks:
            try:
                await read_rows(tasks)
            except Exception as exc:  # reading the rows (user code) failed: stop the sync
                run.stop(exc)
            if run.stopping:
                tasks.cancel_scope.cancel()
        finished = True

    async def results() -> AsyncIterator[UpsertResult]:
        async with receive:
            async for batch in receive:
                for result in batch:
                    yield result

    try:
        async with anyio.create_task_group() as group:
            run.when_stopped(group.cancel_scope.cancel)
            group.start_soon(produce)
            try:
                yield results()
            finally:
                # Leaving the block before every result was read cancels the sync.
                if not finished:
                    run.stop()
                group.cancel_scope.cancel()
    finally:
        # No task runs any more (however the block was left): count each open row once.
        run.close_out()
        preparer.close()
        if run.link is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_end_state, run, finished and run.error is None
                                               and not run.stopping)
    run.reraise()
    run.finish()


async def arun_many(
    client: AsyncKustomerClient, kind: ObjectKind, rows: Any, options: SyncOptions,
) -> SyncReport:
    """Run a sync to the end and return its report (the async ``upsert_many``)."""
    holder: list[SyncReport] = []
    try:
        async with astream(client, kind, rows, options, report_sink=holder.append) as results:
            async for _ in results:
                pass
    except KeyboardInterrupt as exc:  # raised by on_progress: as with the sync client
        if not holder:
            raise
        holder[0].cancelled = True
        raise SyncCancelledError(holder[0]) from exc
    except anyio.get_cancelled_exc_class():
        if holder:
            holder[0].cancelled = True
        raise
    return holder[0]
