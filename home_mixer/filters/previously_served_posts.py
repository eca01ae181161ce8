"""PreviouslyServedPosts: remove posts whose related ids were already served to the user
(Thunder's served record plus the request's served ids). As in the reference, only on a
bottom request (paging down): a fresh top-of-feed request may show recent posts again."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery


class PreviouslyServedPostsFilter(Filter[ScoredPostsQuery, PostCandidate]):
    def enable(self, query: ScoredPostsQuery) -> bool:
        return query.is_bottom_request

    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        served = query.all_served_ids()
        return split(candidates, lambda c: not (c.related_ids & served))
