"""Per-author heads: each author's newest candidate entries of one kind, as matrices.

The in-network query touches a few hundred authors and a few thousand entries. Read one
Python object at a time (timeline, array, record, then the record's encoding) on a store of a
million posts, that is a cache miss each, serialized by the interpreter: milliseconds. Heads
hold the same entries in one row per author (creation time, id, reposted author, the reply's
addressee where eligibility depends on the viewer's following, the encoded post), newest
first, a few more than the per-author cap, so the query selects each author's entries for a
viewer (skipping excluded ones and the like) with a handful of numpy operations over all the
followed rows at once, and walks a timeline only when a row runs out of cells.

A row is a cache of the author's timelines (HeadCache): the PostStore marks an author dirty
whenever something its rows depend on changes (its timelines, a post's encoding, the state of
a replied-to post), and the row is rewritten before a query reads it.
"""
from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np

from thunder.id_tables import RowIndex
from thunder.records import IF_FOLLOWED, INELIGIBLE, Timeline, reply_check
from thunder.settings import QueryLimits

if TYPE_CHECKING:
    from thunder.post_store import PostStore

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
        if self.needs_follow is not None and self.addressee is not None:
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

    def add_picked(self, row: int, timeline: Timeline, chosen: list[int], follows: list[bool]) -> None:
        """These entries (indices) of a timeline, in columns 0.. in the order given."""
        picked = [timeline.recs[i] for i in chosen]
        self.rows += [row] * len(chosen)
        self.columns += range(len(chosen))
        self.times += [timeline.times[i] for i in chosen]
        self.ids += [timeline.ids[i] for i in chosen]
        self.reposted += [timeline.reposted[i] for i in chosen]
        self.wires += [rec.wire for rec in picked]
        self.needs_follow += follows
        self.addressee += [rec.reply_to_user_id for rec in picked]

    def add_tail(self, row: int, timeline: Timeline | None, width: int, reposts: bool) -> None:
        """The newest `width` entries of an ordered timeline (or None), newest first (read
        oldest first, written to the columns in reverse)."""
        n = len(timeline) if timeline is not None else 0
        k = min(n, width)
        if timeline is not None and k:
            self.rows += [row] * k
            self.columns += range(k - 1, -1, -1)
            self.times += timeline.times[n - k:]
            self.ids += timeline.ids[n - k:]
            if reposts:
                self.reposted += timeline.reposted[n - k:]
            self.wires += [rec.wire for rec in timeline.recs[n - k:]]
            if n > k:
                self.incomplete.append(row)


class HeadCache:
    """The three Heads of a store (originals; secondary = replies and reposts; videos), one row
    per author in each, and the authors whose rows are stale (`dirty`)."""

    def __init__(self, limits: QueryLimits) -> None:
        self.index = RowIndex()
        self.row_authors: list[int] = []
        self.dirty: set[int] = set()
        self.max_scan = limits.max_scan_per_author
        spare = max(0, limits.head_spare_per_author)
        self.originals = Heads(max(1, limits.max_originals_per_author + spare), reposts=False, replies=False)
        self.secondary = Heads(max(1, limits.max_secondary_per_author + spare), reposts=True, replies=True)
        self.videos = Heads(max(1, limits.max_videos_per_author + spare), reposts=True, replies=False)

    def rows(self, store: PostStore, authors: np.ndarray) -> np.ndarray:
        """The rows of these authors (uint64 ids) that have one, rewritten first where stale."""
        if self.dirty:
            stale = self.dirty.intersection(authors.tolist())
            if stale:
                self.refresh(store, stale)
        rows = self.index.lookup(authors)
        return rows[rows >= 0]

    def refresh(self, store: PostStore, authors: Collection[int]) -> None:
        """Rewrite the rows of these authors from their timelines (which are ordered)."""
        row_authors = self.row_authors
        known = self.index.lookup(np.fromiter(authors, np.uint64)).tolist()
        originals, secondary, videos = Cells(), Cells(), Cells()
        o_width, v_width = self.originals.width, self.videos.width
        written = []
        for author, row in zip(authors, known):
            if row < 0:
                row = len(row_authors)
                self.index.add(author, row)
                row_authors.append(author)
                for heads in (self.originals, self.secondary, self.videos):
                    heads.grow(row + 1)
            written.append(row)
            originals.add_tail(row, store.originals.get(author), o_width, reposts=False)
            videos.add_tail(row, store.videos.get(author), v_width, reposts=True)
            self._add_secondary(secondary, row, store.secondary.get(author), store)
        self.originals.write(written, originals)
        self.secondary.write(written, secondary)
        self.videos.write(written, videos)
        self.dirty.difference_update(authors)

    def _add_secondary(self, cells: Cells, row: int, timeline: Timeline | None, store: PostStore) -> None:
        """The newest entries eligible for some viewer, within the scan limit (what a walk
        takes, for a viewer none of them is excluded for)."""
        if not timeline:
            return
        width, posts = self.secondary.width, store.posts
        recs, reposted, n = timeline.recs, timeline.reposted, len(timeline)
        stop = max(-1, n - 1 - self.max_scan)
        chosen: list[int] = []
        follows: list[bool] = []
        for i in range(n - 1, stop, -1):
            if reposted[i]:
                follows.append(False)
            else:
                check = reply_check(recs[i], posts)
                if check == INELIGIBLE:
                    continue
                follows.append(check == IF_FOLLOWED)
            chosen.append(i)
            if len(chosen) == width:
                if i - 1 > stop:
                    cells.incomplete.append(row)
                break
        if chosen:
            cells.add_picked(row, timeline, chosen, follows)
