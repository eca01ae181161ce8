"""Simple baselines the models must beat.

Ranker: random, most-popular (smoothed per-post action rates), most-recent, and user+item
bias (a logistic regression on one-hot user and post ids per action: what a model learns
from who and what alone, without any interaction between them). Each gives a score per
candidate and action and, where it has one, a probability (else the training base rate), so
that log-loss can be compared too.

Retriever: random, most-popular, most-recent and item-kNN (co-occurrence cosine between the
user's earlier posts and each candidate, counted over the training window's users).

A content-only baseline for both lives in content_baseline.py."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.training.data import RankExamples, RetrieveExamples, post_created_ms

BASELINES = ("random", "most_popular", "most_recent", "user_item_bias")
_SMOOTHING_IMPRESSIONS = 5.0  # popularity rates shrink toward the base rate with few impressions
BIAS_L2_C = 1.0               # inverse L2 strength of the user+item-bias regression (sklearn's C)
MIN_POSITIVES_TO_FIT = 10     # fewer training positives: the bias model predicts the base rate


def base_rates(train: RankExamples) -> np.ndarray:
    """[18] fraction of training impressions with each action."""
    labels = train.labels
    return labels.mean(axis=0) if len(labels) else np.zeros(NUM_BINARY_ACTIONS)


def _lookup(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each value in the sorted `keys`, -1 where absent."""
    if not len(keys):
        return np.full(len(values), -1, np.int64)
    at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return np.where(keys[at] == values, at, -1)


def user_item_bias(train: RankExamples, test: RankExamples) -> np.ndarray:
    """[N test candidates, 18] probabilities of a per-action logistic regression on one-hot
    user and post ids (ids unseen in training contribute nothing: intercept only)."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    prior = base_rates(train)
    out = np.tile(prior, (len(test.post), 1))
    if not len(train.post) or not len(test.post):
        return out
    user_keys, post_keys = np.unique(train.candidate_users), np.unique(train.post)
    width = len(user_keys) + len(post_keys)

    def design(examples: RankExamples):
        u, p = _lookup(user_keys, examples.candidate_users), _lookup(post_keys, examples.post)
        rows = np.concatenate([np.flatnonzero(u >= 0), np.flatnonzero(p >= 0)])
        cols = np.concatenate([u[u >= 0], len(user_keys) + p[p >= 0]])
        order = np.lexsort((cols, rows))  # row by row, user column first
        return sparse.csr_matrix((np.ones(len(rows)), (rows[order], cols[order])), shape=(len(examples.post), width))

    x_train, x_test = design(train), design(test)
    tr_labels = train.labels
    for a in range(NUM_BINARY_ACTIONS):
        y = tr_labels[:, a]
        if y.sum() < MIN_POSITIVES_TO_FIT or y.sum() == len(y):
            continue
        model = LogisticRegression(C=BIAS_L2_C, max_iter=200)
        model.fit(x_train, y)
        out[:, a] = model.predict_proba(x_test)[:, 1]
    return out


def ranker_baselines(train: RankExamples, test: RankExamples, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """method -> (scores [N, 18], probabilities [N, 18]) over the test candidates in order."""
    prior = base_rates(train)
    keys, inverse = np.unique(train.post, return_inverse=True)
    counts = np.zeros((len(keys), NUM_BINARY_ACTIONS))
    np.add.at(counts, inverse, train.labels)
    shown = np.bincount(inverse, minlength=len(keys))
    post_ids = test.post
    n = len(post_ids)
    constant = np.tile(prior, (n, 1))
    rng = np.random.default_rng(seed)
    at = _lookup(keys, post_ids)
    smoothed = (counts[np.maximum(at, 0)] + _SMOOTHING_IMPRESSIONS * prior) / \
        (shown[np.maximum(at, 0)][:, None] + _SMOOTHING_IMPRESSIONS) if len(keys) else constant
    popular = np.where((at >= 0)[:, None], smoothed, prior).reshape(n, NUM_BINARY_ACTIONS)
    recency = np.tile(post_created_ms(np.asarray(post_ids, np.uint64))[:, None].astype(np.float64), (1, NUM_BINARY_ACTIONS))
    bias = user_item_bias(train, test)
    return {
        "random": (rng.random((n, NUM_BINARY_ACTIONS)), constant),
        "most_popular": (popular, popular),
        "most_recent": (recency, constant),
        "user_item_bias": (bias, bias),
    }


def item_knn_scorer(train: RetrieveExamples, corpus_ids: np.ndarray, seen) -> Callable:
    """fn(queries) -> [Q, corpus] item-kNN scores: the sum, over every post the user engaged
    with before the query, of its co-occurrence cosine with each candidate,
    |U_i & U_j| / sqrt(|U_i| |U_j|), counted over the training engagements' users."""
    from scipy import sparse

    corpus_ids = np.asarray(corpus_ids, np.uint64)
    position = {int(p): i for i, p in enumerate(corpus_ids)}
    order = np.argsort(corpus_ids, kind="stable")
    at = _lookup(corpus_ids[order], train.post)
    found = at >= 0
    pairs = np.unique(np.stack([train.user[found], order[at[found]].astype(np.uint64)], axis=1), axis=0)
    users, rows = np.unique(pairs[:, 0], return_inverse=True)
    cols = pairs[:, 1].astype(np.int64)
    x = sparse.csr_matrix((np.ones(len(rows)), (rows.reshape(-1), cols)), shape=(max(len(users), 1), len(corpus_ids)))
    co = (x.T @ x).tocsr().astype(np.float64)
    counts = np.asarray(x.sum(axis=0)).ravel()
    norm = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    sim = sparse.diags(norm) @ co @ sparse.diags(norm)
    sim.setdiag(0.0)
    sim = sim.tocsr()

    def scores(queries) -> np.ndarray:
        r, c = [], []
        for row, q in enumerate(queries):
            for p in set(seen.before(q.user_id, q.time_ms)):
                if p in position:
                    r.append(row)
                    c.append(position[p])
        h = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(queries), len(corpus_ids)))
        return np.asarray((h @ sim).todense())
    return scores


def retrieval_baseline_scores(train: RetrieveExamples, corpus_ids: np.ndarray, seed: int = 0,
                              seen=None) -> dict[str, Callable]:
    """method -> fn(queries) -> scores [len(queries), len(corpus)]. With `seen` (a
    retrieval.Seen), item-kNN too."""
    keys, counts = np.unique(train.post, return_counts=True)
    at = _lookup(keys, np.asarray(corpus_ids, np.uint64))
    popular = np.where(at >= 0, counts[np.maximum(at, 0)] if len(keys) else 0, 0).astype(np.float64)
    recency = post_created_ms(corpus_ids).astype(np.float64)
    rng = np.random.default_rng(seed)
    out = {
        "random": lambda queries: rng.random((len(queries), len(corpus_ids))),
        "most_popular": lambda queries: np.tile(popular, (len(queries), 1)),
        "most_recent": lambda queries: np.tile(recency, (len(queries), 1)),
    }
    if seen is not None:
        out["item_knn"] = item_knn_scorer(train, corpus_ids, seen)
    return out
