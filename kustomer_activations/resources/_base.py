"""The sync and async resource twins; the behaviour itself lives in the flows."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from .._core.clock import SystemClock
from ..errors import KustomerError
from ..mapping import FieldMapping
from ..models import Company, Customer, SyncKey
from ..results import UpsertResult
from ..state import StateStore
from ..sync import engine, sources
from ..sync.progress import ProgressCallback, ProgressOption, progress_callback
from ..sync.report import Keep, SyncReport
from ..upsert import flows as _flows
from ..upsert.batch import DEFAULT_MAX_BODY_BYTES
from ..upsert.kinds import ObjectKind
from ..upsert.readback import WritePolicy

if TYPE_CHECKING:
    from ..client import AsyncKustomerClient, KustomerClient

__all__ = ["AmbiguousMatchError", "AsyncResource", "SyncResource"]

Obj = TypeVar("Obj", Customer, Company)


class AmbiguousMatchError(KustomerError):
    """A lookup that should find one object found several (bad data in Kustomer)."""

    def __init__(self, message: str, *, ids: tuple[str, ...]) -> None:
        self.ids = ids
        super().__init__(message)


def _one(kind: ObjectKind, key: SyncKey, value: str, matches: list[Any]) -> Any:
    if len(matches) > 1:
        ids = tuple(m.id for m in matches)
        raise AmbiguousMatchError(
            f"{len(ids)} {kind.name}s have {key.label}={value!r}: {', '.join(ids)}", ids=ids
        )
    return matches[0] if matches else None


def sync_options(
    *,
    key: SyncKey | str,
    mapping: FieldMapping | None,
    mode: str,
    dry_run: bool,
    validate_fields: bool,
    concurrency: int,
    chunk_size: int,
    on_progress: ProgressCallback | None,
    total: int | None,
    report: SyncReport | None = None,
    fresh_reads: bool = False,
    custom_updates: str = "merged",
    company_updates: str = "full",
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_jobs_in_flight: int = 384,
    state: StateStore | str | os.PathLike[str] | None = None,
    sync_name: str = "default",
    full_resync: bool = False,
    retry_failed_only: bool = False,
    verify_every: float | None = None,
) -> engine.SyncOptions:
    """Validate ``upsert_many`` options before any row is read."""
    return engine.SyncOptions(
        key=SyncKey.parse(key), mapping=mapping, mode=_flows.check_mode(mode), dry_run=dry_run,
        validate_fields=validate_fields, concurrency=concurrency, chunk_size=chunk_size,
        on_progress=on_progress, total=total, report=report,
        policy=write_policy(fresh_reads, custom_updates, company_updates),
        max_body_bytes=max_body_bytes, max_jobs_in_flight=max_jobs_in_flight,
        state=state, sync_name=sync_name, full_resync=full_resync,
        retry_failed_only=retry_failed_only,
        verify_every=None if verify_every is None else verify_every * 86_400.0,
    )


def write_policy(fresh_reads: bool, custom_updates: str, company_updates: str) -> WritePolicy:
    """The :class:`WritePolicy` for these options (a ``ValueError`` names a bad one)."""
    return WritePolicy(fresh_reads=fresh_reads, custom_updates=custom_updates,  # type: ignore[arg-type]
                       company_updates=company_updates)  # type: ignore[arg-type]


def call_options(timeout: float | httpx.Timeout | None, max_retries: int | None) -> dict[str, Any]:
    """The per-call options given (``None`` means "the client's own"), for ``with_options``."""
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = timeout
    if max_retries is not None:
        options["max_retries"] = max_retries
    return options


def report_for(
    client: KustomerClient | AsyncKustomerClient, report: SyncReport | None, keep: Keep | None,
) -> SyncReport:
    """The report a sync fills: ``report=`` or a new one; ``keep=``, when given, is what it keeps."""
    if report is None:
        report = SyncReport(keep=keep or "failures")
    elif keep is not None:
        report.keep = keep  # validated on assignment; the engine refuses a report already used
    # Durations on a virtual or scaled clock are not wall-clock seconds: the report says so.
    report.simulated = not isinstance(client.clock, SystemClock)
    return report



class SyncResource(Generic[Obj]):
    """Operations shared by ``client.customers`` and ``client.companies`` (blocking)."""

    _kind: ObjectKind

    def __init__(self, client: KustomerClient) -> None:
        self._client = client

    def _using(self, timeout: float | httpx.Timeout | None, max_retries: int | None) -> KustomerClient:
        options = call_options(timeout, max_retries)
        return self._client.with_options(**options) if options else self._client

    def get(
        self, id: str, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None,
    ) -> Obj:
        """The object with this Kustomer id (raises ``NotFoundError`` when none).

        Every method takes ``timeout=`` and ``max_retries=`` for this call only.
        """
        client = self._using(timeout, max_retries)
        result: Obj = client._run(_flows.get_flow(client._core, self._kind, id))
        return result

    def get_by_external_id(
        self, external_id: str, *, timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Obj | None:
        """The object with this external id, or ``None``.

        Raises :class:`AmbiguousMatchError` when several share it.
        """
        key = SyncKey.external_id()
        found = self.find(key, external_id, timeout=timeout, max_retries=max_retries)
        return _one(self._kind, key, external_id, found)  # type: ignore[no-any-return]

    def find(
        self, key: SyncKey | str, value: Any, *, timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> list[Obj]:
        """Every object whose sync ``key`` equals ``value`` (0, 1 or more)."""
        client = self._using(timeout, max_retries)
        flow = _flows.find_flow(client._core, self._kind, SyncKey.parse(key), value)
        return client._run(flow)

    def create(
        self, data: Any, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None,
    ) -> Obj:
        """Create one object from Kustomer-named fields (validated before sending)."""
        client = self._using(timeout, max_retries)
        result: Obj = client._run(_flows.create_object_flow(client._core, self._kind, data))
        return result

    def update(
        self, id: str, data: Any, *, timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Obj:
        """Update only the fields given; a customer keeps its company unless ``data`` sets one."""
        client = self._using(timeout, max_retries)
        result: Obj = client._run(_flows.update_object_flow(client._core, self._kind, id, data))
        return result

    def upsert(
        self,
        record: Any,
        *,
        key: SyncKey | str = "externalId",
        mode: _flows.Mode = "upsert",
        mapping: FieldMapping | None = None,
        validate_fields: bool = False,
        fresh_reads: bool = False,
        custom_updates: str = "merged",
        company_updates: str = "full",
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> UpsertResult:
        """Update-or-create one record keyed on ``key``.

        0 matches → create (``update_only``: skipped); 1 match → update only
        the mapped fields, or ``unchanged`` with no write (``create_only``:
        skipped); 2+ matches → ``ambiguous``. A create refused as a duplicate
        or whose answer was lost is reconciled by looking the key up again.
        Errors of the record itself come back in the result; a bad key or a
        missing role raises. See the "Sync keys and upserts" guide.
        """
        client = self._using(timeout, max_retries)
        flow = _flows.upsert_flow(
            client._core, client._caches, self._kind, record,
            key=SyncKey.parse(key), mode=_flows.check_mode(mode), mapping=mapping,
            validate_fields=validate_fields,
            policy=write_policy(fresh_reads, custom_updates, company_updates),
        )
        return client._run(flow)

    def upsert_many(
        self,
        rows: Any,
        *,
        key: SyncKey | str = "externalId",
        mapping: FieldMapping | None = None,
        mode: _flows.Mode = "upsert",
        dry_run: bool = False,
        validate_fields: bool = True,
        concurrency: int = 4,
        chunk_size: int = 500,
        progress: ProgressOption = None,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
        report: SyncReport | None = None,
        keep: Keep | None = None,
        fresh_reads: bool = False,
        custom_updates: str = "merged",
        company_updates: str = "full",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_jobs_in_flight: int = 384,
        state: StateStore | str | os.PathLike[str] | None = None,
        sync_name: str = "default",
        full_resync: bool = False,
        retry_failed_only: bool = False,
        verify_every: float | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> SyncReport:
        """Upsert every row with bulk writes at the rate-limit ceiling; one outcome per row.

        ``rows`` is any iterable of mappings, a pandas or polars DataFrame, or
        the path (``str`` or ``Path``) of a ``.csv``, ``.tsv``, ``.jsonl`` or
        ``.ndjson`` file. Returns a :class:`SyncReport`. ``progress=True``
        draws a progress bar (needs the ``[progress]`` extra, tqdm);
        ``progress="auto"`` draws one only when tqdm is installed; a callable
        gets each :class:`~kustomer_activations.Progress` snapshot.
        ``keep="all"`` keeps every row's result in the report (for
        ``report.to_pandas()``); by default only failures are kept, so memory
        stays flat. Ctrl-C stops cleanly and raises
        :class:`SyncCancelledError`, whose ``report`` says what was written.
        Pass ``report=SyncReport()`` to hold the live report yourself.
        """
        client = self._using(timeout, max_retries)
        rows = sources.as_rows(rows)
        held = report_for(client, report, keep)
        with progress_callback(progress, on_progress, desc=f"{self._kind.name}s") as callback:
            options = sync_options(
                key=key, mapping=mapping, mode=mode, dry_run=dry_run, validate_fields=validate_fields,
                concurrency=concurrency, chunk_size=chunk_size, on_progress=callback, total=total,
                report=held, fresh_reads=fresh_reads, custom_updates=custom_updates,
                company_updates=company_updates, max_body_bytes=max_body_bytes,
                max_jobs_in_flight=max_jobs_in_flight,
                state=state, sync_name=sync_name, full_resync=full_resync,
                retry_failed_only=retry_failed_only, verify_every=verify_every,
            )
            return engine.run_many(client, self._kind, rows, options)

    @contextlib.contextmanager
    def stream_upsert(
        self,
        rows: Any,
        *,
        key: SyncKey | str = "externalId",
        mapping: FieldMapping | None = None,
        mode: _flows.Mode = "upsert",
        dry_run: bool = False,
        validate_fields: bool = True,
        concurrency: int = 4,
        chunk_size: int = 500,
        progress: ProgressOption = None,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
        report: SyncReport | None = None,
        keep: Keep | None = None,
        fresh_reads: bool = False,
        custom_updates: str = "merged",
        company_updates: str = "full",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_jobs_in_flight: int = 384,
        state: StateStore | str | os.PathLike[str] | None = None,
        sync_name: str = "default",
        full_resync: bool = False,
        retry_failed_only: bool = False,
        verify_every: float | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Iterator[Iterator[UpsertResult]]:
        """Like :meth:`upsert_many`, yielding each row's result as it finishes.

        Memory stays flat for any input size. Leaving the block early cancels
        the rest of the sync. Pass ``report=SyncReport()`` to read the counts
        afterwards (``keep="all"`` to keep every row in it)::

            with client.customers.stream_upsert(rows, key="email") as results:
                for result in results:
                    print(result.row, result.outcome)
        """
        client = self._using(timeout, max_retries)
        rows = sources.as_rows(rows)
        held = report_for(client, report, keep)
        with progress_callback(progress, on_progress, desc=f"{self._kind.name}s") as callback:
            options = sync_options(
                key=key, mapping=mapping, mode=mode, dry_run=dry_run, validate_fields=validate_fields,
                concurrency=concurrency, chunk_size=chunk_size, on_progress=callback, total=total,
                report=held, fresh_reads=fresh_reads, custom_updates=custom_updates,
                company_updates=company_updates, max_body_bytes=max_body_bytes,
                max_jobs_in_flight=max_jobs_in_flight,
                state=state, sync_name=sync_name, full_resync=full_resync,
                retry_failed_only=retry_failed_only, verify_every=verify_every,
            )
            with engine.stream(client, self._kind, rows, options) as results:
                yield results


class AsyncResource(Generic[Obj]):
    """Operations shared by ``client.customers`` and ``client.companies`` (async)."""

    _kind: ObjectKind

    def __init__(self, client: AsyncKustomerClient) -> None:
        self._client = client

    def _using(self, timeout: float | httpx.Timeout | None, max_retries: int | None) -> AsyncKustomerClient:
        options = call_options(timeout, max_retries)
        return self._client.with_options(**options) if options else self._client

    async def get(
        self, id: str, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None,
    ) -> Obj:
        """The object with this Kustomer id (raises ``NotFoundError`` when none).

        Every method takes ``timeout=`` and ``max_retries=`` for this call only.
        """
        client = self._using(timeout, max_retries)
        result: Obj = await client._run(_flows.get_flow(client._core, self._kind, id))
        return result

    async def get_by_external_id(
        self, external_id: str, *, timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Obj | None:
        """The object with this external id, or ``None``.

        Raises :class:`AmbiguousMatchError` when several share it.
        """
        key = SyncKey.external_id()
        found = await self.find(key, external_id, timeout=timeout, max_retries=max_retries)
        return _one(self._kind, key, external_id, found)  # type: ignore[no-any-return]

    async def find(
        self, key: SyncKey | str, value: Any, *, timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> list[Obj]:
        """Every object whose sync ``key`` equals ``value`` (0, 1 or more)."""
        client = self._using(timeout, max_retries)
        flow = _flows.find_flow(client._core, self._kind, SyncKey.parse(key), value)
        return await client._run(flow)

    async def create(
        self, data: Any, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None,
    ) -> Obj:
        """Create one object from Kustomer-named fields (validated before sending)."""
        client = self._using(timeout, max_retries)
        result: Obj = await client._run(_flows.create_object_flow(client._core, self._kind, data))
        return result

    async def update(
        self, id: str, data: Any, *, timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> Obj:
        """Update only the fields given; a customer keeps its company unless ``data`` sets one."""
        client = self._using(timeout, max_retries)
        result: Obj = await client._run(_flows.update_object_flow(client._core, self._kind, id, data))
        return result

    async def upsert(
        self,
        record: Any,
        *,
        key: SyncKey | str = "externalId",
        mode: _flows.Mode = "upsert",
        mapping: FieldMapping | None = None,
        validate_fields: bool = False,
        fresh_reads: bool = False,
        custom_updates: str = "merged",
        company_updates: str = "full",
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> UpsertResult:
        """Update-or-create one record keyed on ``key``.

        0 matches → create (``update_only``: skipped); 1 match → update only
        the mapped fields, or ``unchanged`` with no write (``create_only``:
        skipped); 2+ matches → ``ambiguous``. A create refused as a duplicate
        or whose answer was lost is reconciled by looking the key up again.
        Errors of the record itself come back in the result; a bad key or a
        missing role raises. See the "Sync keys and upserts" guide.
        """
        client = self._using(timeout, max_retries)
        flow = _flows.upsert_flow(
            client._core, client._caches, self._kind, record,
            key=SyncKey.parse(key), mode=_flows.check_mode(mode), mapping=mapping,
            validate_fields=validate_fields,
            policy=write_policy(fresh_reads, custom_updates, company_updates),
        )
        return await client._run(flow)

    async def upsert_many(
        self,
        rows: Any,
        *,
        key: SyncKey | str = "externalId",
        mapping: FieldMapping | None = None,
        mode: _flows.Mode = "upsert",
        dry_run: bool = False,
        validate_fields: bool = True,
        concurrency: int = 4,
        chunk_size: int = 500,
        progress: ProgressOption = None,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
        report: SyncReport | None = None,
        keep: Keep | None = None,
        fresh_reads: bool = False,
        custom_updates: str = "merged",
        company_updates: str = "full",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_jobs_in_flight: int = 384,
        state: StateStore | str | os.PathLike[str] | None = None,
        sync_name: str = "default",
        full_resync: bool = False,
        retry_failed_only: bool = False,
        verify_every: float | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> SyncReport:
        """Upsert every row with bulk writes at the rate-limit ceiling; one outcome per row.

        ``rows`` is any iterable of mappings, a pandas or polars DataFrame, or
        the path (``str`` or ``Path``) of a ``.csv``, ``.tsv``, ``.jsonl`` or
        ``.ndjson`` file. Returns a :class:`SyncReport`. ``progress=True``
        draws a progress bar (needs the ``[progress]`` extra, tqdm);
        ``progress="auto"`` draws one only when tqdm is installed; a callable
        gets each :class:`~kustomer_activations.Progress` snapshot.
        ``keep="all"`` keeps every row's result in the report (for
        ``report.to_pandas()``); by default only failures are kept, so memory
        stays flat. Ctrl-C stops cleanly and raises
        :class:`SyncCancelledError`; cancelling the task stops cleanly too.
        Pass ``report=SyncReport()`` to keep the report of a cancelled sync
        (every row read is accounted for, in-flight rows as failed).
        """
        client = self._using(timeout, max_retries)
        rows = sources.as_rows(rows)
        held = report_for(client, report, keep)
        with progress_callback(progress, on_progress, desc=f"{self._kind.name}s") as callback:
            options = sync_options(
                key=key, mapping=mapping, mode=mode, dry_run=dry_run, validate_fields=validate_fields,
                concurrency=concurrency, chunk_size=chunk_size, on_progress=callback, total=total,
                report=held, fresh_reads=fresh_reads, custom_updates=custom_updates,
                company_updates=company_updates, max_body_bytes=max_body_bytes,
                max_jobs_in_flight=max_jobs_in_flight,
                state=state, sync_name=sync_name, full_resync=full_resync,
                retry_failed_only=retry_failed_only, verify_every=verify_every,
            )
            return await engine.arun_many(client, self._kind, rows, options)

    @contextlib.asynccontextmanager
    async def stream_upsert(
        self,
        rows: Any,
        *,
        key: SyncKey | str = "externalId",
        mapping: FieldMapping | None = None,
        mode: _flows.Mode = "upsert",
        dry_run: bool = False,
        validate_fields: bool = True,
        concurrency: int = 4,
        chunk_size: int = 500,
        progress: ProgressOption = None,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
        report: SyncReport | None = None,
        keep: Keep | None = None,
        fresh_reads: bool = False,
        custom_updates: str = "merged",
        company_updates: str = "full",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_jobs_in_flight: int = 384,
        state: StateStore | str | os.PathLike[str] | None = None,
        sync_name: str = "default",
        full_resync: bool = False,
        retry_failed_only: bool = False,
        verify_every: float | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
    ) -> AsyncIterator[AsyncIterator[UpsertResult]]:
        """Like :meth:`upsert_many`, yielding each row's result as it finishes.

        Memory stays flat for any input size. Leaving the block early cancels
        the rest of the sync. Pass ``report=SyncReport()`` to read the counts
        afterwards (``keep="all"`` to keep every row in it)::

            async with client.customers.stream_upsert(rows, key="email") as results:
                async for result in results:
                    print(result.row, result.outcome)
        """
        client = self._using(timeout, max_retries)
        rows = sources.as_rows(rows)
        held = report_for(client, report, keep)
        with progress_callback(progress, on_progress, desc=f"{self._kind.name}s") as callback:
            options = sync_options(
                key=key, mapping=mapping, mode=mode, dry_run=dry_run, validate_fields=validate_fields,
                concurrency=concurrency, chunk_size=chunk_size, on_progress=callback, total=total,
                report=held, fresh_reads=fresh_reads, custom_updates=custom_updates,
                company_updates=company_updates, max_body_bytes=max_body_bytes,
                max_jobs_in_flight=max_jobs_in_flight,
                state=state, sync_name=sync_name, full_resync=full_resync,
                retry_failed_only=retry_failed_only, verify_every=verify_every,
            )
            async with engine.astream(client, self._kind, rows, options) as results:
                yield results
