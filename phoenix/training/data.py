"""Training and evaluation examples from the event log's columns (phoenix/training/event_log.py).

- Ranker: one example per `served` event (and chunk of at most `chunk` of its shown posts that
  exist): the labels are the actions of the user's first engagement with each post AFTER that
  impression and within `label_window_ms` (no such record = negative on every head; an
  engagement from before the impression is history, never a label); the history is the
  user's engagements before the serving time.
- Retriever: one example per engagement with a positive action: the user's earlier history
  and the engaged post (negatives come from the other posts in the batch).

Examples are tables of columns (`RankExamples`, `RetrieveExamples`): a history is a row range
of the log's `History` (engagements grouped by user, in time order), so an example costs a few
integers, not a copy of its history. Indexing one gives the per-example view (`RankExample`,
`RetrieveExample`) that evaluation code reads; training builds its arrays from the columns.
They are built a block of served events / engagements at a time, with `Timeline` look-ups.

Examples are split by time: the last `test_fraction` of the timeline is held out, so the
model is judged on the future, as it is used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from foryou import snowflake
from foryou_protos import common_pb2
from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.features import CandidateItem, HistoryColumns, HistoryItem
from phoenix.training.event_log import (BINARY_BITS, NEGATIVE_ACTIONS, NEGATIVE_BITS, EventLog, actions_of,  # noqa: F401
                                        collect, model_actions)
from phoenix.training.timeline import Timeline, windows

# Candidates are scored for the home feed; the engagement's own surface would leak the label.
CANDIDATE_SURFACE = common_pb2.HOME_FOR_YOU
DWELL_UNIT_MS = 1000.0  # the dwell_time head predicts seconds
LABEL_WINDOW_MS = 24 * 3600 * 1000  # an engagement counts for an impression up to a day after it
BLOCK = 65_536  # served events / engagements whose look-ups are done at once
_MODEL_MASK = np.uint64((1 << NUM_BINARY_ACTIONS) - 1)


@dataclass(frozen=True)
class History:
    """Engagements with an engagement action, grouped by user and in time order (ties keep the
    log's order): every history is a row range [lo, hi) of these columns."""
    post: np.ndarray     # uint64
    author: np.ndarray   # uint64: the record's post_author_id
    actions: np.ndarray  # uint32 bit mask of model action indices
    surface: np.ndarray  # int32
    time: np.ndarray     # int64
    dwell: np.ndarray    # int64

    def items(self, lo: int, hi: int) -> tuple[HistoryItem, ...]:
        return tuple(HistoryItem(int(self.post[i]), int(self.author[i]), model_actions(int(self.actions[i]) << 1),
                                 int(self.surface[i]), int(self.time[i]), int(self.dwell[i])) for i in range(lo, hi))

    def columns(self, lo: np.ndarray, hi: np.ndarray, width: int) -> HistoryColumns:
        """[B, width] history columns of rows lo..hi-1 per example, oldest first, padded after."""
        idx, valid = windows(lo, hi, width)
        if not len(self.post):
            idx = np.zeros_like(idx)
            return HistoryColumns(*(np.zeros(idx.shape, dt) for dt in (np.uint64, np.uint64, np.uint32, np.int32,
                                                                       np.int64, np.int64)))
        take = lambda col: np.where(valid, col[idx], 0).astype(col.dtype)  # noqa: E731
        return HistoryColumns(take(self.post), take(self.author), take(self.actions), take(self.surface),
                              take(self.time), take(self.dwell))

    @classmethod
    def of(cls, histories) -> tuple["History", np.ndarray, np.ndarray]:
        """(History, lo, hi) holding the given HistoryItem sequences one after another."""
        items = [it for h in histories for it in h]
        counts = np.asarray([len(h) for h in histories], np.int64)
        hi = np.cumsum(counts)
        table = cls(np.asarray([it.post_id for it in items], np.uint64),
                    np.asarray([it.author_id for it in items], np.uint64),
                    np.asarray([sum(1 << a for a in it.actions) for it in items], np.uint32),
                    np.asarray([it.surface for it in items], np.int32),
                    np.asarray([it.time_ms for it in items], np.int64),
                    np.asarray([it.dwell_ms for it in items], np.int64))
        return table, hi - counts, hi


def history_of(log: EventLog) -> tuple[History, Timeline]:
    """The log's History and its per-user Timeline (made once per log)."""
    def make():
        e = log.engagements
        rows = np.flatnonzero(e.actions & BINARY_BITS)
        timeline = Timeline(e.user[rows], e.time[rows], rows)
        r = timeline.rows
        bits = ((e.actions[r] >> np.uint64(1)) & _MODEL_MASK).astype(np.uint32)
        return History(e.post[r], e.author[r], bits, e.surface[r], e.time[r], e.dwell[r]), timeline
    return log.cached("history", make)


class _Table:
    """Rows of an example table: len, iteration and indexing (an int: the per-example view; a
    slice, mask or index array: a smaller table)."""

    def take(self, rows) -> Any:
        raise NotImplementedError

    def item(self, i: int) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.user)  # type: ignore[attr-defined]  # every table has a user column

    def __iter__(self):
        return (self.item(i) for i in range(len(self)))

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self.item(int(key) + (len(self) if key < 0 else 0))
        rows = np.arange(len(self))[key]
        return self.take(rows)


