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

from collections import defaultdict
from collections.abc import Callable

import numpy as np

from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.training.data import RankExample, RetrieveExample, post_created_ms

BASELINES = ("random", "most_popular", "most_recent", "user_item_bias")
_SMOOTHING_IMPRESSIONS = 5.0  # popularity rates shrink toward the base rate with few impressions
BIAS_L2_C = 1.0               # inverse L2 strength of the user+item-bias regression (sklearn's C)
MIN_POSITIVES_TO_FIT = 10     # fewer training positives: the bias model predicts the base rate


def base_rates(train: list[RankExample]) -> np.ndarray:
    """[18] fraction of training impressions with each action."""
    labels = np.concatenate([ex.labels for ex in train]) if train else np.zeros((1, NUM_BINARY_ACTIONS))
    return labels.mean(axis=0)


def _flat(examples: list[RankExample]) -> tuple[list[int], list[int], np.ndarray]:
    users = [ex.user_id for ex in examples for _ in ex.candidates]
    posts = [c.post_id for ex in examples for c in ex.candidates]
    labels = np.concatenate([ex.labels for ex in examples]) if examples else np.zeros((0, NUM_BINARY_ACTIONS))
    return users, posts, labels


def user_item_bias(train: list[RankExample], test: list[RankExample]) -> np.ndarray:
    """[N test candidates, 18] probabilities of a per-action logistic regression on one-hot
    user and post ids (ids unseen in training contribute nothing: intercept only)."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression

    tr_users, tr_posts, tr_labels = _flat(train)
    te_users, te_posts, _ = _flat(test)
    prior = base_rates(train)
    out = np.tile(prior, (len(te_posts), 1))
    if not tr_posts or not te_posts:
        return out
    user_col = {u: i for i, u in enumerate(sorted(set(tr_users)))}
    post_col = {p: len(user_col) + i for i, p in enumerate(sorted(set(tr_posts)))}
    width = len(user_col) + len(post_col)

    def design(users, posts):
        rows, cols = [], []
        for r, (u, p) in enumerate(zip(users, posts)):
            for col in (user_col.get(u), post_col.get(p)):
                if col is not None:
                    rows.append(r)
                    cols.append(col)
        return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(users), width))

    x_train, x_test = design(tr_users, tr_posts), design(te_users, te_posts)
    for a in range(NUM_BINARY_ACTIONS):
        y = tr_labels[:, a]
        if y.sum() < MIN_POSITIVES_TO_FIT or y.sum() == len(y):
            continue
        model = LogisticRegression(C=BIAS_L2_C, max_iter=200)
        model.fit(x_train, y)
        out[:, a] = model.predict_proba(x_test)[:, 1]
    return out


def ranker_baselines(train: list[RankExample], test: list[RankExample], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """method -> (scores [N, 18], probabilities [N, 18]) over the test candidates in order."""
    prior = base_rates(train)
    counts: dict[int, np.ndarray] = defaultdict(lambda: np.zeros(NUM_BINARY_ACTIONS))
    shown: dict[int, int] = defaultdict(int)
    for ex in train:
        for cand, labels in zip(ex.candidates, ex.labels):
            counts[cand.post_id] += labels
            shown[cand.post_id] += 1
    post_ids = [c.post_id for ex in test for c in ex.candidates]
    n = len(post_ids)
    constant = np.tile(prior, (n, 1))
    rng = np.random.default_rng(seed)
    popular = np.array([(counts[p] + _SMOOTHING_IMPRESSIONS * prior) / (shown[p] + _SMOOTHING_IMPRESSIONS)
                        if p in shown else prior for p in post_ids]).reshape(n, NUM_BINARY_ACTIONS)
    recency = np.tile(post_created_ms(np.asarray(post_ids, np.uint64))[:, None].astype(np.float64), (1, NUM_BINARY_ACTIONS))
    bias = user_item_bias(train, test)
    return {
        "random": (rng.random((n, NUM_BINARY_ACTIONS)), constant),
        "most_popular": (popular, popular),
        "most_recent": (recency, constant),
        "user_item_bias": (bias, bias),
    }


def item_knn_scorer(train: list[RetrieveExample], corpus_ids: np.ndarray, seen) -> Callable:
    """fn(queries) -> [Q, corpus] item-kNN scores: the sum, over every post the user engaged
    with before the query, of its co-occurrence cosine with each candidate,
    |U_i & U_j| / sqrt(|U_i| |U_j|), counted over the training engagements' users."""
    from scipy import sparse

    corpus_ids = np.asarray(corpus_ids, np.uint64)
    position = {int(p): i for i, p in enumerate(corpus_ids)}
    pairs = {(ex.user_id, position[ex.post_id]) for ex in train if ex.post_id in position}
    users = {u: i for i, u in enumerate(sorted({u for u, _ in pairs}))}
    if pairs:
        rows, cols = zip(*((users[u], c) for u, c in pairs))
    else:
        rows, cols = (), ()
    x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(max(len(users), 1), len(corpus_ids)))
    co = (x.T @ x).tocsr().astype(np.float64)
    counts = np.asarray(x.sum(axis=0)).ravel()
    norm = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    sim = sparse.diags(norm) @ co @ sparse.diags(norm)
    sim.setdiag(0.0)
    sim = sim.tocsr()

    def scores(queries: list[RetrieveExample]) -> np.ndarray:
        r, c = [], []
        for row, q in enumerate(queries):
            for p in set(seen.before(q.user_id, q.time_ms)):
                if p in position:
                    r.append(row)
                    c.append(position[p])
        h = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(queries), len(corpus_ids)))
        return np.asarray((h @ sim).todense())
    return scores


def retrieval_baseline_scores(train: list[RetrieveExample], corpus_ids: np.ndarray, seed: int = 0,
                              seen=None) -> dict[str, Callable]:
    """method -> fn(queries) -> scores [len(queries), len(corpus)]. With `seen` (a
    retrieval.Seen), item-kNN too."""
    popularity: defaultdict[int, int] = defaultdict(int)
    for ex in train:
        popularity[ex.post_id] += 1
    popular = np.array([popularity.get(int(p), 0) for p in corpus_ids], np.float64)
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
