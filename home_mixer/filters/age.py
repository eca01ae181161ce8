"""Age: remove posts older than the maximum age, read from the snowflake id."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from foryou.snowflake import created_at_ms, now_ms
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery


class AgeFilter(Filter[ScoredPostsQuery, PostCandidate]):
    def __init__(self, clock=now_ms) -> None:
        self.clock = clock

    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        oldest_ms = self.clock() - query.params.max_age_ms
        return split(candidates, lambda c: created_at_ms(c.post_id) >= oldest_ms)
