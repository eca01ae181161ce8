"""The in-network query: recent eligible posts of the followed authors, newest first
(docs/thunder.md), read from the store's head cache (heads.py).

1. The followed authors' head rows (rewritten first where stale), found at once.
2. Originals (or videos): per row, the newest `cap` cells not older than `min_created_at_ms`
   that the viewer may see (`_Query.select`: excluded cells, and for videos reposts of the
   viewer's posts, are skipped; an author whose row runs out of cells is walked the exact way).
3. If they alone exceed `max_results`, the max_results-th newest is a lower bound: older
   candidates (originals or secondary) cannot make the answer.
4. Replies and reposts newer than the bound, the same way (also skipping reposts of the
   viewer's posts, and replies to replies addressed to someone not followed).
5. Sort, cut to `max_results`, read the encodings of the answer.

`reference.py` answers the same query by brute force; the tests check this one against it.
"""
from __future__ import annotations

from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from thunder.heads import Heads
from thunder.id_tables import Exclusions, IdSet, as_array, members
from thunder.records import IF_FOLLOWED, INELIGIBLE, StoredPost, Timeline, reply_check

if TYPE_CHECKING:
    from thunder.post_store import PostStore


@dataclass(frozen=True)
class InNetworkQuery:
    viewer_id: int
    following: Iterable[int]                  # authors to read, no repeats (an IdSet is fastest)
    following_set: Container[int]             # membership test for reply eligibility
    exclude: frozenset[int] | set[int] | IdSet = frozenset()
    max_results: int = 1200
    min_created_at_ms: int = 0                # posts created before this are not returned
    video_only: bool = False


def in_network(store: PostStore, q: InNetworkQuery, want_wires: bool) -> tuple[list[int], list[bytes]]:
    """Post ids, or their encodings if `want_wires`, newest first."""
    rows = store.heads.rows(store, as_array(q.following))
    if not len(rows):
        return [], []
    query = _Query(store, q, rows)
    query.primary()
    query.secondary()
    return query.answer(want_wires)


Walk = Callable[[int], list[StoredPost]]   # author -> the posts a walk of its timeline takes


class _Query:
    """One query's state: the cells selected so far (rows, columns, heads, times) and the posts
    walked, in the order collected (which breaks ties between equal creation times)."""

    def __init__(self, store: PostStore, q: InNetworkQuery, rows: np.ndarray) -> None:
        self.store, self.q, self.rows = store, q, rows
        self.exclude = Exclusions(q.exclude) if q.exclude else None
        self.max_scan = store.query_limits.max_scan_per_author
        self.bound = float(q.min_created_at_ms)
        self.found: list[tuple[np.ndarray, np.ndarray, Heads, np.ndarray]] = []
        self.walked: list[StoredPost] = []

    def primary(self) -> None:
        """Originals (or videos), and the bound they set when they alone exceed max_results."""
        q, store, limits = self.q, self.store, self.store.query_limits
        if q.video_only:
            heads, cap, timelines = store.heads.videos, limits.max_videos_per_author, store.videos
        else:
            heads, cap, timelines = store.heads.originals, limits.max_originals_per_author, store.originals
        if cap <= 0:
            return
        # Only video timelines hold reposts (for originals the check would be a no-op).
        at_rows, columns, picked, walked = self.select(
            heads, cap, (q.viewer_id or None) if q.video_only else None, None,
            lambda author: self.walk_plain(timelines[author], cap))
        n = len(picked) + len(walked)
        if n > q.max_results:
            picked_all = np.concatenate([picked, _times(walked)]) if walked else picked
            kth = n - q.max_results
            self.bound = max(self.bound, float(np.partition(picked_all, kth)[kth]))
            keep = picked >= self.bound
            at_rows, columns, picked = at_rows[keep], columns[keep], picked[keep]
            walked = [rec for rec in walked if rec.created_at_ms >= self.bound]
        self.found.append((at_rows, columns, heads, picked))
        self.walked = walked

    def secondary(self) -> None:
        """Replies and reposts not older than the bound."""
        q, store = self.q, self.store
        cap = store.query_limits.max_secondary_per_author
        if q.video_only or cap <= 0:
            return
        # (viewer 0 reposts nothing: the walk reads `reposted` 0 as "not a repost")
        at_rows, columns, picked, more = self.select(
            store.heads.secondary, cap, q.viewer_id or None, q.following_set,
            lambda author: self.walk_secondary(store.secondary[author], cap))
        self.found.append((at_rows, columns, store.heads.secondary, picked))
        self.walked += more

    def answer(self, want_wires: bool) -> tuple[list[int], list[bytes]]:
        found, walked = self.found, self.walked
        if not found and not walked:
            return [], []
        times = [t for _, _, _, t in found]
        if walked:
            times.append(_times(walked))
        # Newest first; equal times keep the order collected (per author newest first by id).
        order = np.argsort(-np.concatenate(times), kind="stable")[:self.q.max_results]
        if not want_wires:
            ids = [h.ids[r, c] for r, c, h, _ in found]
            if walked:
                ids.append(np.array([rec.post_id for rec in walked], dtype=np.uint64))
            return np.concatenate(ids)[order].tolist(), []
        return [], self._wires(order)

    def _wires(self, order: np.ndarray) -> list[bytes]:
        """Encodings of the answer only (each read is a cache miss on a large store)."""
        wires = np.empty(len(order), object)
        start = 0
        for r, c, heads, t in self.found:
            end = start + len(t)
            mine = (order >= start) & (order < end)
            cells = order[mine] - start
            wires[mine] = heads.wires[r[cells], c[cells]]
            start = end
        if self.walked:
            mine = order >= start
            wires[mine] = [self.walked[i].wire for i in (order[mine] - start).tolist()]
        return wires.tolist()

    def select(self, heads: Heads, cap: int, viewer: int | None, following: Container[int] | None, walk: Walk
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[StoredPost]]:
        """Per row, the newest `cap` cells not older than the bound that a walk would take for
        this viewer: (rows, columns, times) of the cells, and the posts of the authors whose
        rows ran short, walked the exact way (`walk(author)`)."""
        rows, bound, exclude = self.rows, self.bound, self.exclude
        times = heads.times[rows, :cap]
        r, c = np.nonzero(times >= bound)
        bad = _unusable(heads, rows[r], c, exclude, viewer, following)
        if bad is None or not bad.any():
            return rows[r], c, times[r, c], []   # the common case: nothing to skip
        # Rows with a cell to skip: read in full, take the newest `cap` usable cells.
        redo = np.zeros(len(rows), bool)
        redo[r[bad]] = True
        keep = ~redo[r]
        r, c = r[keep], c[keep]
        sub = rows[redo]
        sub_times = heads.times[sub]
        valid = sub_times >= bound
        bad = _unusable(heads, sub[:, None], np.arange(heads.width)[None, :], exclude, viewer, following)
        take, short = _take(heads, sub, valid, valid if bad is None else valid & ~bad, cap)
        r2, c2 = np.nonzero(take)
        walked: list[StoredPost] = []
        if short is not None:
            row_authors = self.store.heads.row_authors
            for row in sub[short].tolist():
                walked += walk(row_authors[row])
        return (np.concatenate([rows[r], sub[r2]]), np.concatenate([c, c2]),
                np.concatenate([times[r, c], sub_times[r2, c2]]), walked)

    def walk_plain(self, timeline: Timeline, cap: int) -> list[StoredPost]:
        """Originals or videos of one author, the exact way: newest first, skipping excluded
        posts and reposts of the viewer's own posts (only video timelines hold reposts)."""
        reposted, viewer = timeline.reposted, self.q.viewer_id
        return self._walk(timeline, cap, self.q.min_created_at_ms, lambda i: not (viewer and reposted[i] == viewer))

    def walk_secondary(self, timeline: Timeline, cap: int) -> list[StoredPost]:
        """Replies and reposts of one author not older than the bound, the exact way: newest
        first; a repost unless it reposts the viewer's own post; a reply as `reply_check`
        says (and, answering a reply, only when addressed to an account the viewer follows)."""
        reposted, recs, viewer, following = timeline.reposted, timeline.recs, self.q.viewer_id, self.q.following_set
        posts = self.store.posts

        def keep(i: int) -> bool:
            if reposted[i]:
                return reposted[i] != viewer
            check = reply_check(recs[i], posts)
            return check != INELIGIBLE and not (check == IF_FOLLOWED and recs[i].reply_to_user_id not in following)
        return self._walk(timeline, cap, self.bound, keep)

    def _walk(self, timeline: Timeline, cap: int, oldest_ms: float, keep: Callable[[int], bool]) -> list[StoredPost]:
        """Newest first, at most `max_scan` entries, none older than `oldest_ms`: the first `cap`
        entries not excluded by the request that `keep(index)` takes."""
        t, ids, recs, exclude = timeline.times, timeline.ids, timeline.recs, self.q.exclude
        n = len(t)
        out: list[StoredPost] = []
        for i in range(n - 1, max(-1, n - 1 - self.max_scan), -1):
            if t[i] < oldest_ms:
                break
            if exclude and ids[i] in exclude:
                continue
            if keep(i):
                out.append(recs[i])
                if len(out) == cap:
                    break
        return out


