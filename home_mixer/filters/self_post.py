"""SelfPost: remove the user's own posts."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery


class SelfPostFilter(Filter[ScoredPostsQuery, PostCandidate]):
    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        return split(candidates, lambda c: c.author_id != query.viewer_id)
