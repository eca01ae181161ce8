"""Rows grouped by a key (a user, a (user, post) pair) and time-ordered within each group, with
vectorised look-ups: 'the group's rows before time t' and 'its first row at or after t'.

Both are one `searchsorted` over a composite key (dense group index in the high 32 bits, the
rank of the row's time among the distinct times in the low 32), so a look-up costs no Python
per row and the table holds three integers per row."""
from __future__ import annotations

import numpy as np

_LOW = np.uint64(32)


class Timeline:
    def __init__(self, keys: np.ndarray, times: np.ndarray, rows: np.ndarray | None = None) -> None:
        """`keys`, `times`: one per row; `rows`: each row's index in the source columns (default
        0..n-1). Ties in (key, time) keep their source order."""
        keys = np.asarray(keys, np.uint64)
        times = np.asarray(times, np.int64)
        rows = np.arange(len(keys)) if rows is None else np.asarray(rows, np.int64)
        order = np.lexsort((times, keys))  # stable
        self.rows = rows[order]        # source row of each sorted position
        self.times = times[order]
        self.groups, first = np.unique(keys[order], return_index=True)
        self.starts = np.append(first, len(order)).astype(np.int64)
        self.distinct_times = np.unique(self.times)
        if len(self.groups) >= 2**31 or len(self.distinct_times) >= 2**32:
            raise ValueError("too many groups or distinct times for one timeline")
        group = np.repeat(np.arange(len(self.groups), dtype=np.uint64), np.diff(self.starts))
        self._composite = (group << _LOW) | np.searchsorted(self.distinct_times, self.times).astype(np.uint64)

    def __len__(self) -> int:
        return len(self.rows)

    def _group(self, keys) -> tuple[np.ndarray, np.ndarray]:
        keys = np.asarray(keys, np.uint64)
        g = np.minimum(np.searchsorted(self.groups, keys), max(len(self.groups) - 1, 0))
        found = self.groups[g] == keys if len(self.groups) else np.zeros(keys.shape, bool)
        return g, found

    def _first_at(self, g: np.ndarray, times) -> np.ndarray:
        """Sorted position of group g's first row with time >= t (its end when none)."""
        rank = np.searchsorted(self.distinct_times, np.asarray(times, np.int64)).astype(np.uint64)
        return np.searchsorted(self._composite, (g.astype(np.uint64) << _LOW) | rank).astype(np.int64)

    def before(self, keys, times, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) sorted positions of each key's rows with time < t: the last `limit` of them
        when given (lo == hi: none)."""
        g, found = self._group(keys)
        if not len(self.groups):
            zero = np.zeros(np.shape(keys), np.int64)
            return zero, zero
        hi = np.where(found, self._first_at(g, times), 0)
        lo = np.where(found, self.starts[g], 0)
        if limit is not None:
            lo = np.maximum(lo, hi - limit)
        return lo, hi

    def first_at_or_after(self, keys, times) -> np.ndarray:
        """Sorted position of each key's first row with time >= t; -1 when there is none."""
        g, found = self._group(keys)
        if not len(self.groups):
            return np.full(np.shape(keys), -1, np.int64)
        pos = self._first_at(g, times)
        return np.where(found & (pos < self.starts[np.minimum(g + 1, len(self.groups))]), pos, -1)

    def last(self) -> tuple[np.ndarray, np.ndarray]:
        """(keys, sorted position of each group's last row)."""
        return self.groups, self.starts[1:] - 1


def windows(lo: np.ndarray, hi: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """([B, width] positions, [B, width] valid) of rows lo..hi-1 (hi - lo <= width), left-aligned
    and padded after (invalid slots point at position 0)."""
    idx = np.asarray(lo, np.int64)[:, None] + np.arange(width)
    valid = idx < np.asarray(hi, np.int64)[:, None]
    return np.where(valid, idx, 0), valid
