"""Id tables in numpy arrays, so that a query tests or looks up all its ids at once (a Python
set or dict probe per id costs a few cache misses each on a large store):
- RowIndex: author id -> head row, an open-addressing hash table;
- IdSet: a request's distinct ids as a sorted array, with set membership;
- Exclusions: a request's excluded post ids as a bit table, exact for the cells it flags.
"""
from __future__ import annotations

from collections.abc import Container, Iterable, Iterator

import numpy as np

FIBONACCI = np.uint64(0x9E3779B97F4A7C15)   # Fibonacci hashing: spreads ids whatever their low bits


class RowIndex:
    """Author id -> head row. Rows are never removed."""

    __slots__ = ("keys", "rows", "bits", "count")

    def __init__(self, bits: int = 12) -> None:
        self.bits = bits
        self.keys = np.zeros(1 << bits, np.uint64)
        self.rows = np.full(1 << bits, -1, np.intp)   # -1: empty slot
        self.count = 0

    def _slot(self, key: int) -> int:
        return ((key * int(FIBONACCI)) & 0xFFFF_FFFF_FFFF_FFFF) >> (64 - self.bits)  # as `lookup` does

    def add(self, key: int, row: int) -> None:
        if 2 * (self.count + 1) > len(self.rows):
            self._grow()
        mask = len(self.rows) - 1
        slot = self._slot(key)
        while self.rows[slot] != -1:
            slot = (slot + 1) & mask
        self.keys[slot] = key
        self.rows[slot] = row
        self.count += 1

    def _grow(self) -> None:
        keys, rows = self.keys[self.rows != -1], self.rows[self.rows != -1]
        self.__init__(self.bits + 1)  # type: ignore[misc]
        for key, row in zip(keys.tolist(), rows.tolist()):
            self.add(key, row)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Rows of these ids (uint64), -1 where unknown."""
        out = np.full(len(keys), -1, np.intp)
        mask = np.uint64(len(self.rows) - 1)
        slots = (keys * FIBONACCI) >> np.uint64(64 - self.bits)
        pending = np.arange(len(keys))
        while len(pending):
            rows = self.rows[slots]
            found = (self.keys[slots] == keys[pending]) & (rows != -1)
            out[pending[found]] = rows[found]
            probing = ~found & (rows != -1)
            pending, slots = pending[probing], (slots[probing] + np.uint64(1)) & mask
        return out


class IdSet:
    """Distinct ids as a sorted uint64 array, with set membership. Built straight from a
    request's repeated field (`np.array` reads it in a few microseconds, where making a
    Python set of it costs about 0.1 ms per thousand ids)."""

    __slots__ = ("array",)

    def __init__(self, ids: Iterable[int]) -> None:
        array_ = np.array(ids, dtype=np.uint64)
        array_.sort()
        if len(array_) > 1:  # (np.unique costs several times more on small arrays)
            array_ = array_[np.concatenate(([True], array_[1:] != array_[:-1]))]
        self.array = array_

    def contains(self, values: np.ndarray) -> np.ndarray:
        """Membership of each of these uint64 values."""
        array_ = self.array
        if not len(array_):
            return np.zeros(len(values), bool)
        pos = np.searchsorted(array_, values)
        np.minimum(pos, len(array_) - 1, out=pos)
        return array_[pos] == values

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, (int, np.integer)):
            return False
        i = int(np.searchsorted(self.array, value))   # (only on walks: rare)
        return i < len(self.array) and int(self.array[i]) == value

    def __len__(self) -> int:
        return len(self.array)

    def __iter__(self) -> Iterator[int]:
        return iter(self.array.tolist())


def as_array(ids: Iterable[int]) -> np.ndarray:
    """These ids as a uint64 array (an IdSet's own array, without a copy)."""
    return ids.array if isinstance(ids, IdSet) else np.fromiter(ids, np.uint64)


def members(ids: Container, values: np.ndarray) -> np.ndarray:
    """Membership in `ids` (an IdSet, or any container) of each of these uint64 values."""
    if isinstance(ids, IdSet):
        return ids.contains(values)
    return np.array([v in ids for v in values.tolist()], bool)


class Exclusions:
    """A request's excluded ids, tested over whole matrices of ids: a bit table (one gather,
    a few false positives) and then the exact set for the few cells it flags. Binary
    searches over every cell cost more than the rest of the query at 2,000 follows."""

    __slots__ = ("ids", "table", "shift")

    def __init__(self, ids: frozenset[int] | set[int] | IdSet) -> None:
        self.ids = ids
        bits = max(12, min(20, (len(ids) * 64).bit_length()))   # false positives ~1/64 per cell
        self.shift = np.uint64(64 - bits)
        self.table = np.zeros(1 << bits, bool)
        array_ = ids.array if isinstance(ids, IdSet) else np.fromiter(ids, np.uint64, count=len(ids))
        self.table[(array_ * FIBONACCI) >> self.shift] = True

    def hits(self, ids: np.ndarray) -> np.ndarray | None:
        """Which of these ids (any shape) are excluded (None: none are)."""
        maybe = self.table[(ids * FIBONACCI) >> self.shift]
        if not maybe.any():
            return None
        at = np.flatnonzero(maybe)
        wrong = ~members(self.ids, ids.reshape(-1)[at])
        maybe.reshape(-1)[at[wrong]] = False
        return maybe
