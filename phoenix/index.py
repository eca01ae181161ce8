"""The corpus index: candidate-tower embeddings of all recent posts, searched by dot product.

Storage is a growable numpy matrix with a free-slot list (deleted and expired posts give
their row back). Search is exact (one matrix product per micro-batch of queries) up to
`ann_threshold` posts; above it an HNSW graph (usearch, phoenix/index_ann.py) answers
queries, because at 1M x 128 the exact product costs tens of ms per query on a CPU while
HNSW stays near a millisecond at high recall (bench/phoenix_service.py measures both).

Exclusions (post ids, author ids): exact search masks them in the score matrix (one product,
one partition); the HNSW graph cannot, so there search over-fetches and filters, fetching four
times more until k results survive or the corpus is exhausted.

Re-rank: with a checkpoint's `Scoring` (phoenix/rerank.py: what each term adds and why),
search over-fetches `FRESHNESS_OVERFETCH * k` posts by similarity, adds the posts of the
authors the query's user engaged with whatever their similarity (the best
`FRESHNESS_OVERFETCH * k` of them by similarity + affinity), and orders the pool by
similarity plus the terms' bonuses, with the function the evaluation scores with.

Tombstones: a removed (deleted) post id is remembered until it is older than the retention,
and an upsert of a remembered id is ignored, so a delete wins over its create whatever order
they arrive in, and over a redelivered create (as in Thunder).

All methods are thread-safe: the Kafka feeder mutates while searches run in executor threads.
"""
from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from foryou import snowflake
from phoenix.rerank import NO_AFFINITY, NO_SCORING, Affinity, AuthorPosts, EngagedAuthors, Scoring, author_counts
from phoenix.settings import DEFAULT_ANN_THRESHOLD

if TYPE_CHECKING:  # usearch is imported when the graph is first built
    from phoenix.index_ann import AnnIndex

_EMPTY = np.uint64(0)


@dataclass(frozen=True)
class ScoredPost:
    post_id: int
    author_id: int
    score: float


@dataclass(frozen=True)
class Exclusions:
    post_ids: frozenset[int] = frozenset()
    author_ids: frozenset[int] = frozenset()

    def allows(self, post_id: int, author_id: int) -> bool:
        return post_id not in self.post_ids and author_id not in self.author_ids


NO_EXCLUSIONS = Exclusions()
# Candidates fetched by similarity alone before the freshness re-rank, per result wanted.
FRESHNESS_OVERFETCH = 4
# Posts fetched beyond those wanted: the freshness re-rank's pool is the most similar
# `k * FRESHNESS_OVERFETCH + FETCH_MARGIN` allowed posts.
FETCH_MARGIN = 16

created_ms_of = snowflake.created_at_ms_array   # creation times (ms) read from the ids