@dataclass(frozen=True)
class RankExample:
    user_id: int
    time_ms: int
    history: tuple[HistoryItem, ...]
    candidates: tuple[CandidateItem, ...]
    labels: np.ndarray      # [C, 18] 0/1
    dwell: np.ndarray       # [C] seconds (0 when not engaged)


@dataclass(frozen=True, eq=False)
class RankExamples(_Table):
    """Ranker examples; example i's candidates are rows offsets[i]:offsets[i + 1] of the
    candidate columns."""
    user: np.ndarray        # uint64 [N]
    time: np.ndarray        # int64 [N]: the impression time
    lo: np.ndarray          # int64 [N]: history rows lo..hi-1
    hi: np.ndarray
    offsets: np.ndarray     # int64 [N + 1]
    post: np.ndarray        # uint64 [M]
    author: np.ndarray      # uint64 [M]
    surface: np.ndarray     # int32 [M]
    label_bits: np.ndarray  # uint32 [M]: bit a = model action a
    dwell: np.ndarray       # float32 [M] seconds
    history: History

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def labels(self) -> np.ndarray:
        """[M, 18] float32 0/1 labels of every candidate, in example order."""
        return ((self.label_bits[:, None] >> np.arange(NUM_BINARY_ACTIONS, dtype=np.uint32)) & 1).astype(np.float32)

    @property
    def candidate_users(self) -> np.ndarray:
        return np.repeat(self.user, self.counts)

    def item(self, i: int) -> RankExample:
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        candidates = tuple(CandidateItem(int(p), int(u), int(s))
                           for p, u, s in zip(self.post[a:b], self.author[a:b], self.surface[a:b]))
        return RankExample(int(self.user[i]), int(self.time[i]), self.history.items(int(self.lo[i]), int(self.hi[i])),
                           candidates, self.labels[a:b], self.dwell[a:b])

    def take(self, rows) -> "RankExamples":
        rows = np.asarray(rows, np.int64)
        counts = self.counts[rows]
        flat = ranges(self.offsets[rows], counts)
        return RankExamples(self.user[rows], self.time[rows], self.lo[rows], self.hi[rows],
                            np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), self.post[flat],
                            self.author[flat], self.surface[flat], self.label_bits[flat], self.dwell[flat],
                            self.history)

    @classmethod
    def of(cls, examples: list[RankExample]) -> "RankExamples":
        """A table of per-example views (hand-made examples)."""
        history, lo, hi = History.of([ex.history for ex in examples])
        cands = [c for ex in examples for c in ex.candidates]
        labels = np.concatenate([ex.labels for ex in examples]) if examples else np.zeros((0, NUM_BINARY_ACTIONS))
        bits = (labels.astype(np.uint32) << np.arange(NUM_BINARY_ACTIONS, dtype=np.uint32)).sum(axis=1, dtype=np.uint32)
        counts = np.asarray([len(ex.candidates) for ex in examples], np.int64)
        return cls(np.asarray([ex.user_id for ex in examples], np.uint64),
                   np.asarray([ex.time_ms for ex in examples], np.int64), lo, hi,
                   np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                   np.asarray([c.post_id for c in cands], np.uint64), np.asarray([c.author_id for c in cands], np.uint64),
                   np.asarray([c.surface for c in cands], np.int32), bits,
                   np.concatenate([ex.dwell for ex in examples]).astype(np.float32) if examples else np.zeros(0, np.float32),
                   history)


@dataclass(frozen=True)
class RetrieveExample:
    user_id: int
    time_ms: int
    history: tuple[HistoryItem, ...]
    post_id: int
    author_id: int
    actions: frozenset = frozenset()  # common_pb2.Action values of the engagement


