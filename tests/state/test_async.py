"""The async wrapper: every state call runs in a worker thread, under asyncio and trio."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kustomer_activations import Outcome
from kustomer_activations.state import (
    AsyncStateStore,
    Entry,
    Intent,
    SqliteRun,
    SqliteStateStore,
    StateOutcome,
    SyncAlreadyRunningError,
    payload_hash,
)
from kustomer_activations.state.sqlite import PAGE

pytestmark = pytest.mark.anyio

H = payload_hash({"name": "Ann"})


class ThreadSpy(SqliteStateStore):
    """Records the thread of every store and run call."""

    threads: list[int]

    def open_run(self, *args: Any, **kwargs: Any) -> SqliteRun:
        self.threads.append(threading.get_ident())
        run = super().open_run(*args, **kwargs)
        spy = self.threads
        known = run.known

        def spied_known(keys: Sequence[str], *, mark_seen: bool = True) -> dict[str, Entry]:
            spy.append(threading.get_ident())
            return known(keys, mark_seen=mark_seen)

        run.known = spied_known  # type: ignore[method-assign,assignment]
        return run

    def summary(self, sync: str | None = None) -> Any:
        self.threads.append(threading.get_ident())
        return super().summary(sync)


async def test_calls_never_run_on_the_event_loop_thread(path: Path) -> None:
    spy = ThreadSpy(path)
    spy.threads = []
    store = AsyncStateStore(spy)
    loop_thread = threading.get_ident()
    async with await store.open_run("s", "customer", "externalId") as run:
        await run.known(["a"])
    await store.summary()
    assert len(spy.threads) == 3 and loop_thread not in spy.threads
    await store.aclose()


async def test_async_round_trip(path: Path) -> None:
    store = AsyncStateStore(SqliteStateStore(path))
    keys = [f"k{i:05d}" for i in range(PAGE + 5)]
    async with await store.open_run("s", "customer", "externalId", "fp") as run:
        assert not run.dry_run and run.run_id
        assert await run.known(keys) == {}
        await run.record_intents([Intent(key_value=k, op="create") for k in keys])
        await run.record_outcomes([StateOutcome(key_value=k, outcome=Outcome.CREATED, kustomer_id="id-" + k,
                                                payload_hash=H) for k in keys[1:]])
        await run.record_outcomes([StateOutcome(key_value=keys[0], outcome=Outcome.FAILED, reason="x",
                                                write_uncertain=True)])
        await run.heartbeat()
        with pytest.raises(SyncAlreadyRunningError):
            await AsyncStateStore(SqliteStateStore(path)).open_run("s", "customer", "externalId")
    async with await store.open_run("s", "customer", "externalId", "fp") as run:
        assert not run.mapping_changed
        assert [p.key_value async for p in run.pending()] == [keys[0]]
        await run.resolve_pending({keys[0]: "found"})
        known = await run.known(keys[:-3])
        assert known[keys[1]].is_unchanged(H)
        assert [k async for k in run.failed_keys()] == [keys[0]]
        assert [k async for k in run.missing_from_source()] == keys[-3:]
    assert await store.syncs() == ["s"]
    assert (await store.summary()).rows_known == len(keys)
    assert await store.reset("s") == len(keys)
    await store.aclose()


