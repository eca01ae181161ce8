"""Training and evaluation examples from the foryou topics (or an event file of them).

- Ranker: one example per `served` event: the candidates are the posts that were shown, the
  labels are the actions of the user's first engagement with each post AFTER that impression
  and within `label_window_ms` (no such record = negative on every head; an engagement from
  before the impression is history, never a label); the history is the user's engagements
  before the serving time.
- Retriever: one example per engagement with a positive action: the user's earlier history
  and the engaged post (negatives come from the other posts in the batch).

Examples are split by time: the last `test_fraction` of the timeline is held out, so the
model is judged on the future, as it is used.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from google.protobuf.message import Message

from foryou import snowflake, topics
from foryou_protos import common_pb2
from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.features import CandidateItem, HistoryItem

NEGATIVE_ACTIONS = frozenset({common_pb2.NOT_INTERESTED, common_pb2.BLOCK_AUTHOR,
                              common_pb2.MUTE_AUTHOR, common_pb2.REPORT})
# Candidates are scored for the home feed; the engagement's own surface would leak the label.
CANDIDATE_SURFACE = common_pb2.HOME_FOR_YOU
DWELL_UNIT_MS = 1000.0  # the dwell_time head predicts seconds
LABEL_WINDOW_MS = 24 * 3600 * 1000  # an engagement counts for an impression up to a day after it


@dataclass
class EventLog:
    """What training needs from the topics, in time order."""
    post_author: dict[int, int] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    engagements: list[common_pb2.Engagement] = field(default_factory=list)
    served: list = field(default_factory=list)  # events_pb2.ServedEvent
    post_text: dict[int, str] = field(default_factory=dict)
    repost_of: dict[int, int] = field(default_factory=dict)  # repost id -> original id
    _content: object = field(default=None, repr=False)

    def content_store(self):
        """Content vectors of every post (phoenix.content.ContentStore), encoded once, in id
        (= time) order so that a repost finds its original."""
        if self._content is None:
            from phoenix.content import ContentStore
            store = ContentStore(initial_capacity=max(1, len(self.post_author)))
            ids = sorted(self.post_author)
            for lo in range(0, len(ids), 8192):
                part = ids[lo:lo + 8192]
                store.add_posts(part, [self.post_text.get(p, "") for p in part],
                                [self.repost_of.get(p, 0) for p in part])
            self._content = store
        return self._content

    @property
    def post_ids(self) -> np.ndarray:
        return np.fromiter(self.post_author.keys(), np.uint64, len(self.post_author))


def collect(events: Iterable[tuple[str, Message]]) -> EventLog:
    log = EventLog()
    for topic, message in events:
        if topic == topics.POSTS:
            kind = message.WhichOneof("event")
            if kind == "created":
                post = message.created
                log.post_author[post.post_id] = post.author_id
                log.post_text[post.post_id] = post.text
                if post.repost_of_post_id:
                    log.repost_of[post.post_id] = post.repost_of_post_id
            elif kind == "deleted":
                log.deleted.add(message.deleted.post_id)
        elif topic == topics.ENGAGEMENTS:
            log.engagements.append(message)
        elif topic == topics.SERVED:
            log.served.append(message)
    log.engagements.sort(key=lambda e: e.timestamp_ms)
    log.served.sort(key=lambda s: s.served_at_ms)
    return log


def history_item(engagement: common_pb2.Engagement) -> HistoryItem:
    actions = tuple(sorted({a - 1 for a in engagement.actions if 1 <= a <= NUM_BINARY_ACTIONS}))
    return HistoryItem(engagement.post_id, engagement.post_author_id, actions, int(engagement.surface),
                       int(engagement.timestamp_ms), int(engagement.dwell_time_ms))


class Timelines:
    """Per user, engagements in time order, to cut 'the history before time t' quickly."""

    def __init__(self, engagements: list[common_pb2.Engagement], history_len: int) -> None:
        self.history_len = history_len
        self._times: dict[int, list[int]] = defaultdict(list)
        self._items: dict[int, list[HistoryItem]] = defaultdict(list)
        for e in engagements:
            if any(1 <= a <= NUM_BINARY_ACTIONS for a in e.actions):
                self._times[e.user_id].append(e.timestamp_ms)
                self._items[e.user_id].append(history_item(e))

    def before(self, user_id: int, time_ms: int) -> tuple[HistoryItem, ...]:
        cut = bisect.bisect_left(self._times.get(user_id, []), time_ms)
        return tuple(self._items.get(user_id, [])[max(0, cut - self.history_len):cut])


@dataclass(frozen=True)
class RankExample:
    user_id: int
    time_ms: int
    history: tuple[HistoryItem, ...]
    candidates: tuple[CandidateItem, ...]
    labels: np.ndarray      # [C, 18] 0/1
    dwell: np.ndarray       # [C] seconds (0 when not engaged)


@dataclass(frozen=True)
class RetrieveExample:
    user_id: int
    time_ms: int
    history: tuple[HistoryItem, ...]
    post_id: int
    author_id: int
    actions: frozenset = frozenset()  # common_pb2.Action values of the engagement


@dataclass(frozen=True)
class Split:
    cutoff_ms: int           # examples at or after it are held out
    train: list
    test: list
    log: EventLog | None = None  # where the examples came from (post content for v2 models)


def time_cutoff(times: list[int], test_fraction: float) -> int:
    if not times:
        return 0
    return int(np.quantile(np.asarray(times, np.int64), 1.0 - test_fraction))


def first_after(outcomes: dict[tuple[int, int], tuple[list[int], list]], user_id: int, post_id: int,
                time_ms: int, window_ms: int):
    """The user's first engagement with the post at or after `time_ms` and within the window."""
    found = outcomes.get((user_id, post_id))
    if found is None:
        return None
    times, records = found
    i = bisect.bisect_left(times, time_ms)
    return records[i] if i < len(times) and times[i] < time_ms + window_ms else None


