"""The post store: every post created within the retention window, indexed by author.

Layout (chosen for the in-network query, see `_in_network`):
- `posts`: post id -> StoredPost: the few fields eligibility reads, in slots (several times
  faster to read than protobuf fields), and the post already encoded as a response entry
  (`wire`), so answering is a bytes join instead of building and serializing messages.
- per author, three Timelines (originals; secondary = replies and reposts; videos), ordered
  oldest -> newest by (created_at_ms, post_id), with creation times, ids and reposted authors
  in parallel arrays: the source of truth, appended to in O(1).
- per author, a row in three Heads (heads.py): the newest candidates of each timeline, a few
  beyond the per-author cap, as numpy matrices. The query gathers the followed authors' rows
  at once and selects, bounds and orders with a handful of numpy operations, touching no
  Python object but the encodings it returns; it walks a timeline only for an author whose
  row runs short. Rows are rewritten lazily: every change marks the author dirty (the
  authors replying to a post too, when that post arrives or goes, via `_replies`).
- tombstones for deletes and label sets, so a delete or a label that arrives before its
  create still wins (at-least-once, possibly out-of-order delivery).
"""
from __future__ import annotations

import bisect
from array import array
from collections.abc import Container, Iterable
from dataclasses import dataclass

import numpy as np

from foryou_protos import common_pb2, events_pb2, thunder_pb2
from thunder.heads import FIBONACCI, Cells, Heads, RowIndex
from thunder.settings import QueryLimits, StoreLimits

# `wire` is a post encoded as field 1 of a message. It is field 1 of both response types that
# carry posts and of PostEvent (`created`), so one encoding serves all three; checked here so
# a contract change cannot silently break it.
for _message, _field in ((thunder_pb2.GetInNetworkPostsResponse, "posts"),
                         (thunder_pb2.GetPostsResponse, "posts"), (events_pb2.PostEvent, "created")):
    assert _message.DESCRIPTOR.fields_by_name[_field].number == 1, (_message, _field)


def encode_wire(post: common_pb2.Post) -> bytes:
    return thunder_pb2.GetPostsResponse(posts=[post]).SerializeToString()


def decode_wire(wire: bytes) -> common_pb2.Post:
    return thunder_pb2.GetPostsResponse.FromString(wire).posts[0]


class StoredPost:
    """One admitted post: the fields the in-network query reads, and the post as served."""

    __slots__ = ("post_id", "author_id", "created_at_ms", "reply_to_post_id", "reply_to_user_id",
                 "conversation_id", "repost_of_post_id", "repost_of_user_id", "has_video", "deleted",
                 "gone", "parent", "wire")

    def __init__(self, message: common_pb2.Post, wire: bytes) -> None:
        self.post_id = message.post_id
        self.author_id = message.author_id
        self.created_at_ms = float(message.created_at_ms)  # exact below 2**53; matches Timeline.times
        self.reply_to_post_id = message.in_reply_to_post_id
        self.reply_to_user_id = message.in_reply_to_user_id
        self.conversation_id = message.conversation_id
        self.repost_of_post_id = message.repost_of_post_id
        self.repost_of_user_id = message.repost_of_user_id if message.repost_of_post_id else 0
        self.has_video = message.video_duration_ms > 0
        self.deleted = message.deleted
        self.gone = self.deleted  # deleted, or expired out of the store (a reply's parent may be either)
        self.parent = None   # for replies: the parent's StoredPost once seen (saves a dict probe)
        self.wire = wire

    @property
    def is_original(self) -> bool:
        return not self.reply_to_post_id and not self.repost_of_post_id

    @property
    def message(self) -> common_pb2.Post:
        return decode_wire(self.wire)


