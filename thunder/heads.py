"""Per-author heads: each author's newest candidate entries of one kind, as matrices.

The in-network query touches a few hundred authors and a few thousand entries. Read one
Python object at a time (timeline, array, record, then the record's encoding) on a store of a
million posts, that is a cache miss each, serialized by the interpreter: milliseconds. Heads
hold the same entries in one row per author (creation time, id, reposted author, the reply's
addressee where eligibility depends on the viewer's following, the encoded post), newest
first, a few more than the per-author cap, so the query selects each author's entries for a
viewer (skipping excluded ones and the like) with a handful of numpy operations over all the
followed rows at once, and walks a timeline only when a row runs out of cells.

A row is a cache of the author's timelines: the PostStore marks an author dirty whenever
something its rows depend on changes (its timelines, a post's encoding, the state of a
replied-to post) and rewrites the row before a query reads it.
"""
from __future__ import annotations

import numpy as np

EMPTY_TIME = -np.inf   # an unused cell: older than any bound, so never selected


class Heads:
    """Rows of `width` cells, newest first. `complete[row]`: the row holds every entry a walk
    of that author's timeline could reach, so a walk would find nothing more."""

    __slots__ = ("width", "times", "ids", "reposted", "needs_follow", "addressee", "wires", "complete")

    def __init__(self, width: int, reposts: bool, replies: bool, rows: int = 1024) -> None:
        """`reposts`: cells may be reposts (keeps `reposted`); `replies`: cells may be replies
        whose eligibility depends on the viewer (keeps `needs_follow` and `addressee`)."""
        self.width = width
        self.times = np.full((rows, width), EMPTY_TIME)
        self.ids = np.zeros((rows, width), np.uint64)
        self.reposted = np.zeros((rows, width), np.uint64) if reposts else None   # 0: not a repost
        # A reply to a reply: eligible only if this user (the reply's addressee) is followed.
        self.needs_follow = np.zeros((rows, width), bool) if replies else None
        self.addressee = np.zeros((rows, width), np.uint64) if replies else None
        self.wires = np.empty((rows, width), object)
        self.complete = np.ones(rows, bool)

    def grow(self, rows: int) -> None:
        old = self.times.shape[0]
        if rows <= old:
            return
        pad = max(rows, 2 * old) - old
        shape = (pad, self.width)
        self.times = np.concatenate([self.times, np.full(shape, EMPTY_TIME)])
        self.ids = np.concatenate([self.ids, np.zeros(shape, np.uint64)])
        if self.reposted is not None:
            self.reposted = np.concatenate([self.reposted, np.zeros(shape, np.uint64)])
        if self.needs_follow is not None:
            self.needs_follow = np.concatenate([self.needs_follow, np.zeros(shape, bool)])
            self.addressee = np.concatenate([self.addressee, np.zeros(shape, np.uint64)])
        self.wires = np.concatenate([self.wires, np.empty(shape, object)])
        self.complete = np.concatenate([self.complete, np.ones(pad, bool)])

    def write(self, rows: list[int], cells: Cells) -> None:
        """Empty these rows, then fill the given cells (batched: one numpy call per matrix)."""
        self.times[rows] = EMPTY_TIME
        self.wires[rows] = None
        if self.needs_follow is not None:
            self.needs_follow[rows] = False
        self.complete[rows] = True
        if cells.incomplete:
            self.complete[cells.incomplete] = False
        if not cells.rows:
            return
        at = (np.array(cells.rows, np.intp), np.array(cells.columns, np.intp))
        self.times[at] = cells.times
        self.ids[at] = cells.ids
        if self.reposted is not None:
            self.reposted[at] = cells.reposted
        wires = np.empty(len(cells.wires), object)
        wires[:] = cells.wires
        self.wires[at] = wires
        if self.needs_follow is not None:
            self.needs_follow[at] = cells.needs_follow
            self.addressee[at] = cells.addressee


class Cells:
    """Cells to write into Heads, gathered per author in flat lists."""

    __slots__ = ("rows", "columns", "times", "ids", "reposted", "wires", "needs_follow", "addressee",
                 "incomplete")

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.columns: list[int] = []
        self.times: list[float] = []
        self.ids: list[int] = []
        self.reposted: list[int] = []
        self.wires: list[bytes] = []
        self.needs_follow: list[bool] = []   # left empty for heads whose cells never need it
        self.addressee: list[int] = []
        self.incomplete: list[int] = []      # rows whose timeline holds more than the row

    def add_tail(self, row: int, timeline, width: int, reposts: bool) -> None:
        """The newest `width` entries of an ordered timeline (or None), newest first (read
        oldest first, written to the columns in reverse)."""
        n = len(timeline) if timeline is not None else 0
        k = min(n, width)
        if k:
            self.rows += [row] * k
            self.columns += range(k - 1, -1, -1)
            self.times += timeline.times[n - k:]
            self.ids += timeline.ids[n - k:]
            if reposts:
                self.reposted += timeline.reposted[n - k:]
            self.wires += [rec.wire for rec in timeline.recs[n - k:]]
            if n > k:
                self.incomplete.append(row)


FIBONACCI = np.uint64(0x9E3779B97F4A7C15)   # Fibonacci hashing: spreads ids whatever their low bits


class RowIndex:
    """Author id -> head row, an open-addressing hash table in numpy arrays so that the
    query looks up all followed authors at once (a dict probe per author costs a few cache
    misses each on a large store). Rows are never removed."""

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
        self.__init__(self.bits + 1)
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
