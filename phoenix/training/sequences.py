"""The engagement sequences a v2 retriever trains on (phoenix/training/retriever.py): each
user's engagements in time order, cut into windows whose positions are next-item targets, and
the targets' shares (the in-batch sampling probability a log-Q correction assumes)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from foryou_protos import common_pb2
from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.features import HistoryItem
from phoenix.training.data import EventLog, history_item

POSITIVE_ACTIONS = frozenset({common_pb2.FAVORITE})  # what counts as a positive by default


def is_positive(item: HistoryItem, positives=None) -> bool:
    return any(a - 1 in item.actions for a in (POSITIVE_ACTIONS if positives is None else positives))


def user_sequences(log: EventLog, end_ms: int) -> dict[int, list[HistoryItem]]:
    """Per user, every engagement before `end_ms` in time order (what a history holds)."""
    out: dict[int, list[HistoryItem]] = {}
    for e in log.engagements:  # time order
        if e.timestamp_ms >= end_ms:
            break
        if any(1 <= a <= NUM_BINARY_ACTIONS for a in e.actions):
            out.setdefault(e.user_id, []).append(history_item(e))
    return out


def sequence_windows(sequence: list[HistoryItem], history_len: int) -> list[tuple[list[HistoryItem], int]]:
    """(items, first target slot) windows of at most history_len + 1 consecutive items, stride
    history_len: items[:history_len] is the history, position i's target is items[i]. A later
    window's first item is the previous window's last target (with its full context there), so
    only the first window trains position 0 (the user with no history)."""
    return [(sequence[lo:lo + history_len + 1], 0 if lo == 0 else 1)
            for lo in range(0, max(len(sequence) - 1, 1), history_len)]


@dataclass(frozen=True)
class TargetShares:
    """Each post's share of the training targets (the in-batch sampling probability)."""
    share: dict[int, float]

    @classmethod
    def of(cls, post_ids) -> "TargetShares":
        ids, counts = np.unique(np.asarray(post_ids, np.uint64), return_counts=True)
        total = max(int(counts.sum()), 1)
        return cls({int(p): c / total for p, c in zip(ids, counts)})

    def lookup(self, post_ids: np.ndarray) -> np.ndarray:
        flat = np.asarray(post_ids, np.uint64).reshape(-1)
        return np.asarray([self.share.get(int(p), 0.0) for p in flat], np.float32).reshape(np.shape(post_ids))
