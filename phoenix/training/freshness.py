"""Fit a retriever's re-rank (phoenix/rerank.py: freshness and author affinity) on validation
engagements.

Three shapes are fitted and the one with the better validation recall@100 is kept:
- one weight of `-log1p(age_hours)`, searched over FRESHNESS_WEIGHTS (the earlier recipe);
- a bias per age bucket (AGE_EDGES_H), fitted by maximum likelihood: the full-corpus softmax
  of `scale * similarity + bias[bucket(age)]` over each validation query's allowed posts
  (those existing at the query time, minus what the user engaged with before, as the
  held-out evaluation ranks them) is maximised in the biases, for each similarity scale in
  BIAS_SCALES (the scale stands for the softmax temperature). The log-likelihood is concave
  in the biases and depends on the corpus only through each query's per-bucket sums of
  exp(scale * similarity), so a few Newton steps on a [queries, cells] table fit it. The
  served bonus is bias / scale (ranking by similarity + bias / scale is ranking by the fitted
  logit). A bucket shape can take a cliff, e.g. a feed that never serves posts older than
  its look-back, which one log weight cannot: on the demo world the impressions come from
  the last 12 hours only;
- the bucket biases and the author-affinity weight (`weight * log1p(the user's engagements
  with the post's author)`) fitted jointly the same way, a post's cell being its age bucket
  and its affinity level (phoenix/training/affinity.py).
The weights, scales and buckets are searched on the training window only (the caller passes
engagements no model it judges was fitted on; phoenix/training/retriever.py)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from phoenix.evaluation.retrieval import Seen, retrieval_metrics, sample_queries, target_ranks
from phoenix.rerank import NO_AFFINITY, NO_SCORING, Affinity, Freshness, Scoring, age_bucket, count_matrix
from phoenix.training import affinity
from phoenix.training.data import RetrieveExample, post_created_ms

# Searched in order; the first best wins, so ties go to the smaller weight.
FRESHNESS_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
# Upper edges (hours) of the age buckets: finer where feeds' look-backs end (12 h, 24 h, 48 h).
AGE_EDGES_H = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 20.0, 24.0, 30.0, 36.0, 48.0)
BIAS_SCALES = (1.0, 2.0, 5.0, 10.0)  # similarity multipliers (1 / temperature) tried
BIAS_L2 = 1e-3                        # ridge on the biases: a bucket without targets stays finite
MAX_EVAL_QUERIES = 3000               # validation queries (the corpus is scored per query)
_MS_PER_HOUR = 3_600_000.0

Similarity = Callable[[list[RetrieveExample]], np.ndarray]  # queries -> [len, corpus] similarity
UserEmbeddings = Callable[[list[RetrieveExample]], np.ndarray]  # queries -> [len, D]
Counts = Callable[[list[RetrieveExample]], np.ndarray]  # queries -> [len, corpus] engagements with each author


@dataclass(frozen=True)
class BucketTables:
    """What the re-rank likelihood needs of the validation queries, per similarity scale: cell =
    age bucket * affinity.LEVELS + affinity level (the level is 0 everywhere without counts)."""
    log_z: np.ndarray          # [scales, Q, cells] log sum of exp(scale * similarity) of the allowed posts per cell
    target_logit: np.ndarray   # [scales, Q] scale * the target's similarity
    target_cell: np.ndarray    # [Q] the target's cell


def allowed_posts(part: list[RetrieveExample], corpus_ids: np.ndarray, created_ms: np.ndarray,
                  seen: Seen) -> tuple[np.ndarray, np.ndarray]:
    """([len(part), corpus] mask of the posts each query ranks its target among, [len(part)]
    target columns): existing at the query time, not engaged by the user before (target kept)."""
    position = {int(p): i for i, p in enumerate(corpus_ids)}
    allowed = created_ms[None, :] <= np.asarray([q.time_ms for q in part], np.int64)[:, None]
    for row, q in enumerate(part):
        cols = [position[p] for p in seen.before(q.user_id, q.time_ms) if p in position]
        allowed[row, cols] = False
    targets = np.asarray([position[int(q.post_id)] for q in part], np.int64)
    allowed[np.arange(len(part)), targets] = True
    return allowed, targets


def bucket_tables(similarity: Similarity, queries: list[RetrieveExample], corpus_ids: np.ndarray,
                  seen: Seen, scales: Sequence[float] = BIAS_SCALES, edges_h: Sequence[float] = AGE_EDGES_H,
                  batch: int = 256, counts: Counts | None = None) -> BucketTables:
    """The likelihood tables of these queries; `counts`: each query's engagements with each
    post's author (the affinity levels; none: level 0 for every post)."""
    corpus_ids = np.asarray(corpus_ids, np.uint64)
    created = post_created_ms(corpus_ids)
    known = set(corpus_ids.tolist())
    queries = [q for q in queries if int(q.post_id) in known]
    cells, s = (len(edges_h) + 1) * affinity.LEVELS, np.asarray(scales, np.float64)
    log_z, target_logit, target_cell = [], [], []
    for lo in range(0, len(queries), batch):
        part = queries[lo:lo + batch]
        sim = np.asarray(similarity(part), np.float64)
        allowed, targets = allowed_posts(part, corpus_ids, created, seen)
        now = np.asarray([q.time_ms for q in part], np.float64)[:, None]
        cell = age_bucket(np.maximum(now - created[None, :], 0.0) / _MS_PER_HOUR, edges_h) * affinity.LEVELS
        if counts is not None:
            cell = cell + affinity.levels(counts(part))
        rows = np.arange(len(part))
        logits = s[:, None, None] * sim[None]                     # [S, B, N]
        peak = np.max(np.where(allowed, logits, -np.inf), axis=2, keepdims=True)
        weight = np.where(allowed, np.exp(logits - peak), 0.0)
        flat = (rows[:, None] * cells + cell).ravel()             # per-cell sums, one bincount per scale
        z = np.stack([np.bincount(flat, w.ravel(), len(part) * cells).reshape(len(part), cells) for w in weight])
        with np.errstate(divide="ignore"):
            log_z.append(np.log(z) + peak)
        target_logit.append(logits[:, rows, targets])
        target_cell.append(cell[rows, targets])
    if not log_z:
        return BucketTables(np.zeros((len(s), 0, cells)), np.zeros((len(s), 0)), np.zeros(0, np.int64))
    return BucketTables(np.concatenate(log_z, axis=1), np.concatenate(target_logit, axis=1),
                        np.concatenate(target_cell))


