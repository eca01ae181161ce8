"""DropDuplicates: the same post id from two sources is kept once (the first, i.e. from the
source listed first: in-network wins)."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.query import ScoredPostsQuery


class DropDuplicatesFilter(Filter[ScoredPostsQuery, PostCandidate]):
    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        seen: set[int] = set()
        kept, removed = [], []
        for c in candidates:
            (removed if c.post_id in seen else kept).append(c)
            seen.add(c.post_id)
        return FilterResult(kept=kept, removed=removed)
