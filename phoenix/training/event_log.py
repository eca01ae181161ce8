"""What training needs from the foryou topics, as numpy columns (no message kept per event).

`collect` streams (topic, message) pairs into column builders, a chunk at a time, so the
memory it holds is the columns (a few dozen bytes per engagement and per served candidate)
plus one chunk, whatever the log's length. Engagements and served events are sorted by time
(stable: equal times keep the order they were read in).

Actions are kept as bit masks: bit `a` is the `common_pb2.Action` value `a` (1..N); bit 0
stands for any value outside 1..N (no label, no history column, but not negative feedback
either)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from google.protobuf.message import Message

from foryou import topics
from foryou_protos import common_pb2
from phoenix.actions import NEGATIVE_ACTIONS, NUM_BINARY_ACTIONS
from phoenix.post_kind import post_kind_codes

OTHER_ACTION_BIT = np.uint64(1)  # an action value outside 1..N
BINARY_BITS = np.uint64(((1 << NUM_BINARY_ACTIONS) - 1) << 1)
NEGATIVE_BITS = np.uint64(sum(1 << a for a in NEGATIVE_ACTIONS))
CHUNK = 65_536  # records buffered as Python ints before they become numpy columns


def action_bits(actions: Iterable[int]) -> int:
    """The bit mask of a message's actions."""
    bits = 0
    for a in actions:
        bits |= 1 << a if 1 <= a <= NUM_BINARY_ACTIONS else 1
    return bits


def actions_of(bits: int) -> frozenset[int]:
    """Action values of a bit mask (0 for the 'other' bit)."""
    return frozenset(a for a in range(NUM_BINARY_ACTIONS + 1) if bits >> a & 1)


def model_actions(bits: int) -> tuple[int, ...]:
    """Model action indices (0..N-1, ascending) of a bit mask's engagement actions."""
    return tuple(a - 1 for a in range(1, NUM_BINARY_ACTIONS + 1) if bits >> a & 1)


class _Columns:
    """Append rows of Python values; `arrays()` gives one numpy column per name. Rows wait in
    lists of at most CHUNK before they are converted, so Python objects never pile up."""

    def __init__(self, dtypes: dict[str, type]) -> None:
        self.dtypes = dtypes
        self.pending: dict[str, list] = {k: [] for k in dtypes}
        self.parts: dict[str, list[np.ndarray]] = {k: [] for k in dtypes}

    def add(self, *values) -> None:
        for key, value in zip(self.pending, values):
            self.pending[key].append(value)
        if len(self.pending[next(iter(self.pending))]) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        for key, values in self.pending.items():
            if values:
                self.parts[key].append(np.asarray(values, self.dtypes[key]))
            self.pending[key] = []

    def arrays(self) -> dict[str, np.ndarray]:
        self.flush()
        return {k: np.concatenate(p) if p else np.zeros(0, self.dtypes[k]) for k, p in self.parts.items()}


@dataclass(frozen=True)
class Posts:
    """Every created post, sorted by id (= creation time)."""
    ids: np.ndarray        # uint64
    authors: np.ndarray    # uint64
    repost_of: np.ndarray  # uint64, 0 = an original
    deleted: np.ndarray    # bool
    texts: list[str]       # aligned with ids (the content vectors are encoded from them)
    kinds: np.ndarray | None = None  # [N, 3] int8 the post's own post_kind codes (None: all missing)

    def __len__(self) -> int:
        return len(self.ids)

    def kind_codes(self) -> np.ndarray:
        """[N, 3] post_kind codes (zeros, "missing", for posts read without them)."""
        return np.zeros((len(self.ids), 3), np.int8) if self.kinds is None else self.kinds

    def find(self, post_ids) -> tuple[np.ndarray, np.ndarray]:
        """(row, known) of each id: `known` says whether the post was created."""
        post_ids = np.asarray(post_ids, np.uint64)
        row = np.minimum(np.searchsorted(self.ids, post_ids), max(len(self.ids) - 1, 0))
        known = self.ids[row] == post_ids if len(self.ids) else np.zeros(post_ids.shape, bool)
        return row, known

    def known(self, post_ids) -> np.ndarray:
        return self.find(post_ids)[1]

    def authors_of(self, post_ids) -> np.ndarray:
        """Author of each id (0 for a post never created)."""
        row, known = self.find(post_ids)
        return np.where(known, self.authors[row] if len(self.ids) else 0, 0).astype(np.uint64)


@dataclass(frozen=True)
class Engagements:
    """Engagement records in time order."""
    user: np.ndarray     # uint64
    post: np.ndarray     # uint64
    author: np.ndarray   # uint64: the record's post_author_id
    time: np.ndarray     # int64 ms
    actions: np.ndarray  # uint64 bit mask (module docstring)
    dwell: np.ndarray    # int64 ms
    surface: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.user)

    def take(self, rows) -> "Engagements":
        return Engagements(*(getattr(self, f)[rows] for f in _ENGAGEMENT_FIELDS))

    @classmethod
    def of(cls, messages: Iterable[common_pb2.Engagement]) -> "Engagements":
        return collect((topics.ENGAGEMENTS, m) for m in messages).engagements


_ENGAGEMENT_FIELDS = ("user", "post", "author", "time", "actions", "dwell", "surface")


