"""The retriever's fitted re-rank terms, added to the similarity of the posts a search pools
(phoenix/index.py) and to every post's in the evaluation (phoenix/training/retriever_scoring.py).

Freshness: a retriever's candidate tower sees only post and author ids, so it cannot tell a
post's age, while engagements go mostly to recent posts: `Freshness` adds a bonus for the age
read from the snowflake id (phoenix/training/freshness.py fits it).

Author affinity:
Engagements concentrate on the authors a user already engages with (the accounts they follow
fill much of a feed), and a user embedding, one vector mixing every history item, blurs
which authors those were. The re-rank adds `weight * log1p(n)` to a post's score, `n` the
user's positive engagements (any action but negative feedback) with the post's author among
the last `history_len` items of the history the query brings, so serving (the Retrieve
request's history) and the evaluation (each query's history) count the same items.
phoenix/training/freshness.py fits the weight with the freshness biases; weight 0 (the
default, and what a checkpoint without one loads as) leaves scores as they were.

`AuthorPosts` keeps, per author, the index slots of their posts, so search can add an engaged
author's posts to the re-rank pool whatever their similarity (phoenix/index.py)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from phoenix.actions import NEGATIVE_ACTIONS
from phoenix.features import HistoryItem

# model action indices (proto value - 1) of negative feedback
NEGATIVE_INDICES = frozenset(a - 1 for a in NEGATIVE_ACTIONS)
_MS_PER_HOUR = 3_600_000.0
EngagedAuthors = Mapping[int, int]  # author id -> the user's positive engagements with them


@dataclass(frozen=True)
class Freshness:
    """The retrieval score is `similarity + weight * -log1p(age_hours) + bias[bucket(age)]`:
    `bias[i]` is added to posts aged below `edges_h[i]` hours and at least the edge before it
    (the last bias: every older post), fitted per age bucket (phoenix/training/freshness.py), so
    a shape that one log weight cannot take (a cliff where a feed stops showing posts) is
    kept. Weight 0 and no biases (the default, e.g. for an untrained model): pure similarity."""
    weight: float = 0.0
    edges_h: tuple[float, ...] = ()   # ascending upper edges of the age buckets, hours
    bias: tuple[float, ...] = ()      # len(edges_h) + 1 values, or none

    @property
    def active(self) -> bool:
        return self.weight != 0.0 or any(b != 0.0 for b in self.bias)

    def bonus(self, created_ms: np.ndarray, now_ms) -> np.ndarray:
        """Score added for posts created at `created_ms` as seen at `now_ms` (broadcasts; a
        post from the future counts as brand new)."""
        age_h = np.maximum(np.asarray(now_ms, np.float64) - np.asarray(created_ms, np.float64), 0.0) / _MS_PER_HOUR
        out = -self.weight * np.log1p(age_h)
        if self.bias:
            out = out + np.asarray(self.bias, np.float64)[age_bucket(age_h, self.edges_h)]
        return out

    def to_dict(self) -> dict:
        out: dict = {"freshness_weight": self.weight}
        if self.bias:
            out["freshness_age_edges_h"], out["freshness_age_bias"] = list(self.edges_h), list(self.bias)
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> "Freshness":
        data = data or {}
        return cls(float(data.get("freshness_weight", 0.0)), tuple(map(float, data.get("freshness_age_edges_h", ()))),
                   tuple(map(float, data.get("freshness_age_bias", ()))))


def age_bucket(age_h: np.ndarray, edges_h: Sequence[float]) -> np.ndarray:
    """Index of each age's bucket: 0 below the first edge, len(edges_h) at or above the last."""
    return np.searchsorted(np.asarray(edges_h, np.float64), age_h, side="right")


NO_FRESHNESS = Freshness()


@dataclass(frozen=True)
class Affinity:
    weight: float = 0.0

    @property
    def active(self) -> bool:
        return self.weight != 0.0

    def bonus(self, counts: np.ndarray) -> np.ndarray:
        """Score added for posts whose authors the user engaged with `counts` times."""
        return self.weight * np.log1p(np.asarray(counts, np.float64))

    def to_dict(self) -> dict:
        return {"affinity_weight": self.weight} if self.active else {}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Affinity":
        return cls(float((data or {}).get("affinity_weight", 0.0)))