@dataclass(frozen=True, eq=False)
class RetrieveExamples(_Table):
    """Retriever examples: one engaged post each."""
    user: np.ndarray     # uint64 [N]
    time: np.ndarray     # int64 [N]
    lo: np.ndarray       # int64 [N]: history rows lo..hi-1
    hi: np.ndarray
    post: np.ndarray     # uint64 [N]
    author: np.ndarray   # uint64 [N]: the post's author
    actions: np.ndarray  # uint64 [N]: the engagement's action bits (event_log.py)
    history: History

    def item(self, i: int) -> RetrieveExample:
        return RetrieveExample(int(self.user[i]), int(self.time[i]), self.history.items(int(self.lo[i]), int(self.hi[i])),
                               int(self.post[i]), int(self.author[i]), actions_of(int(self.actions[i])))

    def take(self, rows) -> "RetrieveExamples":
        return RetrieveExamples(*(getattr(self, f)[rows] for f in ("user", "time", "lo", "hi", "post", "author",  # type: ignore[call-arg]
                                                                   "actions")), self.history)

    def with_actions(self, actions) -> "RetrieveExamples":
        """The examples whose engagement has any of these action values."""
        mask = np.uint64(sum(1 << int(a) for a in actions))
        return self.take(np.flatnonzero(self.actions & mask))

    @classmethod
    def of(cls, examples: list[RetrieveExample]) -> "RetrieveExamples":
        from phoenix.training.event_log import action_bits
        history, lo, hi = History.of([ex.history for ex in examples])
        col = lambda name, dt: np.asarray([getattr(ex, name) for ex in examples], dt)  # noqa: E731
        return cls(col("user_id", np.uint64), col("time_ms", np.int64), lo, hi, col("post_id", np.uint64),
                   col("author_id", np.uint64), np.asarray([action_bits(ex.actions) for ex in examples], np.uint64),
                   history)


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of arange(s, s + c) for each (s, c)."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    return np.repeat(np.asarray(starts, np.int64) - np.cumsum(counts) + counts, counts) + np.arange(total)


@dataclass(frozen=True)
class Split:
    cutoff_ms: int           # examples at or after it are held out
    train: Any  # RankExamples or RetrieveExamples
    test: Any
    log: EventLog | None = None  # where the examples came from (post content for v2 models)


def time_cutoff(times, test_fraction: float) -> int:
    times = np.asarray(times, np.int64)
    if not len(times):
        return 0
    return int(np.quantile(times, 1.0 - test_fraction))


def _outcomes(log: EventLog) -> Timeline:
    """Every engagement of a created post, grouped by (user, post) pair, in time order."""
    def make():
        e = log.engagements
        row, known = log.posts.find(e.post)
        rows = np.flatnonzero(known)
        return Timeline(_pair_keys(log, e.user[rows], row[rows]), e.time[rows], rows)
    return log.cached("outcomes", make)


def _pair_keys(log: EventLog, users: np.ndarray, post_rows: np.ndarray) -> np.ndarray:
    users_seen = log.cached("engaged_users", lambda: np.unique(log.engagements.user))
    u = np.minimum(np.searchsorted(users_seen, users), max(len(users_seen) - 1, 0))
    u = np.where(users_seen[u] == users, u, len(users_seen)) if len(users_seen) else np.zeros(len(users), np.int64)
    return u.astype(np.uint64) * np.uint64(len(log.posts) + 1) + np.asarray(post_rows, np.uint64)


def rank_examples(log: EventLog, history_len: int, chunk: int,
                  label_window_ms: int = LABEL_WINDOW_MS) -> RankExamples:
    """One example per served event and chunk of at most `chunk` of its candidates."""
    history, timeline = history_of(log)
    parts = [_rank_block(log, timeline, lo, history_len, chunk, label_window_ms)
             for lo in range(0, len(log.served), BLOCK)]
    if not parts:
        empty = np.zeros(0, np.int64)
        return RankExamples(empty.astype(np.uint64), empty, empty, empty, np.zeros(1, np.int64), empty.astype(np.uint64),
                            empty.astype(np.uint64), empty.astype(np.int32), empty.astype(np.uint32),
                            empty.astype(np.float32), history)
    shift = np.cumsum([0] + [p[4][-1] for p in parts[:-1]])
    columns = [np.concatenate([p[k] for p in parts]) for k in range(10) if k != 4]
    offsets = np.concatenate([[0]] + [p[4][1:] + s for p, s in zip(parts, shift)]).astype(np.int64)
    return RankExamples(*columns[:4], offsets, *columns[4:], history)  # type: ignore[call-arg, arg-type]


