"""The sync and async resource twins; the behaviour itself lives in the flows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..errors import KustomerError
from ..mapping import FieldMapping
from ..models import Company, Customer, SyncKey
from ..results import UpsertResult
from ..sync import engine
from ..sync.progress import ProgressCallback
from ..sync.report import SyncReport
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
    max_jobs_in_flight: int = 256,
) -> engine.SyncOptions:
    """Validate ``upsert_many`` options before any row is read."""
    return engine.SyncOptions(
        key=SyncKey.parse(key), mapping=mapping, mode=_flows.check_mode(mode), dry_run=dry_run,
        validate_fields=validate_fields, concurrency=concurrency, chunk_size=chunk_size,
        on_progress=on_progress, total=total, report=report,
        policy=write_policy(fresh_reads, custom_updates, company_updates),
        max_body_bytes=max_body_bytes, max_jobs_in_flight=max_jobs_in_flight,
    )


def write_policy(fresh_reads: bool, custom_updates: str, company_updates: str) -> WritePolicy:
    """The :class:`WritePolicy` for these options (a ``ValueError`` names a bad one)."""
    return WritePolicy(fresh_reads=fresh_reads, custom_updates=custom_updates,  # type: ignore[arg-type]
                       company_updates=company_updates)  # type: ignore[arg-type]




class SyncResource(Generic[Obj]):
    """Operations shared by ``client.customers`` and ``client.companies`` (blocking)."""

    _kind: ObjectKind

    def __init__(self, client: KustomerClient) -> None:
        self._client = client

    def get(self, id: str) -> Obj:
        """The object with this Kustomer id (raises ``NotFoundError`` when none)."""
        result: Obj = self._client._run(_flows.get_flow(self._client._core, self._kind, id))
        return result

    def get_by_external_id(self, external_id: str) -> Obj | None:
        """The object with this external id, or ``None``.

        Raises :class:`AmbiguousMatchError` when several share it.
        """
        key = SyncKey.external_id()
        return _one(self._kind, key, external_id, self.find(key, external_id))  # type: ignore[no-any-return]

    def find(self, key: SyncKey | str, value: Any) -> list[Obj]:
        """Every object whose sync ``key`` equals ``value`` (0, 1 or more)."""
        flow = _flows.find_flow(self._client._core, self._kind, SyncKey.parse(key), value)
        return self._client._run(flow)

    def create(self, data: Any) -> Obj:
        """Create one object from Kustomer-named fields (validated before sending)."""
        flow = _flows.create_object_flow(self._client._core, self._kind, data)
        result: Obj = self._client._run(flow)
        return result

    def update(self, id: str, data: Any) -> Obj:
        """Update only the fields given; a customer keeps its company unless ``data`` sets one."""
        flow = _flows.update_object_flow(self._client._core, self._kind, id, data)
        result: Obj = self._client._run(flow)
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
    ) -> UpsertResult:
        """Update-or-create one record keyed on ``key``.

        0 matches → create (``update_only``: skipped); 1 match → update only
        the mapped fields, or ``unchanged`` with no write (``create_only``:
        skipped); 2+ matches → ``ambiguous``. A create refused as a duplicate
        or whose answer was lost is reconciled by looking the key up again.
        Errors of the record itself come back in the result; a bad key or a
        missing role raises. See the "Sync keys and upserts" guide.
        """
        flow = _flows.upsert_flow(
            self._client._core, self._client._caches, self._kind, record,
            key=SyncKey.parse(key), mode=_flows.check_mode(mode), mapping=mapping,
            validate_fields=validate_fields,
            policy=write_policy(fresh_reads, custom_updates, company_updates),
        )
        return self._client._run(flow)

    def upsert_many(
        self,
        rows: Any,
        *,
        key: SyncKey | str = "externalId",
        mapping: FieldMapping | None = None,
        mode: _flows.Mode = "upsert",
        dry_run: bool = False,
        validate_fields: bool = True,
        concurrency: int = 8,
        chunk_size: int = 500,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
        report: SyncReport | None = None,
        fresh_reads: bool = False,
        custom_updates: str = "merged",
        company_updates: str = "full",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_jobs_in_flight: int = 256,
    ) -> SyncReport:
        """Upsert every row with bulk writes at the rate-limit ceiling; one outcome per row.

        Returns a :class:`SyncReport`. Ctrl-C stops cleanly and raises
        :class:`SyncCancelledError`, whose ``report`` says what was written.
        Pass ``report=SyncReport()`` to hold the live report yourself.
        """
        options = sync_options(
            key=key, mapping=mapping, mode=mode, dry_run=dry_run, validate_fields=validate_fields,
            concurrency=concurrency, chunk_size=chunk_size, on_progress=on_progress, total=total,
            report=report, fresh_reads=fresh_reads, custom_updates=custom_updates,
            company_updates=company_updates, max_body_bytes=max_body_bytes,
            max_jobs_in_flight=max_jobs_in_flight,
        )
        return engine.run_many(self._client, self._kind, rows, options)

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
        concurrency: int = 8,
        chunk_size: int = 500,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
        fresh_reads: bool = False,
        custom_updates: str = "merged",
        company_updates: str = "full",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_jobs_in_flight: int = 256,
    ) -> Iterator[Iterator[UpsertResult]]:
        """Like :meth:`upsert_many`, yielding each row's result as it finishes.

        Memory stays flat for any input size. Leaving the block early cancels
        the rest of the sync::

            with client.customers.stream_upsert(rows, key="email") as results:
                for result in results:
                    print(result.row, result.outcome)
        """
        options = sync_options(
            key=key, mapping=mapping, mode=mode, dry_run=dry_run, validate_fields=validate_fields,
            concurrency=concurrency, chunk_size=chunk_size, on_progress=on_progress, total=total,
            fresh_reads=fresh_reads, custom_updates=custom_updates,
            company_updates=company_updates, max_body_bytes=max_body_bytes,
            max_jobs_in_flight=max_jobs_in_flight,
        )
        with engine.stream(self._client, self._kind, rows, options) as results:
            yield results


class AsyncResource(Generic[Obj]):
    """Operations shared by ``client.customers`` and ``client.companies`` (async)."""

    _kind: ObjectKind

    def __init__(self, client: AsyncKustomerClient) -> None:
        self._client = client

    async def get(self, id: str) -> Obj:
        """The object with this Kustomer id (raises ``NotFoundError`` when none)."""
        result: Obj = await self._client._run(_flows.get_flow(self._client._core, self._kind, id))
        return result

    async def get_by_external_id(self, external_id: str) -> Obj | None:
        """The object with this external id, or ``None``.

        Raises :class:`AmbiguousMatchError` when several share it.
        """
        key = SyncKey.external_id()
        return _one(self._kind, key, external_id, await self.find(key, external_id))  # type: ignore[no-any-return]

    async def find(self, key: SyncKey | str, value: Any) -> list[Obj]:
        """Every object whose sync ``key`` equals ``value`` (0, 1 or more)."""
        flow = _flows.find_flow(self._client._core, self._kind, SyncKey.parse(key), value)
        return await self._client._run(flow)

    async def create(self, data: Any) -> Obj:
        """Create one object from Kustomer-named fields (validated before sending)."""
        flow = _flows.create_object_flow(self._client._core, self._kind, data)
        result: Obj = await self._client._run(flow)
        return result

    async def update(self, id: str, data: Any) -> Obj:
        """Update only the fields given; a customer keeps its company unless ``data`` sets one."""
        flow = _flows.update_object_flow(self._client._core, self._kind, id, data)
        result: Obj = await self._client._run(flow)
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
    ) -> UpsertResult:
        """Update-or-create one record keyed on ``key``.

        0 matches → create (``update_only``: skipped); 1 match → update only
        the mapped fields, or ``unchanged`` with no write (``create_only``:
        skipped); 2+ matches → ``ambiguous``. A create refused as a duplicate
        or whose answer was lost is reconciled by looking the key up again.
        Errors of the record itself come back in the result; a bad key or a
        missing role raises. See the "Sync keys and upserts" guide.
        """
        flow = _flows.upsert_flow(
            self._client._core, self._client._caches, self._kind, record,
            key=SyncKey.parse(key), mode=_flows.check_mode(mode), mapping=mapping,
            validate_fields=validate_fields,
            policy=write_policy(fresh_reads, custom_updates, company_updates),
        )
        return await self._client._run(flow)

    async def upsert_many(
        self,
        rows: Any,
        *,
        key: SyncKey | str = "externalId",
        mapping: FieldMapping | None = None,
        mode: _flows.Mode = "upsert",
        dry_run: bool = False,
        validate_fields: bool = True,
        concurrency: int = 8,
        chunk_size: int = 500,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
        report: SyncReport | None = None,
        fresh_reads: bool = False,
        custom_updates: str = "merged",
        company_updates: str = "full",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_jobs_in_flight: int = 256,
    ) -> SyncReport:
        """Upsert every row with bulk writes at the rate-limit ceiling; one outcome per row.

        Returns a :class:`SyncReport`. Cancelling the task stops cleanly; pass
        ``report=SyncReport()`` to keep the report of a cancelled sync (every
        row read is accounted for, in-flight rows as failed).
        """
        options = sync_options(
            key=key, mapping=mapping, mode=mode, dry_run=dry_run, validate_fields=validate_fields,
            concurrency=concurrency, chunk_size=chunk_size, on_progress=on_progress, total=total,
            report=report, fresh_reads=fresh_reads, custom_updates=custom_updates,
            company_updates=company_updates, max_body_bytes=max_body_bytes,
            max_jobs_in_flight=max_jobs_in_flight,
        )
        return await engine.arun_many(self._client, self._kind, rows, options)

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
        concurrency: int = 8,
        chunk_size: int = 500,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
        fresh_reads: bool = False,
        custom_updates: str = "merged",
        company_updates: str = "full",
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_jobs_in_flight: int = 256,
    ) -> AsyncIterator[AsyncIterator[UpsertResult]]:
        """Like :meth:`upsert_many`, yielding each row's result as it finishes.

        Leaving the block early cancels the rest of the sync::

            async with client.customers.stream_upsert(rows, key="email") as results:
                async for result in results:
                    print(result.row, result.outcome)
        """
        options = sync_options(
            key=key, mapping=mapping, mode=mode, dry_run=dry_run, validate_fields=validate_fields,
            concurrency=concurrency, chunk_size=chunk_size, on_progress=on_progress, total=total,
            fresh_reads=fresh_reads, custom_updates=custom_updates,
            company_updates=company_updates, max_body_bytes=max_body_bytes,
            max_jobs_in_flight=max_jobs_in_flight,
        )
        async with engine.astream(self._client, self._kind, rows, options) as results:
            yield results