@dataclass(frozen=True)
class Served:
    """Served events in time order; event i showed posts[offsets[i]:offsets[i + 1]]."""
    user: np.ndarray     # uint64
    time: np.ndarray     # int64 ms
    offsets: np.ndarray  # int64 [n + 1]
    posts: np.ndarray    # uint64

    def __len__(self) -> int:
        return len(self.user)

    def take(self, rows) -> "Served":
        rows = np.asarray(rows, np.int64)
        counts = np.diff(self.offsets)[rows]
        return Served(self.user[rows], self.time[rows], np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                      self.posts[_ranges(self.offsets[rows], counts)])


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of arange(s, s + c) for each (s, c)."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + within


@dataclass
class EventLog:
    """The posts, engagements and served events training reads, as columns."""
    posts: Posts
    engagements: Engagements
    served: Served
    _cache: dict = field(default_factory=dict, repr=False)  # derived tables (content, timelines)

    def cached(self, key: str, make):
        """A table derived from the log, made once (the log is not changed after collect)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    @property
    def post_ids(self) -> np.ndarray:
        return self.posts.ids

    def content_store(self):
        """Content vectors of every post (phoenix.content.ContentStore), encoded once, in id
        (= time) order so that a repost finds its original."""
        return self.cached("content", self._encode_content)

    def _encode_content(self):
        from phoenix.content import ContentStore
        store = ContentStore(initial_capacity=max(1, len(self.posts)))
        kinds = self.posts.kind_codes()
        for lo in range(0, len(self.posts), 8192):
            part = slice(lo, lo + 8192)
            store.add_posts(self.posts.ids[part].tolist(), self.posts.texts[part], self.posts.repost_of[part].tolist(),
                            kinds[part])
        return store

    def of_users(self, keep) -> "EventLog":
        """The engagements and served events of the users `keep(user ids) -> bool mask` keeps,
        with every post (what features and the codebook need)."""
        return EventLog(self.posts, self.engagements.take(keep(self.engagements.user)),
                        self.served.take(np.flatnonzero(keep(self.served.user))))


class EventLogBuilder:
    """Events added one at a time (a Kafka read, a file), kept as columns as they come, so a
    read holds no protobuf messages; `build()` joins them into an EventLog."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Forget everything added (a replay that starts over)."""
        self.posts = _Columns({"id": np.uint64, "author": np.uint64, "repost_of": np.uint64, "photos": np.int64,
                               "video_ms": np.int64, "reply_to": np.uint64, "quote_of": np.uint64})
        self.texts: list[str] = []
        self.deleted: list[int] = []
        self.engagements = _Columns({"user": np.uint64, "post": np.uint64, "author": np.uint64,
                                     "time": np.int64, "actions": np.uint64, "dwell": np.int64,
                                     "surface": np.int32})
        self.served = _Columns({"user": np.uint64, "time": np.int64, "count": np.int64})
        self.served_posts = _Columns({"post": np.uint64})

    def add(self, topic: str, message: Message) -> None:
        if topic == topics.POSTS:
            kind = message.WhichOneof("event")
            if kind == "created":
                post = message.created
                self.posts.add(post.post_id, post.author_id, post.repost_of_post_id, post.photo_count,
                               post.video_duration_ms, post.in_reply_to_post_id, post.quote_of_post_id)
                self.texts.append(post.text)
            elif kind == "deleted":
                self.deleted.append(message.deleted.post_id)
        elif topic == topics.ENGAGEMENTS:
            e = message
            self.engagements.add(e.user_id, e.post_id, e.post_author_id, e.timestamp_ms,
                                 action_bits(e.actions), e.dwell_time_ms, int(e.surface))
        elif topic == topics.SERVED:
            self.served.add(message.user_id, message.served_at_ms, len(message.post_ids))
            for p in message.post_ids:
                self.served_posts.add(p)

    def build(self) -> EventLog:
        return EventLog(_posts(self.posts.arrays(), self.texts, self.deleted),
                        _engagements(self.engagements.arrays()),
                        _served(self.served.arrays(), self.served_posts.arrays()["post"]))


def collect(events: Iterable[tuple[str, Message]]) -> EventLog:
    builder = EventLogBuilder()
    for topic, message in events:
        builder.add(topic, message)
    return builder.build()


def _posts(columns: dict, texts: list[str], deleted: list[int]) -> Posts:
    # a post created twice keeps its last record, as a dict keyed by id would
    ids = columns["id"]
    order = np.argsort(ids, kind="stable")
    last = np.ones(len(ids), bool)
    last[:-1] = ids[order][1:] != ids[order][:-1]
    rows = order[last]
    kinds = post_kind_codes(columns["photos"][rows], columns["video_ms"][rows], columns["reply_to"][rows],
                            columns["repost_of"][rows], columns["quote_of"][rows])
    kept = Posts(ids[rows], columns["author"][rows], columns["repost_of"][rows], np.zeros(len(rows), bool),
                 [texts[i] for i in rows], kinds)
    row, known = kept.find(np.asarray(deleted, np.uint64))
    kept.deleted[row[known]] = True
    return kept


def _engagements(columns: dict) -> Engagements:
    order = np.argsort(columns["time"], kind="stable")
    return Engagements(*(columns[f][order] for f in _ENGAGEMENT_FIELDS))


def _served(columns: dict, posts: np.ndarray) -> Served:
    counts = columns["count"]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Served(columns["user"], columns["time"], offsets, posts).take(np.argsort(columns["time"], kind="stable"))
