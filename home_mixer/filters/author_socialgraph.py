"""AuthorSocialgraph: remove posts by authors the user blocked or muted (a repost of such an
author's post too). Without the user's features (Thunder did not answer, no cached copy)
the blocks and mutes are unknown, and every candidate is removed."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery


class AuthorSocialgraphFilter(Filter[ScoredPostsQuery, PostCandidate]):
    fail_closed = True

    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        if query.user_features is None:
            return FilterResult(kept=[], removed=list(candidates))
        excluded = query.user_features.blocked | query.user_features.muted
        return split(candidates, lambda c: c.author_id not in excluded and c.repost_of_user_id not in excluded)