def fit_bucket_bias(log_z: np.ndarray, target_bucket: np.ndarray, l2: float = BIAS_L2,
                    iterations: int = 50) -> np.ndarray:
    """[K] biases maximising the mean over queries of log softmax (bias + log_z[q])[target]
    minus a ridge (affinity.fit_cell_logit with one indicator per bucket). The
    target-independent part of the logit (scale * target similarity) does not move it."""
    return affinity.fit_cell_logit(log_z, target_bucket, np.eye(log_z.shape[1]), l2, iterations)


def cached_similarity(users: UserEmbeddings, corpus: np.ndarray, queries: list[RetrieveExample],
                      batch: int = 512) -> Similarity:
    """Similarity of these queries to the corpus embeddings [N, D], the user tower run once per
    query (every candidate freshness is scored on the same queries)."""
    rows = {id(q): i for i, q in enumerate(queries)}
    parts = [np.asarray(users(queries[lo:lo + batch]), np.float32) for lo in range(0, len(queries), batch)]
    table = np.concatenate(parts) if parts else np.zeros((0, corpus.shape[1]), np.float32)
    return lambda part: table[[rows[id(q)] for q in part]] @ corpus.T


def _candidates(tables: BucketTables, scales: Sequence[float], with_affinity: bool) -> dict[str, Scoring]:
    """The maximum-likelihood re-rank per scale: bucket biases alone, and (`with_affinity`)
    bucket biases and the affinity weight fitted jointly; served as theta / scale."""
    k = tables.log_z.shape[2] // affinity.LEVELS
    out = {}
    for i, scale in enumerate(scales):
        for joint in (False, True) if with_affinity else (False,):
            theta = affinity.fit_cell_logit(tables.log_z[i], tables.target_cell, affinity.cell_features(k, joint),
                                            BIAS_L2) / scale
            fresh = Freshness(0.0, AGE_EDGES_H, tuple(float(b) for b in theta[:k]))
            name = f"buckets{'+affinity' if joint else ''} scale {scale}"
            out[name] = Scoring(fresh, Affinity(float(theta[k])) if joint else NO_AFFINITY)
    return out


