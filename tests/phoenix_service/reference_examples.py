"""The example builders as they were before the event log became columnar: one Python object
per engagement, straight from the protobuf messages. Kept only as the reference the columnar
builders (phoenix/training/data.py) are checked against in test_training_columns.py."""
from __future__ import annotations

import bisect
from collections import defaultdict

import numpy as np

from foryou import topics
from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.features import CandidateItem, HistoryItem
from phoenix.training.data import CANDIDATE_SURFACE, DWELL_UNIT_MS, NEGATIVE_ACTIONS, RankExample, RetrieveExample


class Log:
    def __init__(self, events) -> None:
        self.post_author: dict[int, int] = {}
        self.engagements, self.served = [], []
        for topic, message in events:
            if topic == topics.POSTS and message.WhichOneof("event") == "created":
                self.post_author[message.created.post_id] = message.created.author_id
            elif topic == topics.ENGAGEMENTS:
                self.engagements.append(message)
            elif topic == topics.SERVED:
                self.served.append(message)
        self.engagements.sort(key=lambda e: e.timestamp_ms)
        self.served.sort(key=lambda s: s.served_at_ms)


def history_item(e) -> HistoryItem:
    actions = tuple(sorted({a - 1 for a in e.actions if 1 <= a <= NUM_BINARY_ACTIONS}))
    return HistoryItem(e.post_id, e.post_author_id, actions, int(e.surface), int(e.timestamp_ms), int(e.dwell_time_ms))


class Timelines:
    def __init__(self, engagements, history_len: int) -> None:
        self.history_len = history_len
        self.times: dict[int, list[int]] = defaultdict(list)
        self.items: dict[int, list[HistoryItem]] = defaultdict(list)
        for e in engagements:
            if any(1 <= a <= NUM_BINARY_ACTIONS for a in e.actions):
                self.times[e.user_id].append(e.timestamp_ms)
                self.items[e.user_id].append(history_item(e))

    def before(self, user_id: int, time_ms: int) -> tuple[HistoryItem, ...]:
        cut = bisect.bisect_left(self.times.get(user_id, []), time_ms)
        return tuple(self.items.get(user_id, [])[max(0, cut - self.history_len):cut])


def rank_examples(log: Log, history_len: int, chunk: int, window_ms: int) -> list[RankExample]:
    timelines = Timelines(log.engagements, history_len)
    outcome: dict[tuple[int, int], tuple[list[int], list]] = {}
    for e in log.engagements:
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
                times, records = outcome.get((served.user_id, post_id), ([], []))
                i = bisect.bisect_left(times, served.served_at_ms)
                if i < len(times) and times[i] < served.served_at_ms + window_ms:
                    for a in records[i].actions:
                        if 1 <= a <= NUM_BINARY_ACTIONS:
                            labels[row, a - 1] = 1.0
                    dwell[row] = records[i].dwell_time_ms / DWELL_UNIT_MS
            candidates = tuple(CandidateItem(p, log.post_author[p], CANDIDATE_SURFACE) for p in part)
            out.append(RankExample(served.user_id, served.served_at_ms, history, candidates, labels, dwell))
    return out


def retrieve_examples(log: Log, history_len: int) -> list[RetrieveExample]:
    timelines = Timelines(log.engagements, history_len)
    return [RetrieveExample(e.user_id, e.timestamp_ms, timelines.before(e.user_id, e.timestamp_ms), e.post_id,
                            log.post_author[e.post_id], frozenset(e.actions))
            for e in log.engagements
            if e.post_id in log.post_author and any(a not in NEGATIVE_ACTIONS for a in e.actions)]


def hard_negatives(log: Log, user_id: int, time_ms: int, k: int) -> list[tuple[int, int]]:
    rows = [(e.timestamp_ms, (e.post_id, e.post_author_id)) for e in log.engagements
            if e.user_id == user_id and e.post_id in log.post_author and any(a in NEGATIVE_ACTIONS for a in e.actions)]
    cut = bisect.bisect_left([t for t, _ in rows], time_ms)
    return [r for _, r in rows[max(0, cut - k):cut]]


def sequence_windows(log: Log, end_ms: int, history_len: int, positives, targets_from_ms: int):
    """(user, history, key, post ids, valid) of every window with a target, as the sequential
    retriever's arrays had them."""
    sequences: dict[int, list[HistoryItem]] = {}
    for e in log.engagements:
        if e.timestamp_ms >= end_ms:
            break
        if any(1 <= a <= NUM_BINARY_ACTIONS for a in e.actions):
            sequences.setdefault(e.user_id, []).append(history_item(e))
    out = []
    for key, (user, sequence) in enumerate(sorted(sequences.items())):
        for lo in range(0, max(len(sequence) - 1, 1), history_len):
            items, first = sequence[lo:lo + history_len + 1], 0 if lo == 0 else 1
            ok = [first <= i and any(a - 1 in it.actions for a in positives) and it.time_ms >= targets_from_ms
                  and it.post_id in log.post_author for i, it in enumerate(items)]
            if any(ok):
                pad = history_len + 1 - len(items)
                out.append((user, items[:history_len], key,
                            [it.post_id if v else 0 for it, v in zip(items, ok)] + [0] * pad, ok + [False] * pad))
    return out
