"""SelfPost: remove the user's own posts."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery


class SelfPostFilter(Filter[ScoredPostsQuery, PostBatch]):
    reads = ("author_id",)

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        return candidates["author_id"] != query.viewer_id