class Timeline:
    """One author's posts of one kind, oldest -> newest by (created_at_ms, post_id): the records
    and, in parallel, contiguous arrays of their creation times, ids and reposted authors
    (`reposted`: 0 = not a repost). Age cut-offs, exclusions, the reposts-of-the-viewer rule,
    trims and the merge read these arrays instead of dereferencing records, which on a large
    store means a cache miss each."""

    __slots__ = ("recs", "times", "ids", "reposted", "ordered")

    def __init__(self) -> None:
        self.recs: list[StoredPost] = []
        self.times = array("d")
        self.ids = array("Q")
        self.reposted = array("Q")
        self.ordered = True   # False only while a bulk load appends out of order

    def __len__(self) -> int:
        return len(self.recs)

    def add(self, rec: StoredPost, keep_order: bool = True) -> None:
        """Insert in order; with keep_order=False (bulk load) an out-of-order entry is appended
        and the timeline marked unordered until `restore_order()`."""
        t, recs, times = rec.created_at_ms, self.recs, self.times
        if not times or times[-1] < t or (times[-1] == t and recs[-1].post_id < rec.post_id):
            recs.append(rec)
            times.append(t)
            self.ids.append(rec.post_id)
            self.reposted.append(_reposted(rec))
            return
        if not keep_order:
            self.ordered = False
            recs.append(rec)
            times.append(t)
            self.ids.append(rec.post_id)
            self.reposted.append(_reposted(rec))
            return
        self.restore_order()
        i, end = bisect.bisect_left(times, t), bisect.bisect_right(times, t)
        while i < end and recs[i].post_id < rec.post_id:
            i += 1
        recs.insert(i, rec)
        times.insert(i, t)
        self.ids.insert(i, rec.post_id)
        self.reposted.insert(i, _reposted(rec))

    def restore_order(self) -> None:
        if self.ordered:
            return
        times, ids = self.times, self.ids
        order = sorted(range(len(self.recs)), key=lambda i: (times[i], ids[i]))
        self.recs = [self.recs[i] for i in order]
        self.times = array("d", [times[i] for i in order])
        self.ids = array("Q", [ids[i] for i in order])
        self.reposted = array("Q", [self.reposted[i] for i in order])
        self.ordered = True

    def remove(self, rec: StoredPost) -> bool:
        if self.ordered:
            t = rec.created_at_ms
            candidates = range(bisect.bisect_left(self.times, t), bisect.bisect_right(self.times, t))
        else:
            candidates = range(len(self.recs))
        for i in candidates:
            if self.recs[i] is rec:
                del self.recs[i]
                del self.times[i]
                del self.ids[i]
                del self.reposted[i]
                return True
        return False

    def trim(self, cutoff_ms: float) -> list[StoredPost]:
        """Drop and return the entries created before `cutoff_ms`."""
        self.restore_order()
        i = bisect.bisect_left(self.times, cutoff_ms)
        dropped = self.recs[:i]
        del self.recs[:i]
        del self.times[:i]
        del self.ids[:i]
        del self.reposted[:i]
        return dropped


_UNKNOWN_USER = 2**64 - 1  # a repost without its author: still marks the entry as a repost


def _reposted(rec: StoredPost) -> int:
    return (rec.repost_of_user_id or _UNKNOWN_USER) if rec.repost_of_post_id else 0


class IdSet:
    """Distinct ids as a sorted uint64 array, with set membership. Built straight from a
    request's repeated field (`np.array` reads it in a few microseconds, where making a
    Python set of it costs about 0.1 ms per thousand ids)."""

    __slots__ = ("array",)

    def __init__(self, ids) -> None:
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

    def __contains__(self, value: int) -> bool:
        i = int(np.searchsorted(self.array, value))   # (only on walks: rare)
        return i < len(self.array) and int(self.array[i]) == value

    def __len__(self) -> int:
        return len(self.array)

    def __iter__(self):
        return iter(self.array.tolist())


