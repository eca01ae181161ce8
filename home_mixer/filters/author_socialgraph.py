"""AuthorSocialgraph: remove posts by authors the user blocked or muted (a repost of such an
author's post too)."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery


class AuthorSocialgraphFilter(Filter[ScoredPostsQuery, PostCandidate]):
    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        excluded = query.features.blocked | query.features.muted
        return split(candidates, lambda c: c.author_id not in excluded and c.repost_of_user_id not in excluded)
