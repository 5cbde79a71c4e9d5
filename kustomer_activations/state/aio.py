"""The state store for async code: every call runs in a worker thread.

SQLite calls block; an async client must never block its event loop on them.
:class:`AsyncStateStore` wraps any :class:`~kustomer_activations.state.StateStore`
and runs each call through ``anyio.to_thread.run_sync`` (asyncio and trio
alike). The wrapped store must accept calls from varying threads, as
:class:`~kustomer_activations.state.SqliteStateStore` does (its connection is
created with ``check_same_thread=False`` and guarded by a lock).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TypeVar

import anyio.to_thread

from .protocol import StateRun, StateStore
from .records import Entry, Intent, PendingWrite, StateOutcome, StateSummary

__all__ = ["AsyncStateRun", "AsyncStateStore"]

T = TypeVar("T")

#: Items fetched per worker-thread call when iterating.
_PAGE = 1000


async def _run(func: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(func)


async def _aiter(make: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    it = await _run(make)
    while True:
        page = await _run(lambda: list(itertools.islice(it, _PAGE)))
        for item in page:
            yield item
        if len(page) < _PAGE:
            return


class AsyncStateRun:
    """A :class:`~kustomer_activations.state.StateRun` whose calls run in worker threads.

    Same methods, as coroutines; the iterators are async iterators.
    """

    def __init__(self, run: StateRun) -> None:
        self.sync_run = run

    @property
    def run_id(self) -> str:
        """This run's id."""
        return self.sync_run.run_id

    @property
    def dry_run(self) -> bool:
        """Whether nothing this run records reaches the file."""
        return self.sync_run.dry_run

    @property
    def mapping_changed(self) -> bool:
        """Whether the mapping fingerprint differs from the previous run's."""
        return self.sync_run.mapping_changed

    async def known(self, key_values: Sequence[str], *, mark_seen: bool = True) -> dict[str, Entry]:
        """See :meth:`SqliteRun.known <kustomer_activations.state.SqliteRun.known>`."""
        return await _run(functools.partial(self.sync_run.known, key_values, mark_seen=mark_seen))

    async def record_intents(self, intents: Sequence[Intent]) -> None:
        """See :meth:`SqliteRun.record_intents <kustomer_activations.state.SqliteRun.record_intents>`."""
        await _run(functools.partial(self.sync_run.record_intents, intents))

    async def record_outcomes(self, outcomes: Sequence[StateOutcome]) -> None:
        """See :meth:`SqliteRun.record_outcomes <kustomer_activations.state.SqliteRun.record_outcomes>`."""
        await _run(functools.partial(self.sync_run.record_outcomes, outcomes))

    async def resolve_pending(self, found: Mapping[str, str | None]) -> None:
        """See :meth:`SqliteRun.resolve_pending <kustomer_activations.state.SqliteRun.resolve_pending>`."""
        await _run(functools.partial(self.sync_run.resolve_pending, found))

    async def heartbeat(self) -> None:
        """Refresh the lock's heartbeat."""
        await _run(self.sync_run.heartbeat)

    def pending(self) -> AsyncIterator[PendingWrite]:
        """Writes announced by earlier runs and never concluded (fetched in pages)."""
        return _aiter(self.sync_run.pending)

    def missing_from_source(self) -> AsyncIterator[str]:
        """Key values the state knows that this run never saw (fetched in pages)."""
        return _aiter(self.sync_run.missing_from_source)

    def failed_keys(self) -> AsyncIterator[str]:
        """Key values whose last attempt failed (fetched in pages)."""
        return _aiter(self.sync_run.failed_keys)

    async def close(self, success: bool) -> None:
        """End the run and release the lock."""
        await _run(functools.partial(self.sync_run.close, success))

    async def __aenter__(self) -> AsyncStateRun:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        # Shielded: a cancelled sync must still record its end and free the lock.
        with anyio.CancelScope(shield=True):
            await self.close(exc_type is None)


class AsyncStateStore:
    """Any :class:`~kustomer_activations.state.StateStore`, with each call run in a worker thread.

    Usage::

        store = AsyncStateStore(SqliteStateStore("state.db"))
        async with await store.open_run("nightly", "customer", "externalId") as run:
            known = await run.known(keys)
    """

    def __init__(self, store: StateStore) -> None:
        self.store = store

    async def open_run(
        self,
        sync: str,
        object_type: str,
        key_label: str,
        mapping_fingerprint: str | None = None,
        *,
        dry_run: bool = False,
        full_resync: bool = False,
    ) -> AsyncStateRun:
        """See :meth:`SqliteStateStore.open_run <kustomer_activations.state.SqliteStateStore.open_run>`."""
        run = await _run(functools.partial(
            self.store.open_run, sync, object_type, key_label, mapping_fingerprint, dry_run=dry_run,
            full_resync=full_resync))
        return AsyncStateRun(run)

    async def summary(self, sync: str | None = None) -> StateSummary:
        """Last run, rows known and failed rows, for one sync or all of them."""
        return await _run(functools.partial(self.store.summary, sync))

    async def reset(self, sync: str) -> int:
        """Forget everything about one sync; return the rows deleted."""
        return await _run(functools.partial(self.store.reset, sync))

    async def syncs(self) -> list[str]:
        """The names of the syncs with state, sorted."""
        return await _run(self.store.syncs)

    async def aclose(self) -> None:
        """Close the wrapped store."""
        await _run(self.store.close)
