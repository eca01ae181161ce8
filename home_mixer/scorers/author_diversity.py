"""AuthorDiversityScorer: walking candidates by descending weighted score, the n-th post of
the same author (n = 0, 1, 2, ...) is multiplied by (1 - floor) * decay**n + floor.
Recency-fallback candidates (no predictions) are left as they are: the degraded feed stays
in time order."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Scorer
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery


def diversity_multiplier(n, decay: float, floor: float):
    return (1.0 - floor) * np.power(decay, n) + floor


def occurrence_ranks(keys: np.ndarray) -> np.ndarray:
    """For each row, how many earlier rows have the same key (0 for the first)."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.r_[0, np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1] if len(keys) else np.zeros(0, int)
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(keys)]))
    ranks = np.empty(len(keys), dtype=np.int64)
    ranks[order] = np.arange(len(keys)) - group_start
    return ranks


class AuthorDiversityScorer(Scorer[ScoredPostsQuery, PostBatch]):
    reads = ("weighted_score", "author_id", "scored_at_ms")
    writes = ("diversity_multiplier", "score")

    async def score(self, query: ScoredPostsQuery, candidates: PostBatch) -> dict[str, np.ndarray]:
        weighted = candidates["weighted_score"]
        multipliers = np.ones(len(candidates))
        # Stable sort: ties keep the incoming order.
        by_score = np.argsort(-weighted, kind="stable")
        rows = by_score[candidates["scored_at_ms"][by_score] > 0]
        n = occurrence_ranks(candidates["author_id"][rows])
        multipliers[rows] = diversity_multiplier(n, query.params.diversity_decay, query.params.diversity_floor)
        return {"diversity_multiplier": multipliers, "score": weighted * multipliers}