@dataclass(frozen=True)
class InNetworkQuery:
    viewer_id: int
    following: Iterable[int]                  # authors to read, no repeats (an IdSet is fastest)
    following_set: Container[int]             # membership test for reply eligibility
    exclude: frozenset[int] | set[int] | IdSet = frozenset()
    max_results: int = 1200
    min_created_at_ms: int = 0                # posts created before this are not returned
    video_only: bool = False


class PostStore:
    def __init__(self, limits: StoreLimits | None = None, query: QueryLimits | None = None) -> None:
        self.limits = limits or StoreLimits()
        self.query_limits = query or QueryLimits()
        self.posts: dict[int, StoredPost] = {}
        self.originals: dict[int, Timeline] = {}
        self.secondary: dict[int, Timeline] = {}
        self.videos: dict[int, Timeline] = {}
        self.deletes: dict[int, int] = {}                           # post id -> deleted_at_ms
        self.labels: dict[int, tuple[int, tuple[int, ...]]] = {}    # post id -> (at_ms, labels)
        self.refused_too_old = 0
        self.refused_future = 0
        self.duplicates = 0
        # Bulk load (the start-up replay): partitions are read interleaved, so an author's posts
        # arrive out of order; appending and sorting each touched timeline once at the end is
        # much cheaper than ordered inserts.
        self.bulk = False
        self._unordered: list[Timeline] = []
        # Heads (see heads.py): one row per author in each, rewritten from the timelines for
        # the authors in `_dirty` before a query reads them.
        self._rows = RowIndex()
        self._row_authors: list[int] = []
        self._dirty: set[int] = set()
        query = self.query_limits
        spare = max(0, query.head_spare_per_author)
        self.original_heads = Heads(max(1, query.max_originals_per_author + spare), reposts=False, replies=False)
        self.secondary_heads = Heads(max(1, query.max_secondary_per_author + spare), reposts=True, replies=True)
        self.video_heads = Heads(max(1, query.max_videos_per_author + spare), reposts=True, replies=False)
        # replied-to post id -> replies seen (their authors' secondary heads depend on its state)
        self._replies: dict[int, list[StoredPost]] = {}

    def clear(self) -> None:
        """Forget everything (the log this store was built from is gone: it is rebuilt)."""
        self.__init__(self.limits, self.query_limits)

    def begin_bulk(self) -> None:
        self.bulk = True

    def end_bulk(self) -> int:
        """Leave bulk mode, ordering every timeline a bulk insert left unordered (and writing
        every head, so that the first queries do not pay for it)."""
        self.bulk = False
        count = self._restore_order()
        self._refresh(list(self._dirty))
        return count

    def _restore_order(self) -> int:
        count = len(self._unordered)
        for timeline in self._unordered:
            timeline.restore_order()
        self._unordered = []
        return count

    # ---- ingestion -------------------------------------------------------------------------

    def apply(self, event: events_pb2.PostEvent, now_ms: int, raw: bytes | None = None) -> bool:
        """Apply one decoded `posts` event; False when it changed nothing (duplicate, refused).
        `raw` is the record value the event was decoded from, reused as the post's encoding
        when it is exactly that (saves re-serializing on the ingestion path)."""
        kind = event.WhichOneof("event")
        if kind == "created":
            return self.insert(event.created, now_ms, raw if raw is not None and len(raw) == event.ByteSize() else None)
        if kind == "deleted":
            d = event.deleted
            return self.delete(d.post_id, d.deleted_at_ms or now_ms)
        if kind == "labelled":
            lab = event.labelled
            return self.label(lab.post_id, tuple(lab.labels), lab.labelled_at_ms or now_ms)
        return False

    def insert(self, message: common_pb2.Post, now_ms: int, wire: bytes | None = None) -> bool:
        post_id = message.post_id
        if post_id in self.posts:
            self.duplicates += 1
            return False
        created = message.created_at_ms
        if created > now_ms + self.limits.future_skew_ms:
            self.refused_future += 1
            return False
        if created < now_ms - self.limits.retention_ms:
            self.refused_too_old += 1
            return False
        # `deleted` and `labels` of a created event are ignored: only our tombstones count.
        label_set = self.labels.get(post_id)
        deleted = post_id in self.deletes
        if wire is None or deleted or label_set is not None or message.deleted or message.labels:
            message.deleted = deleted
            del message.labels[:]
            if label_set is not None:
                message.labels.extend(label_set[1])
            wire = encode_wire(message)
        rec = StoredPost(message, wire)
        self.posts[post_id] = rec
        if not deleted:
            self._index(rec)
        self._parent_changed(post_id)
        return True

    def _parent_changed(self, post_id: int, forget: bool = False) -> None:
        """A post appeared or went: the secondary heads of the authors replying to it change."""
        replies = self._replies.pop(post_id, None) if forget else self._replies.get(post_id)
        if replies:
            self._dirty.update([r.author_id for r in replies])

    def _rewrite(self, rec: StoredPost, change) -> None:
        message = rec.message
        change(message)
        rec.wire = encode_wire(message)
        self._dirty.add(rec.author_id)

    def _index(self, rec: StoredPost) -> None:
        author = rec.author_id
        self._dirty.add(author)
        if rec.reply_to_post_id:
            replies = self._replies.get(rec.reply_to_post_id)
            if replies is None:
                self._replies[rec.reply_to_post_id] = [rec]
            else:
                replies.append(rec)
        timelines = self.originals if rec.is_original else self.secondary
        keep_order = not self.bulk
        timeline = timelines.get(author)
        if timeline is None:
            timeline = timelines[author] = Timeline()
        was_ordered = timeline.ordered
        timeline.add(rec, keep_order)
        if was_ordered and not timeline.ordered:
            self._unordered.append(timeline)
        if self._is_video(rec):
            videos = self.videos.get(author)
            if videos is None:
                videos = self.videos[author] = Timeline()
            was_ordered = videos.ordered
            videos.add(rec, keep_order)
            if was_ordered and not videos.ordered:
                self._unordered.append(videos)

    def _is_video(self, rec: StoredPost) -> bool:
        """A video post, or a repost of one; a reply never counts. A repost whose source is not
        (yet) in the store is not a video post."""
        if rec.reply_to_post_id:
            return False
        if rec.has_video:
            return True
        source_id = rec.repost_of_post_id
        if not source_id:
            return False
        source = self.posts.get(source_id)
        return source is not None and source.has_video and not source.reply_to_post_id

    def delete(self, post_id: int, deleted_at_ms: int) -> bool:
        known = self.deletes.get(post_id)
        self.deletes[post_id] = deleted_at_ms if known is None else max(known, deleted_at_ms)
        rec = self.posts.get(post_id)
        if rec is None or rec.deleted:
            return known is None
        rec.deleted = rec.gone = True
        self._rewrite(rec, _mark_deleted)
        self._unindex(rec)
        self._parent_changed(post_id, forget=True)
        return True

    def _unindex(self, rec: StoredPost) -> None:
        self._dirty.add(rec.author_id)
        for timelines in (self.originals, self.secondary, self.videos):
            timeline = timelines.get(rec.author_id)
            if timeline is not None and timeline.remove(rec) and not timeline:
                del timelines[rec.author_id]

    def label(self, post_id: int, labels: tuple[int, ...], labelled_at_ms: int) -> bool:
        """Labels replace the previous set; the latest event wins whatever the arrival order
        (ties broken by the label values, so any order converges)."""
        new = (labelled_at_ms, tuple(labels))
        old = self.labels.get(post_id)
        if old is not None and old >= new:
            return False
        self.labels[post_id] = new
        rec = self.posts.get(post_id)
        if rec is not None:
            self._rewrite(rec, lambda message: _set_labels(message, new[1]))
        return True

    # ---- expiry ----------------------------------------------------------------------------

    def trim(self, now_ms: int) -> int:
        """Drop posts (and tombstones) older than the retention window; returns posts dropped."""
        cutoff = now_ms - self.limits.retention_ms
        posts = self.posts
        dropped = 0
        for timelines in (self.originals, self.secondary, self.videos):
            for author in [a for a, tl in timelines.items() if tl.times[0] < cutoff]:
                timeline = timelines[author]
                self._dirty.add(author)
                for rec in timeline.trim(cutoff):
                    rec.gone = True  # a reply still pointing at it must see it as gone
                    self._parent_changed(rec.post_id, forget=True)
                    if posts.pop(rec.post_id, None) is not None:
                        dropped += 1
                if not timeline:
                    del timelines[author]
        # Deleted posts are in no timeline: expire them (and old tombstones) here.
        for post_id in [p for p, at in self.deletes.items() if at < cutoff or _expired(posts.get(p), cutoff)]:
            if posts.pop(post_id, None) is not None:
                dropped += 1
            if self.deletes[post_id] < cutoff:
                del self.deletes[post_id]
        for post_id in [p for p, (at, _) in self.labels.items() if at < cutoff]:
            del self.labels[post_id]
        # Replies to posts never seen: forget them once every such reply has gone.
        for post_id in [p for p, replies in self._replies.items() if all(r.gone for r in replies)]:
            del self._replies[post_id]
        return dropped

    # ---- reads -----------------------------------------------------------------------------

    def lookup(self, post_id: int, now_ms: int) -> StoredPost | None:
        """The stored post (deleted ones included), or None if unknown or expired."""
        rec = self.posts.get(post_id)
        if rec is None or rec.created_at_ms < now_ms - self.limits.retention_ms:
            return None
        return rec

    def get(self, post_id: int, now_ms: int) -> common_pb2.Post | None:
        rec = self.lookup(post_id, now_ms)
        return None if rec is None else rec.message

    def in_network(self, q: InNetworkQuery) -> list[StoredPost]:
        """Recent eligible posts of the followed authors, newest first (docs/thunder.md)."""
        posts = self.posts
        return [posts[post_id] for post_id in self._in_network(q, False)[0]]

    def in_network_wires(self, q: InNetworkQuery) -> list[bytes]:
        """`in_network`'s answer as response entries (`StoredPost.wire`), ready to be joined."""
        return self._in_network(q, True)[1]

    def _in_network(self, q: InNetworkQuery, want_wires: bool) -> tuple[list[int], list[bytes]]:
        """Post ids, or their encodings if `want_wires`, newest first.

        1. The followed authors' head rows (rewritten first where stale), found at once.
        2. Originals (or videos): per row, the newest `cap` cells not older than
           `min_created_at_ms` that the viewer may see (`_select`: excluded cells, and for
           videos reposts of the viewer's posts, are skipped; an author whose row runs out
           of cells is walked the exact way).
        3. If they alone exceed `max_results`, the max_results-th newest is a lower bound:
           older candidates (originals or secondary) cannot make the answer.
        4. Replies and reposts newer than the bound, the same way (also skipping reposts of
           the viewer's posts, and replies to replies addressed to someone not followed).
        5. Sort, cut to `max_results`, read the encodings of the answer."""
        if self._unordered:  # queried during a bulk load (normally refused before that)
            self._restore_order()
        following = q.following.array if isinstance(q.following, IdSet) else np.fromiter(q.following, np.uint64)
        if self._dirty:
            stale = self._dirty.intersection(following.tolist())
            if stale:
                self._refresh(stale)
        rows = self._rows.lookup(following)
        rows = rows[rows >= 0]
        if not len(rows):
            return [], []
        limits = self.query_limits
        exclude = _Exclusions(q.exclude) if q.exclude else None
        viewer = q.viewer_id
        found: list[tuple[np.ndarray, np.ndarray, Heads, np.ndarray]] = []   # cells: rows, columns, heads, times
        walked: list[StoredPost] = []
        bound = float(q.min_created_at_ms)

        if q.video_only:
            heads, cap, timelines = self.video_heads, limits.max_videos_per_author, self.videos
        else:
            heads, cap, timelines = self.original_heads, limits.max_originals_per_author, self.originals
        if cap > 0:
            # Only video timelines hold reposts (for originals the check would be a no-op).
            at_rows, columns, picked, walked = self._select(
                heads, rows, cap, bound, exclude, (viewer or None) if q.video_only else None, None,
                lambda author: self._walk_plain(timelines[author], q, cap))
            n = len(picked) + len(walked)
            if n > q.max_results:
                if walked:
                    picked_all = np.concatenate([picked, np.array([rec.created_at_ms for rec in walked])])
                else:
                    picked_all = picked
                kth = n - q.max_results
                bound = max(bound, float(np.partition(picked_all, kth)[kth]))
                keep = picked >= bound
                at_rows, columns, picked = at_rows[keep], columns[keep], picked[keep]
                walked = [rec for rec in walked if rec.created_at_ms >= bound]
            found.append((at_rows, columns, heads, picked))

        cap = limits.max_secondary_per_author
        if not q.video_only and cap > 0:
            # (viewer 0 reposts nothing: the walk reads `reposted` 0 as "not a repost")
            at_rows, columns, picked, more = self._select(
                self.secondary_heads, rows, cap, bound, exclude, viewer or None, q.following_set,
                lambda author: self._walk_secondary(self.secondary[author], q, cap, bound))
            found.append((at_rows, columns, self.secondary_heads, picked))
            walked += more

        if not found and not walked:
            return [], []
        times = [t for _, _, _, t in found]
        if walked:
            times.append(np.array([rec.created_at_ms for rec in walked]))
        # Newest first; equal times keep the order collected (per author newest first by id).
        order = np.argsort(-np.concatenate(times), kind="stable")[:q.max_results]
        if not want_wires:
            ids = [h.ids[r, c] for r, c, h, _ in found]
            if walked:
                ids.append(np.array([rec.post_id for rec in walked], dtype=np.uint64))
            return np.concatenate(ids)[order].tolist(), []
        # Encodings of the answer only (each read is a cache miss on a large store).
        wires = np.empty(len(order), object)
        start = 0
        for r, c, heads, t in found:
            end = start + len(t)
            mine = (order >= start) & (order < end)
            cells = order[mine] - start
            wires[mine] = heads.wires[r[cells], c[cells]]
            start = end
        if walked:
            mine = order >= start
            wires[mine] = [walked[i].wire for i in (order[mine] - start).tolist()]
        return [], wires.tolist()

    def _select(self, heads: Heads, rows: np.ndarray, cap: int, bound: float, exclude: _Exclusions | None,
                viewer: int | None, following: Container[int] | None, walk
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[StoredPost]]:
        """Per row, the newest `cap` cells not older than `bound` that a walk would take for
        this viewer: (rows, columns, times) of the cells, and the posts of the authors whose
        rows ran short, walked the exact way (`walk(author)`)."""
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
            for row in sub[short].tolist():
                walked += walk(self._row_authors[row])
        return (np.concatenate([rows[r], sub[r2]]), np.concatenate([c, c2]),
                np.concatenate([times[r, c], sub_times[r2, c2]]), walked)

    def _walk_plain(self, timeline: Timeline, q: InNetworkQuery, cap: int) -> list[StoredPost]:
        """Originals or videos of one author, the exact way: newest first, skipping excluded
        posts and reposts of the viewer's own posts (only video timelines hold reposts)."""
        t, ids, reposted, recs = timeline.times, timeline.ids, timeline.reposted, timeline.recs
        min_created, exclude, viewer = q.min_created_at_ms, q.exclude, q.viewer_id
        n = len(t)
        out: list[StoredPost] = []
        for i in range(n - 1, max(-1, n - 1 - self.query_limits.max_scan_per_author), -1):
            if t[i] < min_created:
                break
            if exclude and ids[i] in exclude:
                continue
            if viewer and reposted[i] == viewer:
                continue
            out.append(recs[i])
            if len(out) == cap:
                break
        return out

    def _walk_secondary(self, timeline: Timeline, q: InNetworkQuery, cap: int, bound: float
                        ) -> list[StoredPost]:
        """Replies and reposts of one author not older than `bound`, the exact way: newest
        first; a repost unless it reposts the viewer's own post; a reply as `_reply_check`
        says (and, answering a reply, only when addressed to an account the viewer follows)."""
        t, ids, reposted, recs = timeline.times, timeline.ids, timeline.reposted, timeline.recs
        exclude, viewer, following = q.exclude, q.viewer_id, q.following_set
        n = len(t)
        out: list[StoredPost] = []
        for i in range(n - 1, max(-1, n - 1 - self.query_limits.max_scan_per_author), -1):
            if t[i] < bound:
                break
            if exclude and ids[i] in exclude:
                continue
            if reposted[i]:
                if reposted[i] == viewer:
                    continue
            else:
                check = self._reply_check(recs[i])
                if check == _INELIGIBLE or (check == _IF_FOLLOWED and recs[i].reply_to_user_id not in following):
                    continue
            out.append(recs[i])
            if len(out) == cap:
                break
        return out

    def _reply_check(self, rec: StoredPost) -> int:
        """A reply's eligibility as far as it does not depend on the viewer: eligible if it
        answers an original post; if it answers a reply that itself answers the conversation
        root, eligible when the viewer follows its addressee; otherwise (parent unknown,
        deleted or expired included) not eligible."""
        parent = rec.parent
        if parent is None:
            parent = self.posts.get(rec.reply_to_post_id)
            if parent is None:
                return _INELIGIBLE
            rec.parent = parent   # saves the dict probe next time
        if parent.gone:
            return _INELIGIBLE
        if not parent.reply_to_post_id and not parent.repost_of_post_id:
            return _ELIGIBLE
        if rec.conversation_id and parent.reply_to_post_id == rec.conversation_id:
            return _IF_FOLLOWED
        return _INELIGIBLE

    # ---- heads -----------------------------------------------------------------------------

    def _refresh(self, authors: Iterable[int]) -> None:
        """Rewrite the head rows of these authors from their timelines (which are ordered)."""
        row_authors = self._row_authors
        known = self._rows.lookup(np.fromiter(authors, np.uint64)).tolist()
        all_heads = (self.original_heads, self.secondary_heads, self.video_heads)
        originals, secondary, videos = Cells(), Cells(), Cells()
        o_width, v_width = self.original_heads.width, self.video_heads.width
        written = []
        for author, row in zip(authors, known):
            if row < 0:
                row = len(row_authors)
                self._rows.add(author, row)
                row_authors.append(author)
                for heads in all_heads:
                    heads.grow(row + 1)
            written.append(row)
            originals.add_tail(row, self.originals.get(author), o_width, reposts=False)
            videos.add_tail(row, self.videos.get(author), v_width, reposts=True)
            self._add_secondary(secondary, row, self.secondary.get(author))
        self.original_heads.write(written, originals)
        self.secondary_heads.write(written, secondary)
        self.video_heads.write(written, videos)
        self._dirty.difference_update(authors)

    def _add_secondary(self, cells: Cells, row: int, timeline: Timeline | None) -> None:
        """The newest entries eligible for some viewer, within the scan limit (what a walk
        takes, for a viewer none of them is excluded for)."""
        if not timeline:
            return
        width = self.secondary_heads.width
        recs, reposted, n = timeline.recs, timeline.reposted, len(timeline)
        stop = max(-1, n - 1 - self.query_limits.max_scan_per_author)
        chosen: list[int] = []
        follows: list[bool] = []
        for i in range(n - 1, stop, -1):
            if reposted[i]:
                follows.append(False)
            else:
                check = self._reply_check(recs[i])
                if check == _INELIGIBLE:
                    continue
                follows.append(check == _IF_FOLLOWED)
            chosen.append(i)
            if len(chosen) == width:
                if i - 1 > stop:
                    cells.incomplete.append(row)
                break
        if chosen:
            picked = [recs[i] for i in chosen]
            cells.rows += [row] * len(chosen)
            cells.columns += range(len(chosen))
            cells.times += [timeline.times[i] for i in chosen]
            cells.ids += [timeline.ids[i] for i in chosen]
            cells.reposted += [reposted[i] for i in chosen]
            cells.wires += [rec.wire for rec in picked]
            cells.needs_follow += follows
            cells.addressee += [rec.reply_to_user_id for rec in picked]

    # ---- introspection ---------------------------------------------------------------------

    def sizes(self) -> dict[str, int]:
        return {
            "posts": len(self.posts),
            "authors": len(self.originals.keys() | self.secondary.keys()),
            "original_posts": sum(map(len, self.originals.values())),
            "secondary_posts": sum(map(len, self.secondary.values())),
            "video_posts": sum(map(len, self.videos.values())),
            "deleted_posts": len(self.deletes),
            "labelled_posts": len(self.labels),
        }

    def snapshot(self) -> dict:
        """A comparable picture of the whole store (tests: same events in any order give the
        same snapshot)."""
        return {
            "posts": {pid: rec.message.SerializeToString(deterministic=True) for pid, rec in self.posts.items()},
            "deleted": {pid for pid, rec in self.posts.items() if rec.deleted},
            "originals": {a: [r.post_id for r in tl.recs] for a, tl in self.originals.items()},
            "secondary": {a: [r.post_id for r in tl.recs] for a, tl in self.secondary.items()},
            "videos": {a: [r.post_id for r in tl.recs] for a, tl in self.videos.items()},
            "deletes": set(self.deletes),
            "labels": dict(self.labels),
        }