NO_AFFINITY = Affinity()


def is_positive(item: HistoryItem) -> bool:
    return any(a not in NEGATIVE_INDICES for a in item.actions)


def engaged_authors(history: Sequence[HistoryItem], history_len: int) -> dict[int, int]:
    """Positive engagements per author among the last `history_len` items (what the model reads)."""
    recent = history[-history_len:] if history_len > 0 else ()
    return dict(Counter(item.author_id for item in recent if is_positive(item)))


def author_counts(engaged: EngagedAuthors, authors: np.ndarray) -> np.ndarray:
    """[len(authors)] the engagement count of each author id (0 for the others)."""
    authors = np.asarray(authors, np.uint64)
    out = np.zeros(authors.shape, np.float64)
    if engaged:
        keys = np.fromiter(engaged.keys(), np.uint64, len(engaged))
        values = np.fromiter(engaged.values(), np.float64, len(engaged))
        order = np.argsort(keys)
        keys, values = keys[order], values[order]
        at = np.minimum(np.searchsorted(keys, authors), len(keys) - 1)
        hit = keys[at] == authors
        out[hit] = values[at[hit]]
    return out


def count_matrix(histories: Iterable[Sequence[HistoryItem]], corpus_authors: np.ndarray,
                 history_len: int) -> np.ndarray:
    """[queries, corpus] each query's engagement count with each corpus post's author."""
    rows = [author_counts(engaged_authors(h, history_len), corpus_authors) for h in histories]
    return np.stack(rows) if rows else np.zeros((0, len(corpus_authors)))


class AuthorPosts:
    """Index slots per author id (not thread-safe: the index calls it under its lock)."""

    def __init__(self) -> None:
        self._slots: dict[int, set[int]] = {}

    def add(self, author_id: int, slot: int) -> None:
        self._slots.setdefault(int(author_id), set()).add(int(slot))

    def discard(self, author_id: int, slot: int) -> None:
        slots = self._slots.get(int(author_id))
        if slots is not None:
            slots.discard(int(slot))
            if not slots:
                del self._slots[int(author_id)]

    def replace(self, slots: np.ndarray, old_authors: np.ndarray, new_authors: Sequence[int]) -> None:
        """Slots (re)written with new authors (old author 0: a slot that was free)."""
        for slot, old, new in zip(np.asarray(slots).tolist(), np.asarray(old_authors).tolist(), new_authors):
            if old:
                self.discard(old, slot)
            self.add(new, slot)

    def slots(self, author_ids: Iterable[int]) -> np.ndarray:
        """Sorted slots of every post by these authors."""
        found = [s for a in author_ids for s in self._slots.get(int(a), ())]
        return np.unique(np.asarray(found, np.int64))


@dataclass(frozen=True)
class Scoring:
    """Every fitted re-rank term of a retriever checkpoint (its scoring.json; a key absent
    leaves its term off, so older checkpoints score as they did)."""
    freshness: Freshness = NO_FRESHNESS
    affinity: Affinity = NO_AFFINITY

    def to_dict(self) -> dict:
        return {**self.freshness.to_dict(), **self.affinity.to_dict()}

    def rescored(self, similarity: np.ndarray, created_ms: np.ndarray, now_ms: np.ndarray,
                 counts: Callable[[], np.ndarray]) -> np.ndarray:
        """[Q, N] similarity plus the active terms' bonuses, as a search re-ranks: the ages of
        posts created at `created_ms` [N] seen at `now_ms` [Q, 1], and `counts()` [Q, N], each
        query's engagements with each post's author (called only with an active affinity)."""
        out = similarity
        if self.freshness.active:
            out = out + self.freshness.bonus(created_ms[None, :], now_ms)
        if self.affinity.active:
            out = out + self.affinity.bonus(counts())
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> "Scoring":
        return cls(Freshness.from_dict(data), Affinity.from_dict(data))


NO_SCORING = Scoring()
