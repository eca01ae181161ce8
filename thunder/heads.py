"""Per-author heads: each followed author's newest candidate entries of one kind, as matrices.

The in-network query touches a few hundred authors and about two thousand entries. Read one
Python object at a time (timeline, array, record, then the record's encoding) on a store of a
million posts, that is a cache miss each, serialized by the interpreter: a few milliseconds.
Heads hold the same entries in one row per author (creation time, id, reposted author, the
reply's addressee when eligibility depends on the viewer's following, the encoded post), so
the query gathers all followed rows with a handful of numpy operations.

A row is a cache of the author's timeline: the PostStore marks an author dirty whenever
something its rows depend on changes (its timelines, a post's encoding, the state of a
replied-to post) and rewrites the row before a query reads it.
"""
from __future__ import annotations

import numpy as np

EMPTY_TIME = -np.inf   # an unused cell: older than any bound, so never selected


class Heads:
    """Rows of `width` cells; cells of a row in no particular order."""

    __slots__ = ("width", "times", "ids", "reposted", "needs_follow", "addressee", "wires")

    def __init__(self, width: int, rows: int = 1024) -> None:
        self.width = width
        self.times = np.full((rows, width), EMPTY_TIME)
        self.ids = np.zeros((rows, width), np.uint64)
        self.reposted = np.zeros((rows, width), np.uint64)       # 0: not a repost
        # A reply to a reply: eligible only if this user (the reply's addressee) is followed.
        self.needs_follow = np.zeros((rows, width), bool)
        self.addressee = np.zeros((rows, width), np.uint64)
        self.wires = np.empty((rows, width), object)

    def grow(self, rows: int) -> None:
        old = self.times.shape[0]
        if rows <= old:
            return
        size = max(rows, 2 * old)
        pad = size - old
        self.times = np.concatenate([self.times, np.full((pad, self.width), EMPTY_TIME)])
        self.ids = np.concatenate([self.ids, np.zeros((pad, self.width), np.uint64)])
        self.reposted = np.concatenate([self.reposted, np.zeros((pad, self.width), np.uint64)])
        self.needs_follow = np.concatenate([self.needs_follow, np.zeros((pad, self.width), bool)])
        self.addressee = np.concatenate([self.addressee, np.zeros((pad, self.width), np.uint64)])
        self.wires = np.concatenate([self.wires, np.empty((pad, self.width), object)])

    def write(self, rows: list[int], cells: "Cells") -> None:
        """Empty these rows, then fill the given cells (batched: one numpy call per matrix)."""
        self.times[rows] = EMPTY_TIME
        self.wires[rows] = None
        self.needs_follow[rows] = False
        if not cells.rows:
            return
        at = (np.array(cells.rows, np.intp), np.array(cells.columns, np.intp))
        self.times[at] = cells.times
        self.ids[at] = cells.ids
        self.reposted[at] = cells.reposted
        wires = np.empty(len(cells.wires), object)
        wires[:] = cells.wires
        self.wires[at] = wires
        if cells.needs_follow:
            self.needs_follow[at] = cells.needs_follow
            self.addressee[at] = cells.addressee


class Cells:
    """Cells to write into Heads, gathered per author in flat lists."""

    __slots__ = ("rows", "columns", "times", "ids", "reposted", "wires", "needs_follow", "addressee")

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.columns: list[int] = []
        self.times: list[float] = []
        self.ids: list[int] = []
        self.reposted: list[int] = []
        self.wires: list[bytes] = []
        self.needs_follow: list[bool] = []   # left empty for heads whose cells never need it
        self.addressee: list[int] = []

    def add_tail(self, row: int, timeline, width: int) -> None:
        """The newest `width` entries of an ordered timeline (or None)."""
        n = len(timeline) if timeline is not None else 0
        k = min(n, width)
        if k:
            self.rows += [row] * k
            self.columns += range(k)
            self.times += timeline.times[n - k:]
            self.ids += timeline.ids[n - k:]
            self.reposted += timeline.reposted[n - k:]
            self.wires += [rec.wire for rec in timeline.recs[n - k:]]
