"""The sync-key values an input has already had, in bounded memory.

Spotting a repeated key needs every earlier key, so this is the one part of
a sync that grows with the input. Up to ``memory_keys`` keys live in a
compact in-memory table (~50 bytes per key: 64-bit hashes, row numbers and
the key bytes in one arena, no Python object per key). Past that, the index
*spills*: every key moves to a :class:`KeyStore` (by default
:class:`SqliteKeyStore`, a scratch SQLite file deleted on close) and new keys
collect in a small buffer that is written to the store in one transaction
when it fills. Memory then stays flat however many rows follow.

In memory a key is placed by Python's own 64-bit hash (the table never
leaves the process); the store files it under a 16-byte digest. Neither
decides alone: the key itself is compared (in memory) or is part of the
stored primary key (on disk), so two keys that share a hash are still two
keys. After the spill, a fixed-size Bloom filter of the hashes
(``filter_bytes``) answers most new keys without a read from the store:
nearly every key is new.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import weakref
from array import array
from collections.abc import Callable, Iterable
from hashlib import blake2b
from typing import Protocol

__all__ = ["DEFAULT_BUFFER_KEYS", "DEFAULT_MEMORY_KEYS", "KeyIndex", "KeyStore", "SqliteKeyStore",
           "key_digest"]

#: Keys held in memory before the index spills (~10 MB at ~50 bytes a key).
DEFAULT_MEMORY_KEYS = 200_000
#: New keys held in memory after a spill before one batched write to the store.
DEFAULT_BUFFER_KEYS = 10_000
#: Bytes of the Bloom filter used after a spill: a needless read from the store for
#: ~0.2 % of new keys at 2M keys, ~24 % at 10M.
DEFAULT_FILTER_BYTES = 4 << 20
_MASK64 = (1 << 64) - 1


def key_digest(key: bytes) -> bytes:
    """The 16-byte BLAKE2b digest a key is filed under."""
    return blake2b(key, digest_size=16).digest()


class KeyStore(Protocol):
    """Where a :class:`KeyIndex` keeps its keys once it has spilled.

    A store maps ``(digest, key)`` to the first row that had ``key``. The
    index only adds keys it has checked are absent, in batches.
    """

    def find(self, digest: bytes, key: bytes) -> int | None:
        """The row stored for ``key`` (filed under ``digest``), or ``None``."""
        ...

    def add_many(self, items: Iterable[tuple[bytes, bytes, int]]) -> None:
        """Store ``(digest, key, row)`` triples, in one transaction."""
        ...

    def close(self) -> None:
        """Release the store (idempotent)."""
        ...


def _remove(db: sqlite3.Connection, path: str) -> None:
    db.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class SqliteKeyStore:
    """A :class:`KeyStore` in a temporary SQLite file, deleted on :meth:`close`.

    The file is scratch, rebuilt by every sync, so it runs without a journal
    or fsync. SQLite's own page cache is capped (``cache_kib``); the rest
    of the file lives in the OS cache, outside the process's resident memory.
    """

    def __init__(self, directory: str | None = None, *, cache_kib: int = 2048) -> None:
        fd, self.path = tempfile.mkstemp(prefix="kustomer-keys-", suffix=".sqlite3", dir=directory)
        os.close(fd)
        # One thread at a time uses it, but not always the one that opened it (close()).
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._finalizer = weakref.finalize(self, _remove, db, self.path)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE",
                       f"cache_size=-{int(cache_kib)}", "temp_store=FILE"):
            db.execute(f"PRAGMA {pragma}")
        db.execute("CREATE TABLE keys (digest BLOB NOT NULL, key BLOB NOT NULL, "
                   "row INTEGER NOT NULL, PRIMARY KEY (digest, key)) WITHOUT ROWID")
        self._db = db

    def find(self, digest: bytes, key: bytes) -> int | None:
        """The row stored for ``key``, or ``None``."""
        hit = self._db.execute("SELECT row FROM keys WHERE digest = ? AND key = ?",
                               (digest, key)).fetchone()
        return None if hit is None else int(hit[0])

    def add_many(self, items: Iterable[tuple[bytes, bytes, int]]) -> None:
        """Store ``(digest, key, row)`` triples in one transaction (first one stored wins)."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR IGNORE INTO keys VALUES (?, ?, ?)", items)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close the database and delete its file (idempotent)."""
        self._finalizer()


class _MemoryTable:
    """Open addressing over parallel arrays: no Python object per key.

    ``slots`` holds ordinal + 1 (0 is empty) at <= 50 % load; per ordinal,
    ``hashes`` (64 bits of the digest), ``rows``, and the key's end offset in
    ``arena``, which holds every key's bytes back to back.
    """

    def __init__(self) -> None:
        self.slots = array("I", bytes(4 * 1024))
        self.hashes = array("Q")
        self.rows = array("q")
        self.ends = array("Q")
        self.arena = bytearray()

    def __len__(self) -> int:
        return len(self.rows)

    def key(self, ordinal: int) -> bytes:
        start = self.ends[ordinal - 1] if ordinal else 0
        return bytes(self.arena[start:self.ends[ordinal]])

    def first_row(self, value: int, key: bytes, row: int) -> int:
        """The stored row for ``key`` (hashed to the 64-bit ``value``), or ``row`` after storing it."""
        slots, hashes, ends, arena = self.slots, self.hashes, self.ends, self.arena
        mask = len(slots) - 1
        slot = value & mask
        while (held := slots[slot]) != 0:
            ordinal = held - 1
            if hashes[ordinal] == value:
                start = ends[ordinal - 1] if ordinal else 0
                end = ends[ordinal]
                if end - start == len(key) and arena[start:end] == key:
                    return self.rows[ordinal]
            slot = (slot + 1) & mask
        slots[slot] = len(self.rows) + 1
        hashes.append(value)
        self.rows.append(row)
        arena += key
        ends.append(len(arena))
        if len(self.rows) * 2 > len(slots):
            self._grow()
        return row

    def _grow(self) -> None:
        slots = array("I", bytes(4 * len(self.slots) * 2))
        mask = len(slots) - 1
        for ordinal, value in enumerate(self.hashes):
            slot = value & mask
            while slots[slot]:
                slot = (slot + 1) & mask
            slots[slot] = ordinal + 1
        self.slots = slots

    def items(self, digest: Callable[[bytes], bytes]) -> Iterable[tuple[bytes, bytes, int]]:
        for ordinal in range(len(self.rows)):
            key = self.key(ordinal)
            yield digest(key), key, self.rows[ordinal]


class _Filter:
    """A Bloom filter of 64-bit hashes (4 probes by double hashing).

    "Absent" is certain, "present" only likely.
    """

    def __init__(self, size: int) -> None:
        if size < 1 or size & (size - 1):
            raise ValueError("filter_bytes must be a power of two")
        self._bits = bytearray(size)
        self._mask = 8 * size - 1

    def _probes(self, value: int) -> tuple[int, ...]:
        low, high, mask = value & 0xFFFFFFFF, (value >> 32) | 1, self._mask
        return (low & mask, (low + high) & mask, (low + 2 * high) & mask, (low + 3 * high) & mask)

    def add(self, value: int) -> None:
        bits = self._bits
        for probe in self._probes(value):
            bits[probe >> 3] |= 1 << (probe & 7)

    def __contains__(self, value: int) -> bool:
        bits = self._bits
        return all(bits[probe >> 3] >> (probe & 7) & 1 for probe in self._probes(value))


class KeyIndex:
    """Maps each key value to the row it first appeared in, in bounded memory.

    Args:
        memory_keys: keys held in memory before spilling to ``store``.
        buffer_keys: new keys buffered in memory after the spill, written to
            the store in one transaction when the buffer fills.
        store: makes the :class:`KeyStore` to spill to (default: a
            :class:`SqliteKeyStore` in the system's temporary directory).
        digest: the 16-byte digest keys are filed under (tests inject a
            colliding one).
        filter_bytes: size of the Bloom filter that spares the store a read
            for most new keys after the spill (a power of two).

    Call :meth:`close` (or use it as a context manager) to delete what it spilled.
    """

    def __init__(
        self, *, memory_keys: int = DEFAULT_MEMORY_KEYS, buffer_keys: int = DEFAULT_BUFFER_KEYS,
        store: Callable[[], KeyStore] = SqliteKeyStore,
        digest: Callable[[bytes], bytes] = key_digest,
        filter_bytes: int = DEFAULT_FILTER_BYTES,
    ) -> None:
        if memory_keys < 0 or buffer_keys < 1:
            raise ValueError("memory_keys must be >= 0 and buffer_keys >= 1")
        self._memory_keys = memory_keys
        self._buffer_keys = buffer_keys
        self._make_store = store
        self._filter_bytes = filter_bytes
        self._filter: _Filter | None = None
        self._digest = digest
        self._table: _MemoryTable | None = _MemoryTable()
        self._store: KeyStore | None = None
        self._buffer: dict[bytes, tuple[bytes, int]] = {}
        self._count = 0
        self._closed = False

    def __len__(self) -> int:
        return self._count

    @property
    def spilled(self) -> bool:
        """True once the keys have moved to the store."""
        return self._store is not None

    def first_row(self, key: str, row: int) -> int:
        """The row where ``key`` first appeared; ``row`` itself when it is new."""
        if self._closed:
            raise ValueError("the key index is closed")
        data = key.encode("utf-8", "surrogatepass")
        table = self._table
        if table is not None:
            value = self._value(data)
            before = len(table)
            first = table.first_row(value, data, row)
            if len(table) > before:
                self._count += 1
                if self._count > self._memory_keys:
                    self._spill()
            return first
        held = self._buffer.get(data)
        if held is not None:
            return held[1]
        digest = self._digest(data)
        assert self._store is not None and self._filter is not None
        value = self._value(data)
        if value in self._filter:
            found = self._store.find(digest, data)
            if found is not None:
                return found
        else:
            self._filter.add(value)
        self._buffer[data] = (digest, row)
        self._count += 1
        if len(self._buffer) >= self._buffer_keys:
            self._flush()
        return row

    def _value(self, data: bytes) -> int:
        """The 64-bit hash that places a key in the table and the filter.

        Python's own keyed hash: both live in this process only, and it costs a
        tenth of the digest, which is computed for the store alone. An
        injected digest is used instead, so that tests can make keys collide.
        """
        if self._digest is key_digest:
            return hash(data) & _MASK64
        return int.from_bytes(self._digest(data)[:8], "little")

    def _spill(self) -> None:
        table = self._table
        assert table is not None
        store = self._make_store()  # should this raise (no temporary directory), nothing changed
        try:
            store.add_many(table.items(self._digest))
        except BaseException:
            store.close()
            raise
        self._store, self._table = store, None
        # Only the 64-bit hashes are left when the filter is made: the table and the
        # filter at once would raise the peak memory by the filter's size.
        hashes = table.hashes
        del table
        self._filter = _Filter(self._filter_bytes)
        for value in hashes:
            self._filter.add(value)

    def _flush(self) -> None:
        assert self._store is not None
        # Sorted by digest: consecutive inserts land on neighbouring pages of the file.
        items = sorted((d, k, r) for k, (d, r) in self._buffer.items())
        self._store.add_many(items)
        self._buffer.clear()

    def close(self) -> None:
        """Drop every key and delete the spilled store, if any (idempotent)."""
        self._closed = True
        self._table = None
        self._filter = None
        self._buffer.clear()
        store, self._store = self._store, None
        if store is not None:
            store.close()

    def __enter__(self) -> KeyIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
