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

    def set_row(self, row: int, times, ids, reposted, wires, needs_follow=None, addressee=None) -> None:
        """Cells 0..k-1 from the given sequences (k <= width), the rest emptied."""
        k = len(times)
        if k:
            self.times[row, :k] = times
            self.ids[row, :k] = ids
            self.reposted[row, :k] = reposted
            self.wires[row, :k] = wires
            if needs_follow is not None:
                self.needs_follow[row, :k] = needs_follow
                self.addressee[row, :k] = addressee
        if k < self.width:
            self.times[row, k:] = EMPTY_TIME
            self.wires[row, k:] = None
            self.needs_follow[row, k:] = False
