"""The post store: every post created within the retention window, indexed by author.

Layout (chosen for the in-network query, see `in_network`):
- `posts`: post id -> StoredPost (the decoded `foryou.Post` message plus the few fields the
  query reads, copied into slots because slot access is several times faster than protobuf
  field access).
- per author, three lists ordered oldest -> newest by (created_at_ms, post_id): originals,
  secondary (replies and reposts) and videos. Appends are O(1); the query walks a list from
  its end and stops at the per-author cap, so it never touches other authors' posts nor
  copies a whole list.
- tombstones for deletes and label sets, so a delete or a label that arrives before its
  create still wins (at-least-once, possibly out-of-order delivery).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter

from foryou_protos import common_pb2, events_pb2
from thunder.settings import QueryLimits, StoreLimits

_CREATED = attrgetter("created_at_ms")


def _order_key(rec: "StoredPost") -> tuple[int, int]:
    return rec.created_at_ms, rec.post_id


class StoredPost:
    """One admitted post. `message` is the Post served to clients (deleted and labels kept
    up to date on it); the other slots mirror the fields the in-network query reads."""

    __slots__ = ("post_id", "author_id", "created_at_ms", "reply_to_post_id", "reply_to_user_id",
                 "conversation_id", "repost_of_user_id", "has_video", "message")

    def __init__(self, message: common_pb2.Post) -> None:
        self.post_id = message.post_id
        self.author_id = message.author_id
        self.created_at_ms = message.created_at_ms
        self.reply_to_post_id = message.in_reply_to_post_id
        self.reply_to_user_id = message.in_reply_to_user_id
        self.conversation_id = message.conversation_id
        self.repost_of_user_id = message.repost_of_user_id if message.repost_of_post_id else 0
        self.has_video = message.video_duration_ms > 0
        self.message = message

    @property
    def is_original(self) -> bool:
        return not self.reply_to_post_id and not self.message.repost_of_post_id


@dataclass(frozen=True)
class InNetworkQuery:
    viewer_id: int
    following: list[int] | tuple[int, ...]   # authors to read, in the caller's order
    following_set: frozenset[int] | set[int] | dict  # membership test for reply eligibility
    exclude: frozenset[int] | set[int] = frozenset()
    max_results: int = 1200
    min_created_at_ms: int = 0                # posts created before this are not returned
    video_only: bool = False


class PostStore:
    def __init__(self, limits: StoreLimits = StoreLimits(), query: QueryLimits = QueryLimits()) -> None:
        self.limits = limits
        self.query_limits = query
        self.posts: dict[int, StoredPost] = {}
        self.originals: dict[int, list[StoredPost]] = {}
        self.secondary: dict[int, list[StoredPost]] = {}
        self.videos: dict[int, list[StoredPost]] = {}
        self.deletes: dict[int, int] = {}                           # post id -> deleted_at_ms
        self.labels: dict[int, tuple[int, tuple[int, ...]]] = {}    # post id -> (at_ms, labels)
        self.refused_too_old = 0
        self.refused_future = 0
        self.duplicates = 0

    # ---- ingestion -------------------------------------------------------------------------

    def apply(self, event: events_pb2.PostEvent, now_ms: int) -> bool:
        """Apply one decoded `posts` event; False when it changed nothing (duplicate, refused)."""
        kind = event.WhichOneof("event")
        if kind == "created":
            return self.insert(event.created, now_ms)
        if kind == "deleted":
            d = event.deleted
            return self.delete(d.post_id, d.deleted_at_ms or now_ms)
        if kind == "labelled":
            lab = event.labelled
            return self.label(lab.post_id, tuple(lab.labels), lab.labelled_at_ms or now_ms)
        return False

    def insert(self, message: common_pb2.Post, now_ms: int) -> bool:
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
        rec = StoredPost(message)
        self.posts[post_id] = rec
        # `deleted` and `labels` of a created event are ignored: only our tombstones count.
        message.deleted = post_id in self.deletes
        del message.labels[:]
        label_set = self.labels.get(post_id)
        if label_set is not None:
            message.labels.extend(label_set[1])
        if not message.deleted:
            self._index(rec)
        return True

    def _index(self, rec: StoredPost) -> None:
        author = rec.author_id
        lists = self.originals if rec.is_original else self.secondary
        _insert_in_order(lists.setdefault(author, []), rec)
        if self._is_video(rec):
            _insert_in_order(self.videos.setdefault(author, []), rec)

    def _is_video(self, rec: StoredPost) -> bool:
        """A video post, or a repost of one; a reply never counts. A repost whose source is not
        (yet) in the store is not a video post."""
        if rec.reply_to_post_id:
            return False
        if rec.has_video:
            return True
        source_id = rec.message.repost_of_post_id
        if not source_id:
            return False
        source = self.posts.get(source_id)
        return source is not None and source.has_video and not source.reply_to_post_id

    def delete(self, post_id: int, deleted_at_ms: int) -> bool:
        known = self.deletes.get(post_id)
        self.deletes[post_id] = deleted_at_ms if known is None else max(known, deleted_at_ms)
        rec = self.posts.get(post_id)
        if rec is None or rec.message.deleted:
            return known is None
        rec.message.deleted = True
        self._unindex(rec)
        return True

    def _unindex(self, rec: StoredPost) -> None:
        for lists in (self.originals, self.secondary, self.videos):
            lst = lists.get(rec.author_id)
            if not lst:
                continue
            i = bisect.bisect_left(lst, _order_key(rec), key=_order_key)
            if i < len(lst) and lst[i] is rec:
                del lst[i]
                if not lst:
                    del lists[rec.author_id]

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
            del rec.message.labels[:]
            rec.message.labels.extend(new[1])
        return True

    # ---- expiry ----------------------------------------------------------------------------

    def trim(self, now_ms: int) -> int:
        """Drop posts (and tombstones) older than the retention window; returns posts dropped."""
        cutoff = now_ms - self.limits.retention_ms
        posts = self.posts
        dropped = 0
        for lists in (self.originals, self.secondary, self.videos):
            for author in [a for a, lst in lists.items() if lst[0].created_at_ms < cutoff]:
                lst = lists[author]
                i = bisect.bisect_left(lst, cutoff, key=_CREATED)
                for rec in lst[:i]:
                    if posts.pop(rec.post_id, None) is not None:
                        dropped += 1
                del lst[:i]
                if not lst:
                    del lists[author]
        # Deleted posts are in no list: expire them (and old tombstones) here.
        for post_id in [p for p, at in self.deletes.items() if at < cutoff or _expired(posts.get(p), cutoff)]:
            if posts.pop(post_id, None) is not None:
                dropped += 1
            if self.deletes[post_id] < cutoff:
                del self.deletes[post_id]
        for post_id in [p for p, (at, _) in self.labels.items() if at < cutoff]:
            del self.labels[post_id]
        return dropped

    # ---- reads -----------------------------------------------------------------------------

    def get(self, post_id: int, now_ms: int) -> common_pb2.Post | None:
        """The post's message (deleted ones included), or None if unknown or expired."""
        rec = self.posts.get(post_id)
        if rec is None or rec.created_at_ms < now_ms - self.limits.retention_ms:
            return None
        return rec.message

    def in_network(self, q: InNetworkQuery) -> list[StoredPost]:
        """Recent eligible posts of the followed authors, newest first (see thunder.md)."""
        limits = self.query_limits
        if q.video_only:
            out = self._walk(self.videos, q, limits.max_videos_per_author, replies=False)
        else:
            out = self._walk(self.originals, q, limits.max_originals_per_author, replies=False)
            out += self._walk(self.secondary, q, limits.max_secondary_per_author, replies=True)
        # Each author's run is already newest first; timsort merges such runs cheaply.
        out.sort(key=_CREATED, reverse=True)
        del out[q.max_results:]
        return out

    def _walk(self, lists: dict[int, list[StoredPost]], q: InNetworkQuery, cap: int,
              replies: bool) -> list[StoredPost]:
        out: list[StoredPost] = []
        if cap <= 0:
            return out
        get_list = lists.get
        min_created = q.min_created_at_ms
        exclude = q.exclude
        viewer = q.viewer_id
        scan = self.query_limits.max_scan_per_author
        plain = not replies and not exclude
        for author in q.following:
            lst = get_list(author)
            if not lst:
                continue
            if plain and (lst[-cap] if len(lst) >= cap else lst[0]).created_at_ms >= min_created:
                # Fast path (originals or videos, nothing excluded, all recent enough): take the
                # newest `cap` entries as a slice, no per-post checks; reposts of the viewer's
                # own posts only occur in the video lists, so filter those.
                tail = lst[-cap:]
                tail.reverse()
                if lists is self.videos:
                    tail = [r for r in tail if r.repost_of_user_id != viewer]
                out += tail
                continue
            taken = 0
            for rec in islice(reversed(lst), scan):
                if rec.created_at_ms < min_created:
                    break
                if rec.post_id in exclude or rec.repost_of_user_id == viewer:
                    continue
                if replies and rec.reply_to_post_id and not self._reply_eligible(rec, q.following_set):
                    continue
                out.append(rec)
                taken += 1
                if taken == cap:
                    break
        return out

    def _reply_eligible(self, rec: StoredPost, following_set) -> bool:
        """A reply to an original post; or a reply to a reply to the conversation root that is
        addressed to an account the viewer follows. Unknown or deleted parents: not eligible."""
        parent = self.posts.get(rec.reply_to_post_id)
        if parent is None or parent.message.deleted:
            return False
        if not parent.reply_to_post_id and not parent.message.repost_of_post_id:
            return True
        return (rec.conversation_id != 0 and parent.reply_to_post_id == rec.conversation_id
                and rec.reply_to_user_id in following_set)

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
            "originals": {a: [r.post_id for r in lst] for a, lst in self.originals.items()},
            "secondary": {a: [r.post_id for r in lst] for a, lst in self.secondary.items()},
            "videos": {a: [r.post_id for r in lst] for a, lst in self.videos.items()},
            "deletes": set(self.deletes),
            "labels": dict(self.labels),
        }


def _insert_in_order(lst: list[StoredPost], rec: StoredPost) -> None:
    if lst:
        last = lst[-1]
        if last.created_at_ms > rec.created_at_ms or (
                last.created_at_ms == rec.created_at_ms and last.post_id > rec.post_id):
            bisect.insort(lst, rec, key=_order_key)
            return
    lst.append(rec)


def _expired(rec: StoredPost | None, cutoff: int) -> bool:
    return rec is not None and rec.created_at_ms < cutoff
