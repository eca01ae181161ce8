"""Fit a retriever's freshness re-rank (phoenix.index.Freshness) on validation engagements.

Two shapes are fitted and the one with the better validation recall@100 is kept:
- one weight of `-log1p(age_hours)`, searched over FRESHNESS_WEIGHTS (the earlier recipe);
- a bias per age bucket (AGE_EDGES_H), fitted by maximum likelihood: the full-corpus softmax
  of `scale * similarity + bias[bucket(age)]` over each validation query's allowed posts
  (those existing at the query time, minus what the user engaged with before, as the
  held-out evaluation ranks them) is maximised in the biases, for each similarity scale in
  BIAS_SCALES (the scale stands for the softmax temperature). The log-likelihood is concave
  in the biases and depends on the corpus only through each query's per-bucket sums of
  exp(scale * similarity), so a few Newton steps on a [queries, buckets] table fit it. The
  served bonus is bias / scale (ranking by similarity + bias / scale is ranking by the fitted
  logit). A bucket shape can take a cliff, e.g. a feed that never serves posts older than
  its look-back, which one log weight cannot: on the demo world the impressions come from
  the last 12 hours only.
The weights, scales and buckets are searched on the training window only (the caller passes
engagements no model it judges was fitted on; phoenix/training/retriever.py)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from phoenix.evaluation.retrieval import Seen, retrieval_metrics, sample_queries, target_ranks
from phoenix.index import Freshness, age_bucket
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


@dataclass(frozen=True)
class BucketTables:
    """What the bucket likelihood needs of the validation queries, per similarity scale."""
    log_z: np.ndarray          # [scales, Q, K] log sum of exp(scale * similarity) of the allowed posts per bucket
    target_logit: np.ndarray   # [scales, Q] scale * the target's similarity
    target_bucket: np.ndarray  # [Q] the target's age bucket


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
                  batch: int = 256) -> BucketTables:
    corpus_ids = np.asarray(corpus_ids, np.uint64)
    created = post_created_ms(corpus_ids)
    known = set(corpus_ids.tolist())
    queries = [q for q in queries if int(q.post_id) in known]
    k, s = len(edges_h) + 1, np.asarray(scales, np.float64)
    log_z, target_logit, target_bucket = [], [], []
    for lo in range(0, len(queries), batch):
        part = queries[lo:lo + batch]
        sim = np.asarray(similarity(part), np.float64)
        allowed, targets = allowed_posts(part, corpus_ids, created, seen)
        now = np.asarray([q.time_ms for q in part], np.float64)[:, None]
        bucket = age_bucket(np.maximum(now - created[None, :], 0.0) / _MS_PER_HOUR, edges_h)
        rows = np.arange(len(part))
        logits = s[:, None, None] * sim[None]                     # [S, B, N]
        peak = np.max(np.where(allowed, logits, -np.inf), axis=2, keepdims=True)
        weight = np.where(allowed, np.exp(logits - peak), 0.0)
        z = np.zeros((len(s), len(part), k))
        for b in range(k):  # per-bucket sums; k is small
            z[:, :, b] = np.sum(np.where(bucket == b, weight, 0.0), axis=2)
        with np.errstate(divide="ignore"):
            log_z.append(np.log(z) + peak)
        target_logit.append(logits[:, rows, targets])
        target_bucket.append(bucket[rows, targets])
    if not log_z:
        return BucketTables(np.zeros((len(s), 0, k)), np.zeros((len(s), 0)), np.zeros(0, np.int64))
    return BucketTables(np.concatenate(log_z, axis=1), np.concatenate(target_logit, axis=1),
                        np.concatenate(target_bucket))


def _objective(bias: np.ndarray, log_z: np.ndarray, onehot: np.ndarray, l2: float
               ) -> tuple[float, np.ndarray, np.ndarray]:
    """(mean log-likelihood - ridge, gradient, softmax over buckets [Q, K]) at `bias`."""
    a = log_z + bias[None, :]
    peak = np.max(a, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(a - peak), axis=1)) + peak[:, 0]
    p = np.exp(a - lse[:, None])
    value = float(np.mean(onehot @ bias - lse) - 0.5 * l2 * bias @ bias)
    return value, onehot.mean(axis=0) - p.mean(axis=0) - l2 * bias, p


def fit_bucket_bias(log_z: np.ndarray, target_bucket: np.ndarray, l2: float = BIAS_L2,
                    iterations: int = 50) -> np.ndarray:
    """[K] biases maximising the mean over queries of log softmax (bias + log_z[q])[target]
    minus a ridge (Newton's method with step halving; concave, so the optimum is unique).
    The target-independent part of the logit (scale * target similarity) does not move it."""
    q, k = log_z.shape
    bias = np.zeros(k)
    if q == 0:
        return bias
    # a bucket no query can rank a post in has no likelihood term: the ridge keeps it at 0
    log_z = np.where(np.isfinite(log_z), log_z, -1e30)
    onehot = np.eye(k)[target_bucket]
    value, grad, p = _objective(bias, log_z, onehot, l2)
    for _ in range(iterations):
        hessian = p.T @ p / q - np.diag(p.mean(axis=0)) - l2 * np.eye(k)
        step = np.linalg.solve(hessian, -grad)
        for _halving in range(30):
            new_value, new_grad, new_p = _objective(bias + step, log_z, onehot, l2)
            if new_value >= value:
                break
            step = step / 2
        else:
            break
        bias, improved = bias + step, new_value - value
        value, grad, p = new_value, new_grad, new_p
        if improved < 1e-10:
            break
    return bias


def cached_similarity(users: UserEmbeddings, corpus: np.ndarray, queries: list[RetrieveExample],
                      batch: int = 512) -> Similarity:
    """Similarity of these queries to the corpus embeddings [N, D], the user tower run once per
    query (every candidate freshness is scored on the same queries)."""
    rows = {id(q): i for i, q in enumerate(queries)}
    parts = [np.asarray(users(queries[lo:lo + batch]), np.float32) for lo in range(0, len(queries), batch)]
    table = np.concatenate(parts) if parts else np.zeros((0, corpus.shape[1]), np.float32)
    return lambda part: table[[rows[id(q)] for q in part]] @ corpus.T


def fit_freshness(users: UserEmbeddings, corpus: np.ndarray, corpus_ids: np.ndarray, seen: Seen,
                  validation: list[RetrieveExample], weights: Sequence[float] = FRESHNESS_WEIGHTS, seed: int = 0,
                  scales: Sequence[float] = BIAS_SCALES) -> tuple[Freshness, dict[str, float]]:
    """The Freshness with the best validation recall@100 among the log weights and the fitted
    bucket biases (one per scale), and every candidate's recall (keyed "weight W" / "buckets
    scale S"). Ties go to the earlier candidate: the log weights, smallest first. `corpus`:
    the candidate embeddings [N, D] of `corpus_ids`."""
    queries = sample_queries(validation, MAX_EVAL_QUERIES, seed)
    similarity = cached_similarity(users, corpus, queries)
    created = post_created_ms(np.asarray(corpus_ids, np.uint64))
    candidates = {f"weight {w}": Freshness(w) for w in weights}
    if weights:  # an empty weight list means no freshness at all
        tables = bucket_tables(similarity, queries, corpus_ids, seen, scales)
        for i, scale in enumerate(scales):
            bias = fit_bucket_bias(tables.log_z[i], tables.target_bucket)
            candidates[f"buckets scale {scale}"] = Freshness(0.0, AGE_EDGES_H, tuple(float(b) for b in bias / scale))
    recall: dict[str, float] = {}
    for name, freshness in candidates.items():
        def scored(part, f=freshness):
            now = np.asarray([q.time_ms for q in part], np.float64)[:, None]
            return similarity(part) + (f.bonus(created[None, :], now) if f.active else 0.0)
        recall[name] = retrieval_metrics(target_ranks(scored, queries, corpus_ids, seen=seen))["recall@100"]
    if not recall:
        return Freshness(), recall
    best = max(recall, key=lambda name: recall[name])  # max keeps the first of equals
    return candidates[best], recall
