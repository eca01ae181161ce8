"""The engagement sequences a v2 retriever trains on (phoenix/training/retriever.py): each
user's engagements in time order, cut into windows whose positions are next-item targets, and
the targets' shares (the in-batch sampling probability a log-Q correction assumes)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from foryou_protos import common_pb2
from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.training.timeline import Timeline

POSITIVE_ACTIONS = frozenset({common_pb2.FAVORITE})  # what counts as a positive by default


def model_mask(positives=None) -> int:
    """Bit mask of the positive actions' model indices (History.actions bits)."""
    chosen = POSITIVE_ACTIONS if positives is None else positives
    return sum(1 << (a - 1) for a in chosen if 1 <= a <= NUM_BINARY_ACTIONS)


def window_bounds(lengths: np.ndarray, history_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(sequence, start, stop, first target slot) of every window of sequences of these lengths:
    at most history_len + 1 consecutive items, stride history_len: items[:history_len] is the
    history, position i's target is items[i]. A later window's first item is the previous
    window's last target (with its full context there), so only the first window trains
    position 0 (the user with no history)."""
    lengths = np.asarray(lengths, np.int64)
    count = -(-np.maximum(lengths - 1, 1) // history_len)
    sequence = np.repeat(np.arange(len(lengths)), count)
    k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    start = k * history_len
    return sequence, start, np.minimum(start + history_len + 1, lengths[sequence]), (k > 0).astype(np.int64)


def sequence_windows(sequence: list, history_len: int) -> list[tuple[list, int]]:
    """window_bounds of one sequence, as (items, first target slot) pairs."""
    _, start, stop, first = window_bounds(np.asarray([len(sequence)]), history_len)
    return [(sequence[a:b], int(f)) for a, b, f in zip(start, stop, first)]


def user_windows(timeline: Timeline, end_ms: int, history_len: int):
    """Windows of every user's engagements before `end_ms` (timeline: the log's History
    timeline): (user, user key = rank among those users, lo, hi, first target slot), lo..hi-1
    being rows of the History."""
    users = timeline.groups
    lo, hi = timeline.before(users, np.full(len(users), end_ms, np.int64))
    engaged = hi > lo
    users, lo, hi = users[engaged], lo[engaged], hi[engaged]
    sequence, start, stop, first = window_bounds(hi - lo, history_len)
    return users[sequence], sequence, lo[sequence] + start, lo[sequence] + stop, first


@dataclass(frozen=True)
class TargetShares:
    """Each post's share of the training targets (the in-batch sampling probability)."""
    ids: np.ndarray    # sorted uint64
    share: np.ndarray  # float64

    @classmethod
    def of(cls, post_ids) -> "TargetShares":
        ids, counts = np.unique(np.asarray(post_ids, np.uint64), return_counts=True)
        return cls(ids, counts / max(int(counts.sum()), 1))

    def lookup(self, post_ids: np.ndarray) -> np.ndarray:
        flat = np.asarray(post_ids, np.uint64).reshape(-1)
        if not len(self.ids):
            return np.zeros(np.shape(post_ids), np.float32)
        at = np.minimum(np.searchsorted(self.ids, flat), len(self.ids) - 1)
        return np.where(self.ids[at] == flat, self.share[at], 0.0).astype(np.float32).reshape(np.shape(post_ids))
