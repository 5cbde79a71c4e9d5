"""Fixtures for the state store's tests: a fake clock and a fresh state file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kustomer_activations.state import SqliteStateStore


class Tick:
    """A clock that moves only when told to (no test waits on real time)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tick() -> Tick:
    return Tick()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(path: Path, tick: Tick) -> Iterator[SqliteStateStore]:
    s = SqliteStateStore(path, now=tick, stale_after=600)
    yield s
    s.close()
