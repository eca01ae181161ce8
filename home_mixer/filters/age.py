"""Age: remove posts older than the maximum age, read from the snowflake id."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from foryou.snowflake import created_at_ms, now_ms
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery


class AgeFilter(Filter[ScoredPostsQuery, PostBatch]):
    reads = ("post_id",)

    def __init__(self, clock=now_ms) -> None:
        self.clock = clock

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        oldest_ms = self.clock() - query.params.max_age_ms
        return created_at_ms(candidates["post_id"]) >= oldest_ms