def _rank_block(log: EventLog, timeline: Timeline, start: int, history_len: int, chunk: int, window_ms: int):
    served = log.served.take(np.arange(start, min(start + BLOCK, len(log.served))))
    post_row, known = log.posts.find(served.posts)
    event = np.repeat(np.arange(len(served)), np.diff(served.offsets))[known]
    posts, post_row = served.posts[known], post_row[known]
    kept = np.bincount(event, minlength=len(served))
    position = np.arange(len(posts)) - np.repeat(np.cumsum(kept) - kept, kept)  # within its event
    chunks = -(-kept // chunk)
    example = np.repeat(np.cumsum(chunks) - chunks, kept) + position // chunk
    of_example = np.repeat(np.arange(len(served)), chunks)
    lo, hi = timeline.before(served.user, served.time, history_len)
    # labels: the pair's first engagement at or after the impression, if inside the window
    users, times = served.user[event], served.time[event]
    outcomes = _outcomes(log)
    first = outcomes.first_at_or_after(_pair_keys(log, users, post_row), times)
    source = outcomes.rows[np.maximum(first, 0)] if len(outcomes) else np.zeros(len(first), np.int64)
    e = log.engagements
    hit = (first >= 0) & (e.time[source] < times + window_ms) if len(e) else np.zeros(len(first), bool)
    bits = np.where(hit, (e.actions[source] >> np.uint64(1)) & _MODEL_MASK, 0).astype(np.uint32) if len(e) else \
        np.zeros(len(first), np.uint32)
    dwell = np.where(hit, e.dwell[source] / DWELL_UNIT_MS, 0).astype(np.float32) if len(e) else \
        np.zeros(len(first), np.float32)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(example, minlength=len(of_example)))]).astype(np.int64)
    return (served.user[of_example], served.time[of_example], lo[of_example], hi[of_example], offsets, posts,
            log.posts.authors[post_row], np.full(len(posts), CANDIDATE_SURFACE, np.int32), bits, dwell)


def retrieve_examples(log: EventLog, history_len: int) -> RetrieveExamples:
    """One example per engagement of a created post with any action that is not negative
    feedback, in time order."""
    history, timeline = history_of(log)
    e = log.engagements
    rows = np.flatnonzero(log.posts.known(e.post) & (e.actions & ~NEGATIVE_BITS != 0))
    lo, hi = np.zeros(len(rows), np.int64), np.zeros(len(rows), np.int64)
    for a in range(0, len(rows), BLOCK):
        part = rows[a:a + BLOCK]
        lo[a:a + BLOCK], hi[a:a + BLOCK] = timeline.before(e.user[part], e.time[part], history_len)
    return RetrieveExamples(e.user[rows], e.time[rows], lo, hi, e.post[rows], log.posts.authors_of(e.post[rows]),
                            e.actions[rows], history)


def hard_negatives(log: EventLog, users, times, k: int) -> tuple[np.ndarray, np.ndarray]:
    """([n, k] post ids, [n, k] author ids): each user's last k negative-feedback engagements
    (not interested, block, mute, report) of created posts before each time, oldest first,
    padded with 0 after."""
    e = log.engagements

    def make():
        rows = np.flatnonzero(log.posts.known(e.post) & (e.actions & NEGATIVE_BITS != 0))
        return Timeline(e.user[rows], e.time[rows], rows)
    timeline = log.cached("hard_negatives", make)
    lo, hi = timeline.before(users, times, k)
    idx, valid = windows(lo, hi, k)
    source = timeline.rows[idx] if len(timeline) else np.zeros(idx.shape, np.int64)
    if not len(timeline):
        return np.zeros(idx.shape, np.uint64), np.zeros(idx.shape, np.uint64)
    return np.where(valid, e.post[source], 0).astype(np.uint64), np.where(valid, e.author[source], 0).astype(np.uint64)


def split_by_time(examples: Any, test_fraction: float = 0.2, log: EventLog | None = None) -> Split:
    cutoff = time_cutoff(examples.time, test_fraction)
    return Split(cutoff, examples.take(np.flatnonzero(examples.time < cutoff)),
                 examples.take(np.flatnonzero(examples.time >= cutoff)), log)


def codebook_posts(log: EventLog, test_fraction: float) -> np.ndarray:
    """Post ids the semantic-id codebook is fitted on: those created before both models' held-out
    windows begin (served and engagement timelines), so neither model's test posts shape it and
    the ranker and the retriever trained on one log share one codebook."""
    cut = min(time_cutoff(log.served.time, test_fraction) or 2**62,
              time_cutoff(log.engagements.time, test_fraction) or 2**62)
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
    """The post content and post_kind codes (a PostFeatureView) a v2 ranker or retriever reads;
    None for an ids-only model."""
    inputs = config.inputs
    if not (inputs.content_dim or inputs.sid_levels or inputs.post_kind):
        return None
    if log is None:
        raise ValueError("a model with content or post-kind inputs needs the event log's posts")
    if inputs.sid_levels and codebook is None:
        raise ValueError("a model with semantic-id inputs needs its codebook")
    from phoenix.content import PostFeatureView
    return PostFeatureView(log.content_store(), codebook)


post_created_ms = snowflake.created_at_ms_array   # creation times read from the ids