def _times(recs: list[StoredPost]) -> np.ndarray:
    return np.array([rec.created_at_ms for rec in recs])


def _unusable(heads: Heads, at_rows: np.ndarray, at_columns: np.ndarray, exclude: Exclusions | None,
              viewer: int | None, following: Container[int] | None) -> np.ndarray | None:
    """Which of these cells (index arrays, broadcast) a walk would skip for this viewer:
    excluded, reposting the viewer's post (if `viewer`), a reply addressed to an unfollowed
    account (if `following`). None: no check applied."""
    bad = None
    if exclude is not None:
        bad = exclude.hits(heads.ids[at_rows, at_columns])
    if viewer is not None:
        assert heads.reposted is not None
        mine = heads.reposted[at_rows, at_columns] == viewer
        if mine.any():
            bad = mine if bad is None else bad | mine
    if following is not None:
        bad = _unfollowed(heads, at_rows, at_columns, following, bad)
    return bad


def _unfollowed(heads: Heads, at_rows: np.ndarray, at_columns: np.ndarray, following: Container[int],
                bad: np.ndarray | None) -> np.ndarray | None:
    """`bad`, plus the cells that are replies addressed to an account the viewer does not follow."""
    assert heads.needs_follow is not None and heads.addressee is not None
    check = heads.needs_follow[at_rows, at_columns]
    if not check.any():
        return bad
    at = np.flatnonzero(check)
    unfollowed = ~members(following, heads.addressee[at_rows, at_columns].reshape(-1)[at])
    if unfollowed.any():
        if bad is None:
            bad = np.zeros(check.shape, bool)
        bad.reshape(-1)[at[unfollowed]] = True
    return bad


def _take(heads: Heads, rows: np.ndarray, valid: np.ndarray, usable: np.ndarray, cap: int
          ) -> tuple[np.ndarray, np.ndarray | None]:
    """Per row the newest `cap` usable cells, and the rows (None: none) that ran short while
    their timeline may hold more: a walk must answer for those."""
    rank = np.cumsum(usable, axis=1)
    take = usable & (rank <= cap)
    short = (rank[:, -1] < cap) & valid[:, -1] & ~heads.complete[rows]
    if not short.any():
        return take, None
    take[short] = False
    return take, short
