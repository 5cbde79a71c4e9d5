"""A compact record of the sync-key values an input has already had.

Spotting a repeated key needs every earlier key, so this is the one part of
a sync that grows with the input. A ``dict`` of key strings costs ~145 bytes
per row; this open-addressing table of 64-bit digests and row numbers costs
~32, so a sync of millions of rows stays within a few tens of megabytes.
Two different keys share a 64-bit digest with odds of about n²/2⁶⁵ (one in
ten million for a million rows); such a row would be reported as a duplicate.
"""

from __future__ import annotations

from array import array
from hashlib import blake2b

__all__ = ["KeyIndex"]


class KeyIndex:
    """Maps each key value to the row it first appeared in."""

    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < capacity * 2:
            size *= 2
        self._digests = array("Q", bytes(8 * size))
        self._rows = array("Q", bytes(8 * size))
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def first_row(self, key: str, row: int) -> int:
        """The row where ``key`` first appeared; ``row`` itself when it is new."""
        digest = int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "little") | 1
        found = self._probe(digest)
        if self._digests[found] == digest:
            return self._rows[found]
        self._digests[found] = digest
        self._rows[found] = row
        self._count += 1
        if self._count * 2 > len(self._digests):
            self._grow()
        return row

    def _probe(self, digest: int) -> int:
        digests = self._digests
        mask = len(digests) - 1
        slot = digest & mask
        while digests[slot] not in (0, digest):
            slot = (slot + 1) & mask
        return slot

    def _grow(self) -> None:
        old_digests, old_rows = self._digests, self._rows
        size = len(old_digests) * 2
        self._digests = array("Q", bytes(8 * size))
        self._rows = array("Q", bytes(8 * size))
        for position, digest in enumerate(old_digests):
            if digest:
                slot = self._probe(digest)
                self._digests[slot] = digest
                self._rows[slot] = old_rows[position]
