"""OutOfNetworkScorer: out-of-network scores are multiplied by a factor (default 0.75), so a
followed account's post wins a close call. Recency-fallback candidates are left alone."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Scorer
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery


class OutOfNetworkScorer(Scorer[ScoredPostsQuery, PostBatch]):
    reads = ("in_network", "scored_at_ms", "score")
    writes = ("oon_factor", "score")

    async def score(self, query: ScoredPostsQuery, candidates: PostBatch) -> dict[str, np.ndarray]:
        applies = ~candidates["in_network"] & (candidates["scored_at_ms"] > 0)
        factors = np.where(applies, query.params.oon_factor, 1.0)
        return {"oon_factor": factors, "score": candidates["score"] * factors}
