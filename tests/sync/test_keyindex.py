"""The key index: first row per key, in memory and after spilling to SQLite."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kustomer_activations.sync import engine
from kustomer_activations.sync.keyindex import KeyIndex, KeyStore, SqliteKeyStore, key_digest
from kustomer_activations.testing import KustomerEmulator, VirtualClock

from ..helpers import drive, make_client


class Stores:
    """Makes SQLite stores in ``tmp_path`` and remembers them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.made: list[SqliteKeyStore] = []

    def __call__(self) -> KeyStore:
        store = SqliteKeyStore(str(self.directory))
        self.made.append(store)
        return store


@pytest.fixture
def stores(tmp_path: Path) -> Stores:
    return Stores(tmp_path)


def test_duplicates_are_found_across_the_spill_boundary(stores: Stores) -> None:
    index = KeyIndex(memory_keys=3, buffer_keys=2, store=stores)
    for row, key in enumerate(["a", "b", "c"]):
        assert index.first_row(key, row) == row
    assert not stores.made
    assert index.first_row("b", 3) == 1  # still in memory
    assert index.first_row("d", 4) == 4  # the fourth key: everything moves to the store
    assert index.spilled
    assert index.first_row("a", 5) == 0  # from the store (moved at the spill)
    assert index.first_row("d", 6) == 4  # from the store or the buffer
    assert index.first_row("e", 7) == 7  # fills the buffer: flushed
    assert index.first_row("f", 8) == 8  # buffered, not yet flushed
    assert index.first_row("f", 9) == 8
    assert index.first_row("e", 10) == 7
    assert len(index) == 6
    index.close()


def test_many_keys_with_a_tiny_threshold(stores: Stores) -> None:
    with KeyIndex(memory_keys=10, buffer_keys=7, store=stores) as index:
        for row in range(3000):
            assert index.first_row(f"key-{row}", row) == row
        assert index.spilled
        assert len(index) == 3000
        for row in range(0, 3000, 7):
            assert index.first_row(f"key-{row}", 10_000 + row) == row
        assert index.first_row("new", 20_000) == 20_000
        assert len(index) == 3001
    assert len(stores.made) == 1


def test_the_in_memory_table_grows_and_keeps_every_key() -> None:
    index = KeyIndex(memory_keys=100_000)
    for row in range(5000):
        assert index.first_row(f"key-{row}", row) == row
    assert not index.spilled
    assert index.first_row("key-0", 9999) == 0
    assert index.first_row("key-4321", 9999) == 4321
    assert len(index) == 5000


def test_keys_differing_only_in_case_or_empty_are_distinct() -> None:
    index = KeyIndex()
    assert index.first_row("ABC", 1) == 1
    assert index.first_row("abc", 2) == 2
    assert index.first_row("", 3) == 3
    assert index.first_row("", 4) == 3
    assert index.first_row("\ud800", 5) == 5  # a lone surrogate is still a key


@pytest.mark.parametrize("memory_keys", [1000, 0], ids=["in memory", "spilled"])
def test_keys_sharing_a_digest_are_not_duplicates(stores: Stores, memory_keys: int) -> None:
    def colliding(data: bytes) -> bytes:  # every key of a length shares one digest
        return len(data).to_bytes(16, "little")

    with KeyIndex(memory_keys=memory_keys, buffer_keys=2, store=stores, digest=colliding) as index:
        keys = ["aa", "bb", "cc", "dd", "ee", "x"]
        for row, key in enumerate(keys):
            assert index.first_row(key, row) == row
        for row, key in enumerate(keys):
            assert index.first_row(key, 100 + row) == row
        assert len(index) == len(keys)
        assert index.spilled == (memory_keys == 0)


def test_the_spill_file_is_removed_on_close(stores: Stores) -> None:
    index = KeyIndex(memory_keys=1, store=stores)
    index.first_row("a", 0)
    assert not stores.made
    index.first_row("b", 1)
    (store,) = stores.made
    assert os.path.exists(store.path)
    assert Path(store.path).parent == stores.directory
    index.close()
    assert not os.path.exists(store.path)
    assert list(stores.directory.iterdir()) == []
    index.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        index.first_row("c", 2)


