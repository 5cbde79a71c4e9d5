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
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
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
from ..upsert.batch import DEFAULT_MAX_BODY_BYTES, ChunkContext, Row, chunk_flow
from ..upsert.kinds import ObjectKind
from ..upsert.readback import WritePolicy
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
    concurrency: int = 8
    bulk_size: int = 100
    on_progress: ProgressCallback | None = None
    total: int | None = None
    report: SyncReport | None = None
    policy: WritePolicy = attrs.field(factory=WritePolicy)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    def __attrs_post_init__(self) -> None:
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
                self._schema.check(custom.keys())
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
    if isinstance(source, Mapping):
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
        counted = [r for r in results
                   if r.row is not None and self._open.pop(r.row, None) is not None]
        self._count(counted)
        return counted

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


@contextlib.contextmanager
def stream(
    client: KustomerClient, kind: ObjectKind, rows: Any, options: SyncOptions,
    report_sink: Callable[[SyncReport], None] | None = None,
) -> Iterator[Iterator[UpsertResult]]:
    """Run a sync on threads; the context value yields each row's result as it finishes."""
    run = _Run(client._core, client._caches, kind, options, count_hint(rows))
    if report_sink is not None:
        report_sink(run.report)
    schema = None
    if options.validate_fields:
        schema = client._run(_flows.schema_flow(client._core, client._caches, kind.name))
    preparer = _Preparer(run.ctx, options, schema)
    cancel = threading.Event()
    run.when_stopped(cancel.set)
    pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="kustomer-sync")
    pending: set[Future[list[UpsertResult]]] = set()
    completed = False

    def run_chunk(chunk: list[Row]) -> list[UpsertResult]:
        return run_sync(chunk_flow(run.ctx, chunk), client._http, client._core.clock, cancel)

    def harvest() -> Iterator[UpsertResult]:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            pending.discard(future)
            counted = run.record(future.result())
            if run.stopping:
                return
            yield from counted

    def results() -> Generator[UpsertResult, None, None]:
        # Only this thread counts results and calls on_progress; a stop (an exception
        # from on_progress) is seen here before the next row is read or chunk started.
        nonlocal completed
        for item in _chunks(run, preparer, iter_rows(rows), options.chunk_size):
            if isinstance(item, UpsertResult):
                if not run.stopping:
                    yield item
            else:
                while len(pending) >= options.concurrency and not run.stopping:
                    yield from harvest()
                if run.stopping:
                    break
                if run.ctx.fatal is not None:
                    failed = run.record(_fail_fatal(run.ctx, item))
                    if not run.stopping:
                        yield from failed
                    break
                # Each chunk runs in a copy of this context: capture_responses() sees it.
                pending.add(pool.submit(contextvars.copy_context().run, run_chunk, item))
            if run.stopping:
                break
        while pending and not run.stopping:
            yield from harvest()
        run.reraise()
        completed = not run.stopping

    iterator: Generator[UpsertResult, None, None] = results()
    try:
        yield iterator
    finally:
        iterator.close()
        if not completed:
            run.stop()  # left early (a break, Ctrl-C, an error): cancel the chunks in flight
        cancel.set()
        pool.shutdown(wait=True, cancel_futures=True)
        # No flow runs any more: count what the last ones did, then every row still open.
        for future in pending:
            if not future.cancelled() and future.exception() is None:
                run.record(future.result())
        pending.clear()
        run.close_out()
        preparer.close()
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
    """Run a sync on an anyio task group; the context value yields each row's result."""
    run = _Run(client._core, client._caches, kind, options, count_hint(rows))
    if report_sink is not None:
        report_sink(run.report)
    schema = None
    if options.validate_fields:
        schema = await client._run(_flows.schema_flow(client._core, client._caches, kind.name))
    preparer = _Preparer(run.ctx, options, schema)
    send, receive = anyio.create_memory_object_stream[list[UpsertResult]](options.concurrency)
    slots = anyio.Semaphore(options.concurrency)
    finished = False

    async def emit(results: list[UpsertResult]) -> None:
        # Counted already: a reader that left, or a sync that is stopping, may miss them.
        if results and not run.stopping:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(results)

    async def run_chunk(chunk: list[Row]) -> None:
        try:
            batch = await run_async(chunk_flow(run.ctx, chunk), client._http,
                                    client._core.clock, salvage=run.salvage)
            await emit(run.record(batch))
        finally:
            slots.release()

    async def produce() -> None:
        nonlocal finished
        async with send, anyio.create_task_group() as chunks:
            try:
                await read_rows(chunks)
            except Exception as exc:  # reading the rows (user code) failed: stop the sync
                run.stop(exc)
        finished = True

    async def read_rows(chunks: anyio.abc.TaskGroup) -> None:
        # Rows go into the ledger as they are read: a partial chunk or one
        # waiting for a slot needs no bookkeeping here when cancelled.
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
                    if not await _start(chunks, chunk):
                        return
            if run.stopping:
                return
        if batch:
            await _start(chunks, batch)

    async def _start(group: anyio.abc.TaskGroup, chunk: list[Row]) -> bool:
        await slots.acquire()
        if run.stopping or run.ctx.fatal is not None:
            slots.release()
            if run.ctx.fatal is not None:
                await emit(run.record(_fail_fatal(run.ctx, chunk)))
            return False
        group.start_soon(run_chunk, chunk)
        return True

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
