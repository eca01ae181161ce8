"""The store's records: one admitted post (StoredPost), one author's posts of one kind in
order (Timeline), and the part of a reply's eligibility that does not depend on the viewer."""
from __future__ import annotations

import bisect
from array import array
from collections.abc import Mapping

from foryou_protos import common_pb2
from thunder.wire import decode_wire


class StoredPost:
    """One admitted post: the fields the in-network query reads, in slots (several times faster
    to read than protobuf fields), and the post as served (`wire`, see wire.py)."""

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
        self.parent: StoredPost | None = None   # for replies: the parent once seen (saves a dict probe)
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
            self._append(rec)
            return
        if not keep_order:
            self.ordered = False
            self._append(rec)
            return
        self.restore_order()
        i, end = bisect.bisect_left(times, t), bisect.bisect_right(times, t)
        while i < end and recs[i].post_id < rec.post_id:
            i += 1
        recs.insert(i, rec)
        times.insert(i, t)
        self.ids.insert(i, rec.post_id)
        self.reposted.insert(i, reposted_author(rec))

    def _append(self, rec: StoredPost) -> None:
        self.recs.append(rec)
        self.times.append(rec.created_at_ms)
        self.ids.append(rec.post_id)
        self.reposted.append(reposted_author(rec))

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


def reposted_author(rec: StoredPost) -> int:
    """A Timeline's `reposted` entry: the reposted post's author, 0 for a post that is no repost."""
    return (rec.repost_of_user_id or _UNKNOWN_USER) if rec.repost_of_post_id else 0


INELIGIBLE, ELIGIBLE, IF_FOLLOWED = 0, 1, 2


def reply_check(rec: StoredPost, posts: Mapping[int, StoredPost]) -> int:
    """A reply's eligibility as far as it does not depend on the viewer: ELIGIBLE if it answers
    an original post; if it answers a reply that itself answers the conversation root,
    IF_FOLLOWED (eligible when the viewer follows its addressee); otherwise (parent unknown,
    deleted or expired included) INELIGIBLE."""
    parent = rec.parent
    if parent is None:
        parent = posts.get(rec.reply_to_post_id)
        if parent is None:
            return INELIGIBLE
        rec.parent = parent   # saves the dict probe next time
    if parent.gone:
        return INELIGIBLE
    if not parent.reply_to_post_id and not parent.repost_of_post_id:
        return ELIGIBLE
    if rec.conversation_id and parent.reply_to_post_id == rec.conversation_id:
        return IF_FOLLOWED
    return INELIGIBLE
