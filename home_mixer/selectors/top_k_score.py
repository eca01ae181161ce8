"""TopKScoreSelector: sort by final score, descending, keep the top K."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Selector
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery


class TopKScoreSelector(Selector[ScoredPostsQuery, PostBatch]):
    reads = ("score", "post_id")

    def select(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        # Ties: the newer post first (larger snowflake id), so the order is deterministic.
        order = np.lexsort((candidates["post_id"], candidates["score"]))[::-1]
        return order[:query.params.top_k]
