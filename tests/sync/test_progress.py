"""``progress=`` on ``upsert_many``: a tqdm bar, a callable, or nothing; and notebooks' running loop."""

from __future__ import annotations

import asyncio
import sys
import types
import warnings
from typing import Any, ClassVar

import pytest

from kustomer_activations import Progress, SyncReport
from kustomer_activations.sync import progress as progress_module
from kustomer_activations.testing import KustomerEmulator, VirtualClock

from ..helpers import drive, make_client


def _client(flavor: str) -> tuple[KustomerEmulator, Any]:
    emu = KustomerEmulator(clock=VirtualClock())
    return emu, make_client(flavor, transport=emu.transport, base_url=emu.base_url, clock=emu.clock)


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"externalId": f"p-{i}", "name": f"P {i}"} for i in range(n)]


def _sync(flavor: str, client: Any, rows: Any, **kw: Any) -> SyncReport:
    report: SyncReport = drive(flavor, client, lambda c: c.customers.upsert_many(rows, **kw))
    return report


class _FakeBar:
    made: ClassVar[list[_FakeBar]] = []

    def __init__(self, **kw: Any) -> None:
        self.kw = kw
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self.closed = False
        _FakeBar.made.append(self)

    def update(self, n: int) -> None:
        self.n += n

    def set_postfix(self, refresh: bool = True, **kw: Any) -> None:
        self.postfix = kw

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_tqdm(monkeypatch: pytest.MonkeyPatch) -> type[_FakeBar]:
    """``tqdm.auto`` replaced by a recording bar."""
    module = types.ModuleType("tqdm.auto")
    module.tqdm = _FakeBar  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tqdm.auto", module)
    _FakeBar.made = []
    return _FakeBar


@pytest.fixture
def no_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    """tqdm not installed: importing it raises ImportError; the one-time warning is re-armed."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    monkeypatch.setattr(progress_module, "_warned_missing_tqdm", False)


@pytest.mark.parametrize("option", [True, "auto"])
def test_progress_draws_a_tqdm_bar_to_the_end(flavor: str, fake_tqdm: type[_FakeBar], option: Any) -> None:
    _, client = _client(flavor)
    report = _sync(flavor, client, _rows(5), progress=option, chunk_size=2, keep="all")
    assert report.created == 5
    [bar] = fake_tqdm.made
    assert bar.kw["total"] == 5 and bar.kw["unit"] == "row" and bar.kw["desc"] == "customers"
    assert bar.n == 5
    assert bar.postfix == {"requests": report.requests, "failed": 0}
    assert bar.closed


def test_progress_bar_is_closed_when_the_sync_raises(fake_tqdm: type[_FakeBar]) -> None:
    _, client = _client("sync")

    def rows() -> Any:
        yield from _rows(3)
        raise RuntimeError("source broke")

    with pytest.raises(RuntimeError, match="source broke"):
        client.customers.upsert_many(rows(), progress=True, chunk_size=1)
    assert all(bar.closed for bar in fake_tqdm.made)


def test_real_tqdm_draws_in_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    _, client = _client("sync")
    client.customers.upsert_many(_rows(4), progress=True)
    drawn = capsys.readouterr().err
    assert "customers: 100%" in drawn and "4/4" in drawn


def test_progress_true_without_tqdm_warns_once_with_the_extra(flavor: str, no_tqdm: None) -> None:
    _, client = _client(flavor)
    with pytest.warns(RuntimeWarning, match=r"pip install 'kustomer-activations\[progress\]'"):
        assert _sync(flavor, client, _rows(2), progress=True).created == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _sync(flavor, client, _rows(2), progress=True).unchanged == 2


def test_progress_auto_without_tqdm_is_silent(flavor: str, no_tqdm: None) -> None:
    _, client = _client(flavor)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _sync(flavor, client, _rows(2), progress="auto").created == 2


def test_progress_callable_gets_the_snapshots_and_on_progress_still_works(flavor: str) -> None:
    _, client = _client(flavor)
    seen: list[Progress] = []
    legacy: list[Progress] = []
    report = _sync(flavor, client, _rows(4), progress=seen.append, on_progress=legacy.append,
                   chunk_size=2)
    assert seen and seen == legacy
    assert seen[-1].done == 4 and seen[-1].total == 4
    assert seen[-1].requests == report.requests
    assert [p.done for p in seen] == sorted(p.done for p in seen)


def test_a_bad_progress_value_is_refused_before_any_request() -> None:
    emu, client = _client("sync")
    with pytest.raises(ValueError, match="progress must be True, False, 'auto' or a callable"):
        client.customers.upsert_many(_rows(1), progress="yes")
    assert emu.requests == []


def test_sync_client_batch_sync_inside_a_running_event_loop(fake_tqdm: type[_FakeBar]) -> None:
    """Jupyter runs an asyncio loop in the kernel's thread: a cell calling upsert_many must work."""
    emu, client = _client("sync")

    async def cell() -> SyncReport:
        asyncio.get_running_loop()  # a loop is running here, as in a notebook cell
        report: SyncReport = client.customers.upsert_many(_rows(3), progress=True)
        return report

    report = asyncio.run(cell())
    assert report.created == 3
    assert len(emu.find_customers(externalId="p-2")) == 1
    assert fake_tqdm.made[0].n == 3