def rank_examples(log: EventLog, history_len: int, chunk: int,
                  label_window_ms: int = LABEL_WINDOW_MS) -> list[RankExample]:
    """One example per served event and chunk of at most `chunk` of its candidates."""
    timelines = Timelines(log.engagements, history_len)
    outcome: dict[tuple[int, int], tuple[list[int], list]] = {}
    for e in log.engagements:  # time order
        times, records = outcome.setdefault((e.user_id, e.post_id), ([], []))
        times.append(e.timestamp_ms)
        records.append(e)
    out = []
    for served in log.served:
        posts = [p for p in served.post_ids if p in log.post_author]
        history = timelines.before(served.user_id, served.served_at_ms)
        for lo in range(0, len(posts), chunk):
            part = posts[lo:lo + chunk]
            labels = np.zeros((len(part), NUM_BINARY_ACTIONS), np.float32)
            dwell = np.zeros(len(part), np.float32)
            for row, post_id in enumerate(part):
                engagement = first_after(outcome, served.user_id, post_id, served.served_at_ms, label_window_ms)
                if engagement is not None:
                    for a in engagement.actions:
                        if 1 <= a <= NUM_BINARY_ACTIONS:
                            labels[row, a - 1] = 1.0
                    dwell[row] = engagement.dwell_time_ms / DWELL_UNIT_MS
            candidates = tuple(CandidateItem(p, log.post_author[p], CANDIDATE_SURFACE) for p in part)
            out.append(RankExample(served.user_id, served.served_at_ms, history, candidates, labels, dwell))
    return out


def retrieve_examples(log: EventLog, history_len: int) -> list[RetrieveExample]:
    timelines = Timelines(log.engagements, history_len)
    out = []
    for e in log.engagements:
        if e.post_id in log.post_author and any(a not in NEGATIVE_ACTIONS for a in e.actions):
            out.append(RetrieveExample(e.user_id, e.timestamp_ms, timelines.before(e.user_id, e.timestamp_ms),
                                       e.post_id, log.post_author[e.post_id], frozenset(e.actions)))
    return out


def split_by_time(examples: list, test_fraction: float = 0.2, log: EventLog | None = None) -> Split:
    cutoff = time_cutoff([ex.time_ms for ex in examples], test_fraction)
    return Split(cutoff, [ex for ex in examples if ex.time_ms < cutoff],
                 [ex for ex in examples if ex.time_ms >= cutoff], log)


def codebook_posts(log: EventLog, test_fraction: float) -> np.ndarray:
    """Post ids the semantic-id codebook is fitted on: those created before both models' held-out
    windows begin (served and engagement timelines), so neither model's test posts shape it and
    the ranker and the retriever trained on one log share one codebook."""
    cut = min(time_cutoff([s.served_at_ms for s in log.served], test_fraction) or 2**62,
              time_cutoff([e.timestamp_ms for e in log.engagements], test_fraction) or 2**62)
    ids = log.post_ids
    return ids[post_created_ms(ids) < cut] if len(ids) else ids


def fit_codebook_for(log: EventLog, inputs, test_fraction: float, seed: int = 0):
    """The RQ-k-means codebook of a v2 model (None for a model without semantic ids)."""
    if not inputs.sid_levels:
        return None
    from phoenix.sid import fit_codebook
    store = log.content_store()
    return fit_codebook(store.get(codebook_posts(log, test_fraction)), inputs.sid_levels, inputs.sid_codes, seed)


def features_for(config, log: EventLog | None, codebook):
    """The post content (a PostFeatureView) a v2 ranker or retriever reads; None for an
    ids-only model."""
    inputs = config.inputs
    if not (inputs.content_dim or inputs.sid_levels):
        return None
    if log is None:
        raise ValueError("a model with content inputs needs the event log's post texts")
    if inputs.sid_levels and codebook is None:
        raise ValueError("a model with semantic-id inputs needs its codebook")
    from phoenix.content import PostFeatureView
    return PostFeatureView(log.content_store(), codebook)


post_created_ms = snowflake.created_at_ms_array   # creation times read from the ids


class HardNegatives:
    """Per user, the posts they gave negative feedback (not interested, block, mute, report), in
    time order, to take 'the most recent ones before time t'."""

    def __init__(self, log: EventLog) -> None:
        self._times: dict[int, list[int]] = defaultdict(list)
        self._posts: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for e in log.engagements:
            if e.post_id in log.post_author and any(a in NEGATIVE_ACTIONS for a in e.actions):
                self._times[e.user_id].append(e.timestamp_ms)
                self._posts[e.user_id].append((e.post_id, e.post_author_id))

    def before(self, user_id: int, time_ms: int, k: int) -> list[tuple[int, int]]:
        cut = bisect.bisect_left(self._times.get(user_id, []), time_ms)
        return self._posts.get(user_id, [])[max(0, cut - k):cut]
