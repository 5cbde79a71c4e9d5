"""Cancelling a batch sync, every way it can be cancelled, keeps the report whole and true.

Every test reads several thousand rows (every 7th has no key, so it is
``invalid`` the moment it is read, interleaved with chunks in flight) and
stops the sync part-way: Ctrl-C or another exception raised from
``on_progress``, a cancel scope or a deadline around the async
``upsert_many``, ``task.cancel()``, or leaving a result stream early. Then,
whatever the flavor:

* the rows in the report are exactly the rows the source yielded, each once,
  and the counts add up to ``report.rows``;
* a row reported ``created`` / ``updated`` is stored as sent, a row reported
  "not written" is not, and a stored write is reported either as done or as
  "may have been written";
* ``report.cancelled`` is true.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from kustomer_activations import Outcome, SyncCancelledError, SyncKey, SyncReport, UpsertResult
from kustomer_activations.sync import engine
from kustomer_activations.testing import Fault, KustomerEmulator, VirtualClock

from ..helpers import make_client

ROWS = 4000
SEEDED = 300            # rows 0..299 exist already: the sync updates them
CHUNK = 100
CONCURRENCY = 4
WRITTEN = (Outcome.CREATED, Outcome.UPDATED)


class _Recorder(SyncReport):
    """A SyncReport that also keeps every result counted into it."""

    def __init__(self) -> None:
        super().__init__()
        self.results: list[UpsertResult] = []

    def add(self, result: UpsertResult) -> None:
        super().add(result)
        self.results.append(result)


class _Source:
    """Rows ``0..n-1`` (every 7th without a key); remembers which ones it yielded."""

    def __init__(self, n: int = ROWS, *, after_row: Callable[[int], None] | None = None) -> None:
        self.n = n
        self.yielded: list[int] = []
        self._after_row = after_row

    @staticmethod
    def row(i: int) -> dict[str, Any]:
        if i % 7 == 3:
            return {"name": f"Row {i}"}                      # no key: invalid when read
        return {"externalId": f"r-{i}", "name": f"Row {i}"}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(self.n):
            self.yielded.append(i)
            yield self.row(i)
            if self._after_row is not None:
                self._after_row(i)

    async def aiter(self) -> AsyncIterator[dict[str, Any]]:
        for i in range(self.n):
            if i % 50 == 0:
                await anyio.lowlevel.checkpoint()            # a cursor fetching a page
            self.yielded.append(i)
            yield self.row(i)
            if self._after_row is not None:
                self._after_row(i)


def _emulator() -> KustomerEmulator:
    emu = KustomerEmulator(clock=VirtualClock())
    for i in range(SEEDED):
        if i % 7 != 3:
            emu.seed_customer({"externalId": f"r-{i}", "name": f"Old {i}"})
    # Slow writes and polls keep several chunks in flight at once.
    emu.faults.add(Fault.slow(0.5), match="POST /v1/customers/bulk", times=None)
    emu.faults.add(Fault.slow(0.3), match="GET /v1/bulk", times=None)
    return emu


def _client(flavor: str, emu: KustomerEmulator) -> Any:
    return make_client(flavor, transport=emu.transport, base_url=emu.base_url, clock=emu.clock)


def _options(**kw: Any) -> dict[str, Any]:
    return {"key": "externalId", "chunk_size": CHUNK, "concurrency": CONCURRENCY, **kw}


def _upsert(flavor: str, client: Any, rows: Any, **kw: Any) -> SyncReport:
    if flavor == "sync":
        report: SyncReport = client.customers.upsert_many(rows, **_options(**kw))
        return report

    async def main() -> SyncReport:
        result: SyncReport = await client.customers.upsert_many(rows, **_options(**kw))
        return result

    return anyio.run(main, backend=flavor)


def _check(emu: KustomerEmulator, report: _Recorder, source: _Source) -> None:
    """The invariants of a cancelled sync (see the module docs)."""
    indices = [r.row for r in report.results]
    assert len(indices) == len(set(indices)), "a row was counted twice"
    assert set(indices) == set(source.yielded), (
        f"{len(source.yielded)} rows read, {len(set(indices))} in the report")
    assert report.rows == len(source.yielded) == sum(report.counts.values())
    assert report.cancelled
    assert len(source.yielded) < source.n, "the sync was not cancelled part-way"

    names = {c.get("externalId"): c.get("name") for c in emu.customers.all()}
    stored_as_sent = {int(k[2:]) for k, name in names.items() if k and name == f"Row {k[2:]}"}
    by_row = {r.row: r for r in report.results}
    written = {i for i, r in by_row.items() if r.outcome in WRITTEN}
    maybe = {i for i, r in by_row.items() if "may have" in (r.reason or "")}
    not_written = {i for i, r in by_row.items() if "not written" in (r.reason or "")}
    assert written <= stored_as_sent, "rows reported written are not stored"
    assert not (not_written & stored_as_sent), "rows reported 'not written' are stored"
    assert stored_as_sent <= written | maybe, "stored rows reported neither written nor maybe"
    for i, result in by_row.items():
        if i % 7 == 3:
            assert result.outcome is Outcome.INVALID
        elif result.outcome is Outcome.FAILED:
            assert i in maybe or i in not_written, result.reason
        else:
            assert result.outcome in WRITTEN, result
            assert result.outcome is (Outcome.UPDATED if i < SEEDED else Outcome.CREATED)


# -- an exception raised from on_progress -----------------------------------------------

@pytest.mark.parametrize("threshold", [0, 350, 1800])
def test_ctrl_c_from_on_progress(flavor: str, threshold: int) -> None:
    """The documented pattern: raise KeyboardInterrupt on every call past a threshold."""
    emu, source, report = _emulator(), _Source(), _Recorder()
    raised = 0

    def press_ctrl_c(progress: Any) -> None:
        nonlocal raised
        if progress.done >= threshold:
            raised += 1
            raise KeyboardInterrupt

    with pytest.raises(SyncCancelledError) as info:
        _upsert(flavor, _client(flavor, emu), source, on_progress=press_ctrl_c, report=report)
    assert info.value.report is report
    assert isinstance(info.value.__cause__, KeyboardInterrupt)
    assert raised == 1, "the cleanup called on_progress again"
    _check(emu, report, source)


@pytest.mark.parametrize("threshold", [0, 1200])
def test_other_exception_from_on_progress(flavor: str, threshold: int) -> None:
    """Any other exception cancels the sync the same way and is re-raised, report attached."""
    emu, source, report = _emulator(), _Source(), _Recorder()
    raised = 0

    class ProgressBarBroke(Exception):
        pass

    def broken(progress: Any) -> None:
        nonlocal raised
        if progress.done >= threshold:
            raised += 1
            raise ProgressBarBroke("the terminal went away")

    with pytest.raises(ProgressBarBroke) as info:
        _upsert(flavor, _client(flavor, emu), source, on_progress=broken, report=report)
    assert getattr(info.value, "report", None) is report
    assert raised == 1
    _check(emu, report, source)


@pytest.mark.parametrize("where", ["source", "prepare"])
def test_exception_reading_the_rows(flavor: str, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The row source is user code too: its exception stops the sync the same way."""
    emu, report = _emulator(), _Recorder()

    class CursorLost(Exception):
        pass

    def after_row(i: int) -> None:
        if where == "source" and i == 1500:
            raise CursorLost("the warehouse cursor went away")

    source = _Source(after_row=after_row)
    if where == "prepare":
        prepare = engine._Preparer.prepare

        def broken(self: Any, index: int, row: Any) -> Any:
            if index == 1500:
                raise CursorLost("a bug while preparing a row")
            return prepare(self, index, row)

        monkeypatch.setattr(engine._Preparer, "prepare", broken)
    with pytest.raises(CursorLost) as info:
        _upsert(flavor, _client(flavor, emu), source if flavor == "sync" else source.aiter(),
                report=report)
    assert getattr(info.value, "report", None) is report
    assert max(source.yielded) == 1500
    _check(emu, report, source)