def test_an_unclosed_store_is_removed_when_collected(tmp_path: Path) -> None:
    store = SqliteKeyStore(str(tmp_path))
    path = store.path
    store.add_many([(key_digest(b"k"), b"k", 1)])
    assert store.find(key_digest(b"k"), b"k") == 1
    del store
    assert not os.path.exists(path)


def test_flushes_are_batched(stores: Stores) -> None:
    class Counting(SqliteKeyStore):
        def __init__(self) -> None:
            super().__init__(str(stores.directory))
            self.batches: list[int] = []

        def add_many(self, items: Iterable[tuple[bytes, bytes, int]]) -> None:
            batch = list(items)
            self.batches.append(len(batch))
            super().add_many(batch)

    made: list[Counting] = []

    def make() -> KeyStore:
        made.append(Counting())
        return made[-1]

    with KeyIndex(memory_keys=5, buffer_keys=100, store=make) as index:
        for row in range(1006):
            index.first_row(str(row), row)
    # The spill moves the 6 keys held so far; then one write per 100 new keys.
    assert made[0].batches == [6] + [100] * 10


@settings(max_examples=150, deadline=None)
@given(keys=st.lists(st.text(alphabet="abcdé\x00", max_size=4), max_size=80),
       memory_keys=st.integers(0, 20), buffer_keys=st.integers(1, 8))
def test_behaves_like_a_dict(tmp_path_factory: pytest.TempPathFactory, keys: list[str],
                             memory_keys: int, buffer_keys: int) -> None:
    def tiny(data: bytes) -> bytes:  # few distinct digests: collisions are common
        return key_digest(data)[:1] * 16

    directory = tmp_path_factory.mktemp("keys")
    model: dict[str, int] = {}
    with KeyIndex(memory_keys=memory_keys, buffer_keys=buffer_keys,
                  store=lambda: SqliteKeyStore(str(directory)), digest=tiny) as index:
        for row, key in enumerate(keys):
            assert index.first_row(key, row) == model.setdefault(key, row)
        assert len(index) == len(model)
    assert list(directory.iterdir()) == []


def test_a_sync_finds_duplicates_after_the_spill_and_removes_the_file(
    flavor: str, stores: Stores, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "KeyIndex",
                        lambda: KeyIndex(memory_keys=5, buffer_keys=4, store=stores))
    emu = KustomerEmulator(clock=VirtualClock())
    client = make_client(flavor, transport=emu.transport, base_url=emu.base_url, clock=emu.clock)
    rows = [{"externalId": f"ext-{i}", "name": f"Customer {i}"} for i in range(30)]
    rows.append({"externalId": "ext-2", "name": "Second copy"})
    report = drive(flavor, client, lambda c: c.customers.upsert_many(rows, chunk_size=7))
    assert (report.created, report.invalid) == (30, 1)
    assert report.failures[0].row == 30 and "row 2" in (report.failures[0].reason or "")
    assert len(stores.made) == 1
    assert list(stores.directory.iterdir()) == []  # the engine closed the index


def test_a_failed_spill_leaves_the_index_whole(stores: Stores) -> None:
    attempts: list[int] = []

    def flaky() -> KeyStore:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("no space left on device")
        return stores()

    with KeyIndex(memory_keys=2, store=flaky) as index:
        index.first_row("a", 0)
        index.first_row("b", 1)
        with pytest.raises(OSError, match="no space"):
            index.first_row("c", 2)
        assert not stores.made
        assert index.first_row("a", 3) == 0
        assert index.first_row("d", 4) == 4  # spills now
        assert len(stores.made) == 1 and index.spilled
        assert [index.first_row(k, 9) for k in "abcd"] == [0, 1, 2, 4]
