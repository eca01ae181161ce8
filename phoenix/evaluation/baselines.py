"""Simple baselines the models must beat: random, most-popular and most-recent.

Each gives a score per (query, post); for the ranker they also give probabilities (a
popularity rate, or the training base rate where the baseline has no notion of probability),
so that log-loss can be compared too."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.training.data import RankExample, RetrieveExample, post_created_ms

BASELINES = ("random", "most_popular", "most_recent")
_SMOOTHING_IMPRESSIONS = 5.0  # popularity rates shrink toward the base rate with few impressions


def base_rates(train: list[RankExample]) -> np.ndarray:
    """[18] fraction of training impressions with each action."""
    labels = np.concatenate([ex.labels for ex in train]) if train else np.zeros((1, NUM_BINARY_ACTIONS))
    return labels.mean(axis=0)


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
    return {
        "random": (rng.random((n, NUM_BINARY_ACTIONS)), constant),
        "most_popular": (popular, popular),
        "most_recent": (recency, constant),
    }


def retrieval_baseline_scores(train: list[RetrieveExample], corpus_ids: np.ndarray, seed: int = 0) -> dict[str, callable]:
    """method -> fn(queries) -> scores [len(queries), len(corpus)]."""
    popularity = defaultdict(int)
    for ex in train:
        popularity[ex.post_id] += 1
    popular = np.array([popularity.get(int(p), 0) for p in corpus_ids], np.float64)
    recency = post_created_ms(corpus_ids).astype(np.float64)
    rng = np.random.default_rng(seed)
    return {
        "random": lambda queries: rng.random((len(queries), len(corpus_ids))),
        "most_popular": lambda queries: np.tile(popular, (len(queries), 1)),
        "most_recent": lambda queries: np.tile(recency, (len(queries), 1)),
    }
