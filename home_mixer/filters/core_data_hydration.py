"""CoreDataHydration: remove candidates whose core data (author, text, links, subscriber-only
flag, deleted flag, labels) is not known: Thunder reported the post missing, or no answer
came and no cached copy had it. Every later safety check reads these fields, so a post
without them is never served (see docs/reliability.md)."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery


class CoreDataHydrationFilter(Filter[ScoredPostsQuery, PostCandidate]):
    fail_closed = True

    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        return split(candidates, lambda c: c.core_data_found is True)
