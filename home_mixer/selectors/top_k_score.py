"""TopKScoreSelector: sort by final score, descending, keep the top K: `top_k` (50), or the
DPP's window (`dpp_window`, 150) while DppDiversityFilter runs, which then keeps `top_k`."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Selector
from home_mixer.candidates import PostBatch
from home_mixer.filters.dpp_diversity import selection_size
from home_mixer.query import ScoredPostsQuery


class TopKScoreSelector(Selector[ScoredPostsQuery, PostBatch]):
    reads = ("score", "post_id")

    def select(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        # Ties: the newer post first (larger snowflake id), so the order is deterministic.
        order = np.lexsort((candidates["post_id"], candidates["score"]))[::-1]
        return order[:selection_size(query)]
