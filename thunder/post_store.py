"""The post store: every post created within the retention window, indexed by author.

Layout (chosen for the in-network query, see `in_network`):
- `posts`: post id -> StoredPost: the few fields the query reads, in slots (several times
  faster to read than protobuf fields), and the post already encoded as a response entry
  (`wire`), so answering is a bytes join instead of building and serializing messages.
- per author, three Timelines (originals; secondary = replies and reposts; videos), ordered
  oldest -> newest by (created_at_ms, post_id), with creation times, ids and reposted authors
  in parallel arrays. Appends are O(1); the query takes each followed author's newest
  entries as small slices (never touching other authors, never copying a whole list), prunes
  by a time bound and merges with one numpy argsort over contiguous times, so most
  candidates are never dereferenced.
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
        self.gone = False    # deleted, or expired out of the store (a reply's parent may be either)
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


@dataclass(frozen=True)
class InNetworkQuery:
    viewer_id: int
    following: Iterable[int]                  # authors to read, in the caller's order, no repeats
    following_set: Container[int]             # membership test for reply eligibility
    exclude: frozenset[int] | set[int] = frozenset()
    max_results: int = 1200
    min_created_at_ms: int = 0                # posts created before this are not returned
    video_only: bool = False


class PostStore:
    def __init__(self, limits: StoreLimits = StoreLimits(), query: QueryLimits = QueryLimits()) -> None:
        self.limits = limits
        self.query_limits = query
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

    def begin_bulk(self) -> None:
        self.bulk = True

    def end_bulk(self) -> int:
        """Leave bulk mode, ordering every timeline a bulk insert left unordered."""
        self.bulk = False
        return self._restore_order()

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
        return True

    def _rewrite(self, rec: StoredPost, change) -> None:
        message = rec.message
        change(message)
        rec.wire = encode_wire(message)

    def _index(self, rec: StoredPost) -> None:
        author = rec.author_id
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
        return True

    def _unindex(self, rec: StoredPost) -> None:
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
                for rec in timeline.trim(cutoff):
                    rec.gone = True  # a reply still pointing at it must see it as gone
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
        """Recent eligible posts of the followed authors, newest first (see thunder.md).

        1. Originals (or videos): per followed author, the positions of its newest eligible
           entries, read from the times/ids arrays only.
        2. If they alone exceed `max_results`, the max_results-th newest of them is a lower
           bound for the answer: older candidates (originals or secondary) cannot make it, so
           they are neither materialized nor checked.
        3. Replies and reposts newer than that bound, checked record by record.
        4. One merge by time (numpy argsort over contiguous doubles)."""
        if self._unordered:  # queried during a bulk load (normally refused before that)
            self._restore_order()
        limits = self.query_limits
        if q.video_only:
            picks, times = self._pick_plain(self.videos, q, limits.max_videos_per_author)
        else:
            picks, times = self._pick_plain(self.originals, q, limits.max_originals_per_author)
        bound = float(q.min_created_at_ms)
        if len(times) > q.max_results:
            kth = len(times) - q.max_results
            bound = max(bound, float(np.partition(np.frombuffer(times, dtype=np.float64), kth)[kth]))
        recs: list[StoredPost] = []
        out_times = array("d")
        for timeline, positions in picks:
            t, entries = timeline.times, timeline.recs
            if isinstance(positions, int):  # a contiguous tail starting there
                start = bisect.bisect_left(t, bound, lo=positions)
                recs += entries[start:]
                out_times += t[start:]
            else:
                kept = [i for i in positions if t[i] >= bound]
                recs += [entries[i] for i in kept]
                out_times.extend([t[i] for i in kept])
        if not q.video_only:
            self._collect_secondary(q, limits.max_secondary_per_author, bound, recs, out_times)
        if not recs:
            return recs
        # Newest first. Stable ascending then reversed: ties come out in reverse collection
        # order (deterministic for a given store and request).
        order = np.argsort(np.frombuffer(out_times, dtype=np.float64), kind="stable")[::-1][:q.max_results]
        return [recs[i] for i in order.tolist()]

    def _pick_plain(self, timelines: dict[int, Timeline], q: InNetworkQuery, cap: int
                    ) -> tuple[list[tuple[Timeline, int | list[int]]], array]:
        """Originals or videos: per author the newest `cap`, skipping excluded posts and reposts
        of the viewer's own posts (only video timelines hold reposts).
        Returns (timeline, first position of a tail | list of positions) and all picked times;
        no record is read."""
        picks: list[tuple[Timeline, int | list[int]]] = []
        times = array("d")
        if cap <= 0:
            return picks, times
        get_timeline = timelines.get
        min_created = q.min_created_at_ms
        exclude = q.exclude
        viewer = q.viewer_id
        scan = self.query_limits.max_scan_per_author
        may_hold_reposts = timelines is self.videos
        for author in q.following:
            timeline = get_timeline(author)
            if timeline is None:
                continue
            t = timeline.times
            n = len(t)
            start = n - cap if n > cap else 0
            if (t[start] >= min_created and (not may_hold_reposts or viewer not in timeline.reposted[start:])
                    and (not exclude or exclude.isdisjoint(timeline.ids[start:]))):
                picks.append((timeline, start))  # fast path: the whole tail
                times += t[start:]
                continue
            taken, chosen = 0, []
            ids, reposted = timeline.ids, timeline.reposted
            for i in range(n - 1, max(-1, n - 1 - scan), -1):
                if t[i] < min_created:
                    break
                if exclude and ids[i] in exclude:
                    continue
                if reposted[i] == viewer:
                    continue
                chosen.append(i)
                taken += 1
                if taken == cap:
                    break
            if chosen:
                chosen.reverse()  # same oldest -> newest order as a tail
                picks.append((timeline, chosen))
                times.extend([t[i] for i in chosen])
        return picks, times

    def _collect_secondary(self, q: InNetworkQuery, cap: int, bound: float, recs: list[StoredPost],
                           times: array) -> None:
        """Replies and reposts, newest first per author. Eligibility (inlined: this is the hot
        loop): a repost unless it reposts the viewer's own post; a reply to an original post;
        a reply to a reply that itself answers the conversation root, when the reply is
        addressed to an account the viewer follows. A reply whose parent is unknown, deleted
        or expired is not eligible. Entries older than `bound` are not looked at."""
        if cap <= 0:
            return
        get_timeline = self.secondary.get
        get_post = self.posts.get
        following_set = q.following_set
        min_created = bound
        exclude = q.exclude
        viewer = q.viewer_id
        scan = self.query_limits.max_scan_per_author
        for author in q.following:
            timeline = get_timeline(author)
            if timeline is None:
                continue
            t = timeline.times
            n = len(t)
            if t[n - 1] < min_created:
                continue  # nothing recent enough (common once the bound is set)
            entries, ids, reposted = timeline.recs, timeline.ids, timeline.reposted
            taken, chunk = 0, []
            for i in range(n - 1, max(-1, n - 1 - scan), -1):
                if t[i] < min_created:
                    break
                if exclude and ids[i] in exclude:
                    continue
                reposted_author = reposted[i]
                if reposted_author:
                    if reposted_author == viewer:
                        continue
                else:  # a reply
                    rec = entries[i]
                    parent = rec.parent
                    if parent is None:
                        parent = get_post(rec.reply_to_post_id)
                        if parent is None:
                            continue
                        rec.parent = parent
                    if parent.gone:
                        continue
                    if (parent.reply_to_post_id or parent.repost_of_post_id) and not (
                            rec.conversation_id and parent.reply_to_post_id == rec.conversation_id
                            and rec.reply_to_user_id in following_set):
                        continue
                chunk.append(i)
                taken += 1
                if taken == cap:
                    break
            chunk.reverse()
            recs += [entries[i] for i in chunk]
            times.extend([t[i] for i in chunk])

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