# -- async cancellation -----------------------------------------------------------------

@pytest.fixture(params=["asyncio", "trio"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("trigger", ["progress", "source", "deadline"])
def test_cancel_scope_around_async_upsert_many(backend: str, trigger: str) -> None:
    emu, report = _emulator(), _Recorder()
    scopes: list[anyio.CancelScope] = []

    def from_source(i: int) -> None:
        if i == 1234:
            scopes[0].cancel()

    def from_progress(progress: Any) -> None:
        if progress.done >= 1500:
            scopes[0].cancel()

    source = _Source(50_000 if trigger == "deadline" else ROWS,
                     after_row=from_source if trigger == "source" else None)
    client = _client(backend, emu)

    async def main() -> bool:
        scopes.append(anyio.move_on_after(0.05) if trigger == "deadline" else anyio.CancelScope())
        with scopes[0]:
            await client.customers.upsert_many(
                source.aiter(), **_options(report=report),
                on_progress=from_progress if trigger == "progress" else None)
        return scopes[0].cancelled_caught

    assert anyio.run(main, backend=backend)
    _check(emu, report, source)


@pytest.mark.parametrize("by", ["another_task", "on_progress"])
def test_asyncio_task_cancel(by: str) -> None:
    emu, source, report = _emulator(), _Source(), _Recorder()
    client = _client("asyncio", emu)

    async def main() -> None:
        reached = asyncio.Event()

        def at_1000(progress: Any) -> None:
            if progress.done >= 1000:
                if by == "on_progress":
                    task.cancel()
                reached.set()

        task = asyncio.ensure_future(client.customers.upsert_many(
            source, **_options(report=report), on_progress=at_1000))
        if by == "another_task":
            await reached.wait()
            task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    _check(emu, report, source)


# -- leaving a result stream early ------------------------------------------------------

@pytest.mark.parametrize("after", [1, 900])
def test_break_out_of_stream_upsert(flavor: str, after: int) -> None:
    emu, source, report = _emulator(), _Source(), _Recorder()
    client = _client(flavor, emu)
    kind = client.customers._kind
    options = engine.SyncOptions(key=SyncKey.external_id(), chunk_size=CHUNK,
                                 concurrency=CONCURRENCY, report=report)
    seen: list[UpsertResult] = []

    if flavor == "sync":
        with engine.stream(client, kind, source, options) as results:
            for result in results:
                seen.append(result)
                if len(seen) >= after:
                    break
    else:
        async def main() -> None:
            async with engine.astream(client, kind, source.aiter(), options) as results:
                async for result in results:
                    seen.append(result)
                    if len(seen) >= after:
                        break
        anyio.run(main, backend=flavor)

    assert len(seen) == after
    counted = {r.row: r for r in report.results}
    assert all(counted[r.row] is r for r in seen), "the stream gave a result the report lacks"
    _check(emu, report, source)


def test_stream_upsert_break_does_not_hang_and_stops_writing() -> None:
    """The public ``stream_upsert``: leaving early stops the writes."""
    emu, source = _emulator(), _Source()
    client = _client("sync", emu)
    with client.customers.stream_upsert(source, **_options()) as results:
        for _ in results:
            break
    assert len(source.yielded) < ROWS
    written = [c for c in emu.customers.all() if c.get("name", "").startswith("Row ")]
    assert len(written) <= len(source.yielded)