@dataclass
class CorpusIndex:
    dim: int
    ann_threshold: int = DEFAULT_ANN_THRESHOLD
    initial_capacity: int = 1024
    _vectors: np.ndarray = field(init=False, repr=False)
    _post_ids: np.ndarray = field(init=False, repr=False)    # 0 = free slot
    _author_ids: np.ndarray = field(init=False, repr=False)
    _slot_of: dict[int, int] = field(init=False, repr=False)
    _free: list[int] = field(init=False, repr=False)
    _high: int = field(init=False, default=0, repr=False)    # slots [0, _high) have been used
    _ann: AnnIndex | None = field(init=False, default=None, repr=False)
    _lock: threading.RLock = field(init=False, repr=False)
    _tombstones: set[int] = field(init=False, repr=False)    # deleted post ids
    _by_author: AuthorPosts = field(init=False, repr=False)

    def __post_init__(self) -> None:
        cap = max(1, self.initial_capacity)
        self._vectors = np.zeros((cap, self.dim), np.float32)
        self._post_ids = np.zeros(cap, np.uint64)
        self._author_ids = np.zeros(cap, np.uint64)
        self._slot_of = {}
        self._free = []
        self._lock = threading.RLock()
        self._tombstones = set()
        self._by_author = AuthorPosts()

    # ---- size and membership -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, post_id: int) -> bool:
        return int(post_id) in self._slot_of

    @property
    def uses_ann(self) -> bool:
        return self._ann is not None

    def posts(self) -> tuple[np.ndarray, np.ndarray]:
        """(post_ids, author_ids) of every indexed post, e.g. to re-embed with a new model."""
        with self._lock:
            used = self._post_ids[: self._high] != _EMPTY
            return self._post_ids[: self._high][used].copy(), self._author_ids[: self._high][used].copy()

    def vector(self, post_id: int) -> np.ndarray:
        with self._lock:
            return self._vectors[self._slot_of[int(post_id)]].copy()

    # ---- mutation ---------------------------------------------------------------------------

    def upsert(self, post_ids: Sequence[int], author_ids: Sequence[int], embeddings: np.ndarray) -> None:
        """Add posts (or replace the embedding of posts already indexed). Deleted posts
        (tombstoned ids) are skipped."""
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.shape != (len(post_ids), self.dim):
            raise ValueError(f"embeddings shape {embeddings.shape} != ({len(post_ids)}, {self.dim})")
        with self._lock:
            if self._tombstones:
                keep = [i for i, p in enumerate(post_ids) if int(p) not in self._tombstones]
                if len(keep) < len(post_ids):
                    post_ids = [post_ids[i] for i in keep]
                    author_ids = [author_ids[i] for i in keep]
                    embeddings = embeddings[keep]
            if not len(post_ids):
                return
            slots = np.array([self._take_slot(int(p)) for p in post_ids], np.int64)
            self._vectors[slots] = embeddings
            self._by_author.replace(slots, self._author_ids[slots], author_ids)
            self._post_ids[slots] = np.asarray(post_ids, np.uint64)
            self._author_ids[slots] = np.asarray(author_ids, np.uint64)
            if self._ann is not None:
                self._ann.upsert(np.asarray(post_ids, np.uint64), embeddings)
            elif len(self) > self.ann_threshold:
                self._build_ann()

    def delete(self, post_ids: Iterable[int]) -> int:
        """Drop deleted posts and tombstone their ids, known or not yet (a delete that
        arrives before its create). Returns how many indexed posts were dropped."""
        post_ids = [int(p) for p in post_ids]
        with self._lock:
            self._tombstones.update(post_ids)
            return self.remove(post_ids)

    def is_deleted(self, post_id: int) -> bool:
        return int(post_id) in self._tombstones

    def copy_tombstones_from(self, other: "CorpusIndex") -> None:
        """Carry the deletions over to a rebuilt index (a re-embedding after a reload)."""
        with other._lock:
            tombstones = set(other._tombstones)
        with self._lock:
            self._tombstones |= tombstones
            self.remove(tombstones & self._slot_of.keys())

    def remove(self, post_ids: Iterable[int]) -> int:
        """Drop posts (expired ones; `delete` for deleted ones); unknown ids are ignored.
        Returns how many were dropped."""
        with self._lock:
            removed = []
            for post_id in post_ids:
                slot = self._slot_of.pop(int(post_id), None)
                if slot is None:
                    continue
                self._post_ids[slot] = _EMPTY
                self._by_author.discard(int(self._author_ids[slot]), slot)
                self._author_ids[slot] = _EMPTY
                self._vectors[slot] = 0.0
                self._free.append(slot)
                removed.append(int(post_id))
            if removed and self._ann is not None:
                self._ann.remove(np.asarray(removed, np.uint64))
            return len(removed)

    def expire(self, now_ms: int, max_age_ms: int) -> int:
        """Drop posts created more than `max_age_ms` before `now_ms` (age read from the id)."""
        cutoff = max(now_ms - max_age_ms, snowflake.TWITTER_EPOCH_MS)
        oldest_kept = np.uint64(snowflake.make_id(cutoff))
        with self._lock:
            ids = self._post_ids[: self._high]
            old = ids[(ids != _EMPTY) & (ids < oldest_kept)]
            # A tombstone outlives its post only as long as a create could still be kept.
            self._tombstones = {p for p in self._tombstones if p >= int(oldest_kept)}
            return self.remove(old.tolist())

    def _take_slot(self, post_id: int) -> int:
        slot = self._slot_of.get(post_id)
        if slot is not None:
            return slot
        if self._free:
            slot = self._free.pop()
        else:
            if self._high == len(self._post_ids):
                self._grow()
            slot = self._high
            self._high += 1
        self._slot_of[post_id] = slot
        return slot

    def _grow(self) -> None:
        cap = len(self._post_ids) * 2
        self._vectors = np.concatenate([self._vectors, np.zeros_like(self._vectors)])[:cap]
        self._post_ids = np.concatenate([self._post_ids, np.zeros_like(self._post_ids)])
        self._author_ids = np.concatenate([self._author_ids, np.zeros_like(self._author_ids)])

    def _build_ann(self) -> None:
        from phoenix.index_ann import AnnIndex

        post_ids, _ = self.posts()
        slots = np.array([self._slot_of[int(p)] for p in post_ids], np.int64)
        ann = AnnIndex(self.dim)
        ann.upsert(post_ids, self._vectors[slots])
        self._ann = ann

    def enable_ann(self) -> None:
        """Build the ANN graph now, whatever the size (benchmarks and tests)."""
        with self._lock:
            if self._ann is None:
                self._build_ann()

    # ---- search -----------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, exclusions: Sequence[Exclusions] | None = None,
               exact: bool = False, scoring: Scoring = NO_SCORING, now_ms: int | None = None,
               engaged: Sequence[EngagedAuthors] | None = None) -> list[list[ScoredPost]]:
        """Top-k posts by dot product for each query row ([B, dim]), best first, skipping each
        query's exclusions. `exact=True` forces the matrix product (recall measurement). With
        an active `scoring.freshness`, scores are similarity + its bonus for the age at
        `now_ms`; with an active `scoring.affinity`, + its bonus for each query's `engaged`
        authors (phoenix/rerank.py)."""
        freshness, affinity = scoring.freshness, scoring.affinity
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        exclusions = list(exclusions) if exclusions is not None else [NO_EXCLUSIONS] * len(queries)
        if len(exclusions) != len(queries):
            raise ValueError("one Exclusions per query")
        engaged = list(engaged) if engaged is not None and affinity.active else [{}] * len(queries)
        if len(engaged) != len(queries):
            raise ValueError("one engaged-authors map per query")
        if freshness.active and now_ms is None:
            now_ms = snowflake.now_ms()
        rerank = freshness.active or any(engaged)
        wanted = k * FRESHNESS_OVERFETCH if rerank else k
        at_ms = now_ms if now_ms is not None else 0  # only read when freshness is active: set above

        def finish(i: int, hits: list[ScoredPost]) -> list[ScoredPost]:
            if not rerank:
                return hits[:k]
            if engaged[i]:
                hits = hits + self._author_hits(queries[i], engaged[i], exclusions[i], {h.post_id for h in hits},
                                                affinity, wanted)
            return _rerank(hits, scoring, at_ms, engaged[i])[:k]
        with self._lock:
            if self._ann is None or exact:
                # The re-rank pool keeps the first fetch's margin, as before the masking.
                found = self._exact(queries, wanted + FETCH_MARGIN if rerank else k, exclusions)
                return [finish(i, hits) for i, hits in enumerate(found)]
            size = len(self)
            results: list[list[ScoredPost] | None] = [None] * len(queries)
            fetch = {i: min(size, wanted + len(ex.post_ids) + FETCH_MARGIN) for i, ex in enumerate(exclusions)}
            pending = list(range(len(queries)))
            while pending:  # the graph cannot mask: over-fetch, filter, fetch more while short
                fetched = self._fetch_ann(queries[pending], max(fetch[i] for i in pending))
                still = []
                for row, i in enumerate(pending):
                    hits = [h for h in fetched[row] if exclusions[i].allows(h.post_id, h.author_id)]
                    if len(hits) >= wanted or fetch[i] >= size:
                        results[i] = finish(i, hits)
                    else:  # exclusions ate the fetch: ask for more
                        fetch[i] = min(size, fetch[i] * 4)
                        still.append(i)
                pending = still
            return results  # type: ignore[return-value]

    def _author_hits(self, query: np.ndarray, engaged: EngagedAuthors, ex: Exclusions, pooled: set[int],
                     affinity: Affinity, limit: int) -> list[ScoredPost]:
        """The engaged authors' allowed posts not already in the pool, scored by similarity: the
        best `limit` by similarity plus the affinity bonus (what the re-rank can keep)."""
        slots = self._by_author.slots(a for a in engaged if a not in ex.author_ids)
        if len(slots) and (pooled or ex.post_ids):
            skip = np.fromiter(pooled | ex.post_ids, np.uint64)
            slots = slots[~np.isin(self._post_ids[slots], skip)]
        scores = self._vectors[slots] @ query
        if len(slots) > limit:
            keep = np.argpartition(-(scores + affinity.bonus(author_counts(engaged, self._author_ids[slots]))),
                                   limit - 1)[:limit]
            slots, scores = slots[keep], scores[keep]
        return [ScoredPost(p, a, sc) for p, a, sc in zip(self._post_ids[slots].tolist(),
                                                         self._author_ids[slots].tolist(), scores.tolist())]

    def _fetch_ann(self, queries: np.ndarray, n: int) -> list[list[ScoredPost]]:
        if n <= 0 or self._ann is None:
            return [[] for _ in queries]
        keys, scores = self._ann.search(queries, n)
        return [self._scored_by_id(k_row, s_row) for k_row, s_row in zip(keys, scores)]

    def _exact(self, queries: np.ndarray, n: int, exclusions: Sequence[Exclusions]) -> list[list[ScoredPost]]:
        """The top `n` allowed posts per query, best first: free slots and each query's
        exclusions are masked in the score matrix itself, so one product and one partition
        answer every query (filtering fetched hits in Python cost more than the product)."""
        hi = self._high
        n = min(n, hi)
        if n <= 0:
            return [[] for _ in queries]
        scores = queries @ self._vectors[:hi].T
        scores[:, self._post_ids[:hi] == _EMPTY] = -np.inf
        for row, ex in enumerate(exclusions):
            if ex.post_ids or ex.author_ids:
                scores[row, self._excluded_rows(ex, hi)] = -np.inf
        top = np.argpartition(-scores, n - 1, axis=1)[:, :n] if n < hi else np.tile(np.arange(hi), (len(queries), 1))
        out = []
        for row in range(len(queries)):
            cand = top[row]
            cand = cand[np.argsort(-scores[row, cand], kind="stable")]
            cand = cand[scores[row, cand] > -np.inf]  # fewer allowed posts than n
            out.append([ScoredPost(p, a, s) for p, a, s in zip(
                self._post_ids[cand].tolist(), self._author_ids[cand].tolist(), scores[row, cand].tolist())])
        return out

    def _excluded_rows(self, ex: Exclusions, hi: int) -> np.ndarray:
        """[hi] bool: the slots of excluded posts and of excluded authors' posts."""
        rows = np.zeros(hi, bool)
        if ex.post_ids:
            slots = np.fromiter(map(self._slot_of.get, ex.post_ids, itertools.repeat(-1)), np.int64,
                                len(ex.post_ids))
            rows[slots[slots >= 0]] = True
        if ex.author_ids:
            rows |= np.isin(self._author_ids[:hi], np.fromiter(ex.author_ids, np.uint64, len(ex.author_ids)))
        return rows

    def _scored_by_id(self, keys: np.ndarray, scores: np.ndarray) -> list[ScoredPost]:
        out = []
        for key, score in zip(keys.tolist(), scores.tolist()):
            slot = self._slot_of.get(int(key))
            if slot is not None:
                out.append(ScoredPost(int(key), int(self._author_ids[slot]), float(score)))
        return out


def _rerank(hits: list[ScoredPost], scoring: Scoring, now_ms: int,
            engaged: EngagedAuthors | None = None) -> list[ScoredPost]:
    """The hits re-scored with the scoring's freshness and affinity bonuses, best first (stable
    for equal scores)."""
    if not hits:
        return hits
    authors = np.array([h.author_id for h in hits], np.uint64)
    scores = (scoring if engaged else replace(scoring, affinity=NO_AFFINITY)).rescored(
        np.array([[h.score for h in hits]], np.float64), created_ms_of([h.post_id for h in hits]),
        np.array([[now_ms]], np.float64), lambda: author_counts(engaged or {}, authors)[None, :])[0]
    return [ScoredPost(hits[j].post_id, hits[j].author_id, float(scores[j]))
            for j in np.argsort(-scores, kind="stable")]


def recall_at_k(approx: list[list[ScoredPost]], exact: list[list[ScoredPost]]) -> float:
    """Mean fraction of the exact top-k that the approximate search also returned."""
    fractions = []
    for got, want in zip(approx, exact):
        if want:
            wanted = {p.post_id for p in want}
            fractions.append(len(wanted & {p.post_id for p in got}) / len(wanted))
    return float(np.mean(fractions)) if fractions else 1.0
