"""The post store: every post created within the retention window, indexed by author. This is
the store's truth: what is admitted, deleted, labelled and expired.

Layout (chosen for the in-network query, query.py):
- `posts`: post id -> StoredPost (records.py): the few fields eligibility reads, and the post
  already encoded as a response entry (wire.py).
- per author, three Timelines (originals; secondary = replies and reposts; videos), ordered
  oldest -> newest by (created_at_ms, post_id): appended to in O(1).
- `heads` (heads.py): per author the newest candidates of each timeline as numpy matrices,
  which the query reads. Rows are rewritten lazily: every change marks the author dirty (the
  authors replying to a post too, when that post arrives or goes, via `_replies`).
- tombstones for deletes and label sets, so a delete or a label that arrives before its
  create still wins (at-least-once, possibly out-of-order delivery).
- `impressions`: post id -> how often it was served (the `served` topic's ids, which the
  ingestor hands over after the user store has dropped redelivered requests). Only stored posts
  are counted, so it never outgrows `posts`: live, a served id is a post Thunder hydrated;
  during the replay topics interleave (a serving may come before its post), so every id is
  counted and the ids that turn out unknown are dropped when the replay ends. A count goes
  with its post at expiry.
"""
from __future__ import annotations

from collections.abc import Callable

from foryou_protos import common_pb2, events_pb2
from thunder.heads import HeadCache
from thunder.id_tables import IdSet
from thunder.query import InNetworkQuery, in_network
from thunder.records import StoredPost, Timeline
from thunder.settings import QueryLimits, StoreLimits
from thunder.wire import decode_wire, encode_wire

__all__ = ["IdSet", "InNetworkQuery", "PostStore", "StoredPost", "Timeline", "decode_wire", "encode_wire"]


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
        self.heads = HeadCache(self.query_limits)
        # replied-to post id -> replies seen (their authors' secondary heads depend on its state)
        self._replies: dict[int, list[StoredPost]] = {}
        self.impressions: dict[int, int] = {}                       # post id -> times served

    def clear(self) -> None:
        """Forget everything (the log this store was built from is gone: it is rebuilt)."""
        self.__init__(self.limits, self.query_limits)  # type: ignore[misc]

    def begin_bulk(self) -> None:
        self.bulk = True

    def end_bulk(self) -> int:
        """Leave bulk mode, ordering every timeline a bulk insert left unordered (and writing
        every head, so that the first queries do not pay for it)."""
        self.bulk = False
        count = self._restore_order()
        self.heads.refresh(self, list(self.heads.dirty))
        self._forget_unknown_impressions()
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
        if not self._admits(message, now_ms):
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

    def _admits(self, message: common_pb2.Post, now_ms: int) -> bool:
        """Not seen yet and created within the retention window (or the clock-skew allowance)."""
        if message.post_id in self.posts:
            self.duplicates += 1
            return False
        created = message.created_at_ms
        if created > now_ms + self.limits.future_skew_ms:
            self.refused_future += 1
            return False
        if created < now_ms - self.limits.retention_ms:
            self.refused_too_old += 1
            return False
        return True

    def _parent_changed(self, post_id: int, forget: bool = False) -> None:
        """A post appeared or went: the secondary heads of the authors replying to it change."""
        replies = self._replies.pop(post_id, None) if forget else self._replies.get(post_id)
        if replies:
            self.heads.dirty.update([r.author_id for r in replies])

    def _rewrite(self, rec: StoredPost, change: Callable[[common_pb2.Post], None]) -> None:
        message = rec.message
        change(message)
        rec.wire = encode_wire(message)
        self.heads.dirty.add(rec.author_id)

    def _index(self, rec: StoredPost) -> None:
        author = rec.author_id
        self.heads.dirty.add(author)
        if rec.reply_to_post_id:
            replies = self._replies.get(rec.reply_to_post_id)
            if replies is None:
                self._replies[rec.reply_to_post_id] = [rec]
            else:
                replies.append(rec)
        self._add_to(self.originals if rec.is_original else self.secondary, rec)
        if self._is_video(rec):
            self._add_to(self.videos, rec)

    def _add_to(self, timelines: dict[int, Timeline], rec: StoredPost) -> None:
        timeline = timelines.get(rec.author_id)
        if timeline is None:
            timeline = timelines[rec.author_id] = Timeline()
        was_ordered = timeline.ordered
        timeline.add(rec, not self.bulk)
        if was_ordered and not timeline.ordered:
            self._unordered.append(timeline)

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
        self.heads.dirty.add(rec.author_id)
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

    def count_impressions(self, post_ids) -> int:
        """One more serving of each of `post_ids` (a post served twice in one feed counts
        twice); returns how many were counted."""
        counts, posts, counted = self.impressions, self.posts, 0
        for post_id in post_ids:
            if self.bulk or post_id in posts:
                counts[post_id] = counts.get(post_id, 0) + 1
                counted += 1
        return counted

    def _forget_unknown_impressions(self) -> None:
        posts = self.posts
        for post_id in [p for p in self.impressions if p not in posts]:
            del self.impressions[post_id]

    # ---- expiry ----------------------------------------------------------------------------

    def trim(self, now_ms: int) -> int:
        """Drop posts (and tombstones) older than the retention window; returns posts dropped."""
        cutoff = now_ms - self.limits.retention_ms
        dropped = sum(self._trim_timelines(timelines, cutoff)
                      for timelines in (self.originals, self.secondary, self.videos))
        posts = self.posts
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
        if not self.bulk:  # mid-replay a counted post may still be on its way
            self._forget_unknown_impressions()
        return dropped

    def _trim_timelines(self, timelines: dict[int, Timeline], cutoff: int) -> int:
        dropped = 0
        for author in [a for a, tl in timelines.items() if tl.times[0] < cutoff]:
            timeline = timelines[author]
            self.heads.dirty.add(author)
            for rec in timeline.trim(cutoff):
                rec.gone = True  # a reply still pointing at it must see it as gone
                self._parent_changed(rec.post_id, forget=True)
                if self.posts.pop(rec.post_id, None) is not None:
                    dropped += 1
            if not timeline:
                del timelines[author]
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
        """Recent eligible posts of the followed authors, newest first (query.py)."""
        posts = self.posts
        return [posts[post_id] for post_id in self._in_network(q, False)[0]]

    def in_network_wires(self, q: InNetworkQuery) -> list[bytes]:
        """`in_network`'s answer as response entries (`StoredPost.wire`), ready to be joined."""
        return self._in_network(q, True)[1]

    def _in_network(self, q: InNetworkQuery, want_wires: bool) -> tuple[list[int], list[bytes]]:
        if self._unordered:  # queried during a bulk load (normally refused before that)
            self._restore_order()
        return in_network(self, q, want_wires)

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
            "impression_counts": len(self.impressions),
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
            "impressions": dict(self.impressions),
        }


def _mark_deleted(message: common_pb2.Post) -> None:
    message.deleted = True


def _set_labels(message: common_pb2.Post, labels: tuple[int, ...]) -> None:
    del message.labels[:]
    message.labels.extend(labels)


def _expired(rec: StoredPost | None, cutoff: int) -> bool:
    return rec is not None and rec.created_at_ms < cutoff