def fit_freshness(users: UserEmbeddings, corpus: np.ndarray, corpus_ids: np.ndarray, seen: Seen,
                  validation: list[RetrieveExample], weights: Sequence[float] = FRESHNESS_WEIGHTS, seed: int = 0,
                  scales: Sequence[float] = BIAS_SCALES, corpus_authors: np.ndarray | None = None,
                  history_len: int = 0) -> tuple[Scoring, dict[str, float]]:
    """The re-rank with the best validation recall@100 among the log weights and the fitted
    bucket biases, alone and (given `corpus_authors` and the model's `history_len`) jointly
    with the author-affinity weight (one fit per scale), and every candidate's recall (keyed
    "weight W" / "buckets scale S" / "buckets+affinity scale S"; with no `weights`, no
    freshness: "none" / "affinity scale S"). Ties go to the earlier candidate: the log weights,
    smallest first, and a re-rank without affinity before one with it. `corpus`: the candidate
    embeddings [N, D] of `corpus_ids`."""
    queries = sample_queries(validation, MAX_EVAL_QUERIES, seed)
    similarity = cached_similarity(users, corpus, queries)
    created = post_created_ms(np.asarray(corpus_ids, np.uint64))
    authors = np.zeros(len(corpus_ids), np.uint64) if corpus_authors is None else corpus_authors

    def counts_of(part: list[RetrieveExample]) -> np.ndarray:
        return count_matrix([q.history for q in part], authors, history_len)
    counts = counts_of if corpus_authors is not None and history_len > 0 else None
    candidates = {f"weight {w}": Scoring(Freshness(w)) for w in weights}
    if weights:
        tables = bucket_tables(similarity, queries, corpus_ids, seen, scales, counts=counts)
        candidates.update(_candidates(tables, scales, counts is not None))
    elif counts is not None:  # no freshness asked for: similarity alone, or with the affinity alone
        candidates["none"] = NO_SCORING
        tables = bucket_tables(similarity, queries, corpus_ids, seen, scales, (), counts=counts)
        for i, scale in enumerate(scales):
            theta = affinity.fit_cell_logit(tables.log_z[i], tables.target_cell, affinity.cell_features(1, True)[:, 1:],
                                            BIAS_L2)
            candidates[f"affinity scale {scale}"] = Scoring(affinity=Affinity(float(theta[0] / scale)))
    recall: dict[str, float] = {}
    for name, scoring in candidates.items():
        def scored(part, sc=scoring):
            now = np.asarray([q.time_ms for q in part], np.float64)[:, None]
            # (only the affinity candidates, which exist only with counts, call counts_of)
            return sc.rescored(similarity(part), created, now, lambda: counts_of(part))
        recall[name] = retrieval_metrics(target_ranks(scored, queries, corpus_ids, seen=seen))["recall@100"]
    if not recall:
        return NO_SCORING, recall
    best = max(recall, key=lambda name: recall[name])  # max keeps the first of equals
    return candidates[best], recall
