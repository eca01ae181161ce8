"""RepostDeduplication: one appearance per original post. Walking candidates in order, an
original marks its id as seen; a repost is removed if its original (or another repost of
it) was already seen, else it marks the original as seen."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.query import ScoredPostsQuery


class RepostDeduplicationFilter(Filter[ScoredPostsQuery, PostCandidate]):
    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        seen: set[int] = set()
        kept, removed = [], []
        for c in candidates:
            if c.repost_of_post_id:
                if c.repost_of_post_id in seen:
                    removed.append(c)
                    continue
                seen.add(c.repost_of_post_id)
            else:
                seen.add(c.post_id)
            kept.append(c)
        return FilterResult(kept=kept, removed=removed)
