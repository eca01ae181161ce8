"""Diversity selection over content (the reference's "VM ranker"): greedy MAP inference of a
determinantal point process, as in Chen, Zhang and Zhou, "Fast Greedy MAP Inference for
Determinantal Point Process to Improve Recommendation Diversity" (NeurIPS 2018).

The kernel is L = diag(q) S diag(q): quality q_i = exp(alpha * r_i) from the score's rank r_i
over the window scaled to [0, 1] (best 1, worst 0), alpha = theta / (2 * (1 - theta)), and similarity S the
cosine of the content vectors. Then log det L_Y = 2 * alpha * sum_Y r + log det S_Y, so theta
trades relevance (sum of scores) against diversity (the volume the vectors span).

Greedy: start from the best post, then repeatedly add the post with the largest marginal gain
d_i^2 = L_ii - |c_i|^2, keeping the Cholesky rows c_i of every remaining post up to date
(one kernel row per step: O(n * (d + k)) per step, O(n * k * (d + k)) in all, no n x n
matrix unless the window is small). When the gains run out (the remaining posts' vectors lie in the span already
chosen, e.g. the same text twice), the rest of the k are taken in quality order.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

# A marginal gain below this (relative to the largest quality^2) means "already spanned".
GAIN_EPSILON = 1e-9
# Up to this many posts per selected one, the whole kernel is one matrix product (n^2 d work
# in one call beats k calls of n d work each); beyond it, one kernel row per step.
GRAM_MAX_RATIO = 4


def dpp_alpha(theta: float) -> float:
    """theta in [0, 1): 0 = diversity only, towards 1 = relevance only."""
    if not 0.0 <= theta < 1.0:
        raise ValueError(f"theta must be in [0, 1), got {theta}")
    return theta / (2.0 * (1.0 - theta))


def dpp_quality(scores: np.ndarray, theta: float) -> np.ndarray:
    """exp(alpha * r), r = the score's rank in the window scaled to [0, 1] (ties share their
    mean rank; all equal: r = 0).

    Ranks, not min-max values: weighted scores are heavy-tailed (a post or two far above a
    long flat run), and min-max would give every post but those r ~ 0, leaving the rest of the
    window kept or dropped by diversity alone."""
    scores = np.asarray(scores, np.float64)
    if len(scores) < 2 or scores.min() == scores.max():
        return np.ones_like(scores)
    r = (rankdata(scores, method="average") - 1.0) / (len(scores) - 1.0)
    return np.exp(dpp_alpha(theta) * r)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; an all-zero row (no content known) stays zero, which makes
    it similar to nothing but itself."""
    v = np.asarray(vectors, np.float32)  # content vectors are stored at 16 bits; 32 is plenty
    norms = np.sqrt(np.einsum("ij,ij->i", v, v))[:, None]
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)


def greedy_dpp(quality: np.ndarray, unit_vectors: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k posts chosen, in the order chosen (the greedy MAP of det L_Y with
    L = diag(q) V V^T diag(q), S_ii = 1). Ties go to the lower index."""
    q = np.asarray(quality, np.float64)
    n = len(q)
    k = max(0, min(k, n))
    chosen = np.empty(k, np.int64)
    if k == 0:
        return chosen
    qv = np.asarray(unit_vectors, np.float32) * q[:, None].astype(np.float32)  # L_ij = qv_i . qv_j
    # A small window: all of L in one matrix product is cheaper than k row products.
    kernel = qv @ qv.T if n <= GRAM_MAX_RATIO * k else None
    cholesky = np.zeros((k, n))        # row t: the t-th Cholesky entry of every post
    gains = q * q                      # d_i^2 = L_ii (S_ii = 1, also for a post without content)
    floor = GAIN_EPSILON * float(gains.max())
    j = int(np.argmax(gains))
    for t in range(k):
        chosen[t] = j
        if t == k - 1:
            break
        row = (kernel[j] if kernel is not None else qv @ qv[j]).astype(np.float64)
        row[j] = q[j] * q[j]
        e = (row - cholesky[:t, j] @ cholesky[:t]) / np.sqrt(gains[j])
        cholesky[t] = e
        gains[j] = -np.inf             # chosen: stays -inf from here on
        gains -= e * e
        j = int(np.argmax(gains))
        if gains[j] <= floor:          # the rest is spanned already: fill by quality
            rest = np.setdiff1d(np.arange(n), chosen[:t + 1])
            chosen[t + 1:] = rest[np.argsort(-q[rest], kind="stable")][: k - t - 1]
            break
    return chosen


def dpp_select(scores: np.ndarray, vectors: np.ndarray | None, *, window: int = 150, k: int = 50,
               theta: float = 0.65) -> np.ndarray:
    """Indices into `scores` of the selected posts, in feed order.

    The top `window` by score (ties keep the input order; never fewer than k) go into the
    DPP, which selects k.
    `vectors` None (the model has no content vectors): no content diversity is possible, and
    the top k by score are kept (author diversity has already been applied to the scores)."""
    scores = np.asarray(scores, np.float64)
    order = np.argsort(-scores, kind="stable")
    if vectors is None:
        return order[:k]
    top = order[:max(window, k)]
    picked = greedy_dpp(dpp_quality(scores[top], theta), unit_rows(np.asarray(vectors)[top]), k)
    return top[picked]