def _mark_deleted(message: common_pb2.Post) -> None:
    message.deleted = True


def _set_labels(message: common_pb2.Post, labels: tuple[int, ...]) -> None:
    del message.labels[:]
    message.labels.extend(labels)


def _expired(rec: StoredPost | None, cutoff: int) -> bool:
    return rec is not None and rec.created_at_ms < cutoff


_INELIGIBLE, _ELIGIBLE, _IF_FOLLOWED = 0, 1, 2


class _Exclusions:
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
        flagged = ids.reshape(-1)[at]
        if isinstance(self.ids, IdSet):
            wrong = ~self.ids.contains(flagged)
        else:
            excluded = self.ids
            wrong = np.array([i not in excluded for i in flagged.tolist()])
        maybe.reshape(-1)[at[wrong]] = False
        return maybe


def _unusable(heads: Heads, at_rows: np.ndarray, at_columns: np.ndarray, exclude: _Exclusions | None,
              viewer: int | None, following: Container[int] | None) -> np.ndarray | None:
    """Which of these cells (index arrays, broadcast) a walk would skip for this viewer:
    excluded, reposting the viewer's post (if `viewer`), a reply addressed to an unfollowed
    account (if `following`). None: no check applied."""
    bad = None
    if exclude is not None:
        bad = exclude.hits(heads.ids[at_rows, at_columns])
    if viewer is not None:
        mine = heads.reposted[at_rows, at_columns] == viewer
        if mine.any():
            bad = mine if bad is None else bad | mine
    if following is not None:
        check = heads.needs_follow[at_rows, at_columns]
        if check.any():
            at = np.flatnonzero(check)
            addressees = heads.addressee[at_rows, at_columns].reshape(-1)[at]
            if isinstance(following, IdSet):
                unfollowed = ~following.contains(addressees)
            else:
                unfollowed = np.array([a not in following for a in addressees.tolist()])
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
