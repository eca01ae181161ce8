"""Held-out evaluation of retrieval: where does the engaged post rank among the corpus?

The corpus a query sees is every post created before the query time, minus the posts in the
user's history (a feed does not re-recommend what the user already engaged with), the same
for the model and the baselines. Ties are broken at random in expectation (rank counts half
of the equal scores), so a constant score gets a middling rank, not the best."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from phoenix.evaluation.metrics import ndcg_at_k, recall_at_k
from phoenix.training.data import RetrieveExample, post_created_ms

KS = (10, 50, 100)


def target_ranks(score_fn: Callable[[list[RetrieveExample]], np.ndarray], queries: list[RetrieveExample],
                 corpus_ids: np.ndarray, batch: int = 256) -> np.ndarray:
    """0-based expected rank of each query's engaged post among its allowed corpus."""
    corpus_ids = np.asarray(corpus_ids, np.uint64)
    created = post_created_ms(corpus_ids)
    position = {int(p): i for i, p in enumerate(corpus_ids)}
    ranks = []
    for lo in range(0, len(queries), batch):
        part = queries[lo:lo + batch]
        scores = np.asarray(score_fn(part), np.float64)
        for row, q in enumerate(part):
            target = position.get(q.post_id)
            if target is None:
                continue
            allowed = created <= q.time_ms
            allowed[[position[h.post_id] for h in q.history if h.post_id in position]] = False
            allowed[target] = True
            s = scores[row, allowed]
            t = scores[row, target]
            ranks.append(float((s > t).sum() + 0.5 * ((s == t).sum() - 1)))
    return np.asarray(ranks)


def retrieval_metrics(ranks: np.ndarray, ks=KS) -> dict[str, float]:
    out = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranks, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranks, k)
    out["queries"] = int(len(ranks))
    return out
