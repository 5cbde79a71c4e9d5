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
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import attrs

from .._runners import run_async, run_sync
from ..errors import InvalidRecordError, KustomerError, reason_of
from ..mapping import FieldMapping
from ..models import CustomSchema, SyncKey
from ..resources import _flows
from ..resources._kinds import ObjectKind
from ..results import Outcome, UpsertResult
from .chunk import ChunkContext, Row, chunk_flow
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

    def __attrs_post_init__(self) -> None:
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
    preparer: _Preparer, rows: Iterator[Any], size: int,
) -> Iterator[list[Row] | UpsertResult]:
    batch: list[Row] = []
    for index, source in enumerate(rows):
        item = preparer.prepare(index, source)
        if isinstance(item, UpsertResult):
            yield item
            continue
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _not_sent(ctx: ChunkContext, rows: list[Row], reason: str) -> list[UpsertResult]:
    """FAILED results for rows that were read but never sent."""
    return [
        UpsertResult(outcome=Outcome.FAILED, object_type=ctx.kind.name, key=ctx.key.label,
                     key_value=r.key_value, row=r.index, source=r.source, reason=reason)
        for r in rows
    ]


def _cancelled(ctx: ChunkContext, rows: list[Row]) -> list[UpsertResult]:
    return _not_sent(ctx, rows, "cancelled before sending: not written")


class _Run:
    """Bookkeeping shared by both drivers: report, progress, timing, request count."""

    def __init__(self, core: Any, caches: Any, kind: ObjectKind, options: SyncOptions, total: int | None):
        options.key.check_supported(kind.name)  # e.g. no email key for companies: fail before I/O
        self.options = options
        self.ctx = ChunkContext(
            core=core, caches=caches, kind=kind, key=options.key, mode=options.mode,
            dry_run=options.dry_run, bulk_size=options.bulk_size,
        )
        self.report = options.report if options.report is not None else SyncReport()
        if self.report.rows:
            raise ValueError("report= must be a fresh SyncReport()")
        self.report.object_type = kind.name
        self.report.key = options.key.label
        self.report.mode = options.mode
        self.report.dry_run = options.dry_run
        self.total = options.total if options.total is not None else total
        self._started = core.clock.now()
        self._sent_before = core.pacer.sent

    def add(self, results: list[UpsertResult]) -> None:
        for result in results:
            self.report.add(result)
        self._touch()
        callback = self.options.on_progress
        if callback is not None and results:
            callback(Progress(done=self.report.rows, total=self.total,
                              elapsed=self.report.duration, requests=self.report.requests,
                              counts=dict(self.report.counts)))

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
    pool = ThreadPoolExecutor(options.concurrency, thread_name_prefix="kustomer-sync")

    def run_chunk(chunk: list[Row]) -> list[UpsertResult]:
        return run_sync(chunk_flow(run.ctx, chunk), client._http, client._core.clock, cancel)

    def results() -> Generator[UpsertResult, None, None]:
        pending: dict[Future[list[UpsertResult]], list[Row]] = {}
        waiting: list[Row] | None = None

        def harvest() -> Iterator[UpsertResult]:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                pending.pop(future)
                batch = future.result()
                run.add(batch)
                yield from batch

        try:
            for item in _chunks(preparer, iter_rows(rows), options.chunk_size):
                if isinstance(item, UpsertResult):
                    run.add([item])
                    yield item
                    continue
                waiting = item
                while len(pending) >= options.concurrency:
                    yield from harvest()
                if run.ctx.fatal is not None:
                    run.add(_fail_fatal(run.ctx, item))
                    waiting = None
                    break
                # Each chunk runs in a copy of this context: capture_responses() sees it.
                pending[pool.submit(contextvars.copy_context().run, run_chunk, item)] = item
                waiting = None
            while pending:
                yield from harvest()
        except BaseException:
            cancel.set()
            run.report.cancelled = True
            for future, chunk in list(pending.items()):
                try:
                    run.add(future.result())
                except BaseException:
                    run.add(_cancelled(run.ctx, chunk))
            pending.clear()
            if waiting:
                run.add(_cancelled(run.ctx, waiting))
            raise

    iterator: Generator[UpsertResult, None, None] = results()
    try:
        yield iterator
    finally:
        iterator.close()
        cancel.set()
        pool.shutdown(wait=True)
        run._touch()
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
    except KeyboardInterrupt as exc:
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

    async def run_chunk(chunk: list[Row]) -> None:
        try:
            batch = await run_async(chunk_flow(run.ctx, chunk), client._http,
                                    client._core.clock, salvage=run.add)
            run.add(batch)
            await send.send(batch)
        finally:
            slots.release()

    async def produce() -> None:
        nonlocal finished
        waiting: list[Row] = []
        async with send:
            try:
                async with anyio.create_task_group() as chunks:
                    batch: list[Row] = []
                    index = 0
                    async for source in aiter_rows(rows):
                        item = preparer.prepare(index, source)
                        index += 1
                        if isinstance(item, UpsertResult):
                            run.add([item])
                            await send.send([item])
                            continue
                        batch.append(item)
                        if len(batch) >= options.chunk_size:
                            waiting, batch = batch, []
                            if not await _start(chunks, waiting):
                                break
                            waiting = []
                    if batch and run.ctx.fatal is None:
                        waiting = batch
                        await _start(chunks, batch)
                        waiting = []
                finished = True
            except anyio.get_cancelled_exc_class():
                run.report.cancelled = True
                run.add(_cancelled(run.ctx, waiting))
                raise

    async def _start(group: anyio.abc.TaskGroup, chunk: list[Row]) -> bool:
        await slots.acquire()
        if run.ctx.fatal is not None:
            slots.release()
            run.add(_fail_fatal(run.ctx, chunk))
            return False
        group.start_soon(run_chunk, chunk)
        return True

    async def results() -> AsyncIterator[UpsertResult]:
        async with receive:
            async for batch in receive:
                for result in batch:
                    yield result

    async with anyio.create_task_group() as group:
        group.start_soon(produce)
        try:
            yield results()
        finally:
            # Leaving the block before every result was read cancels the sync.
            if not finished:
                run.report.cancelled = True
            group.cancel_scope.cancel()
    run._touch()
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
    except anyio.get_cancelled_exc_class():
        if holder:
            holder[0].cancelled = True
        raise
    return holder[0]

