"""CoreDataHydration: remove candidates whose core data Thunder reported missing."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery


class CoreDataHydrationFilter(Filter[ScoredPostsQuery, PostCandidate]):
    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        # Only an explicit "not found" removes: None means hydration could not run (Thunder
        # down) and the out-of-network candidates are all the degraded feed has.
        return split(candidates, lambda c: c.core_data_found is not False)
