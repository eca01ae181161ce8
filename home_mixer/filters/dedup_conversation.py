"""DedupConversation (post-selection): keep the highest-scored post of each conversation. A
post's conversation is the smallest id among its ancestors, or its own id without any."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.query import ScoredPostsQuery


def conversation_of(c: PostCandidate) -> int:
    return min(c.ancestors) if c.ancestors else c.post_id


class DedupConversationFilter(Filter[ScoredPostsQuery, PostCandidate]):
    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        best: dict[int, PostCandidate] = {}
        for c in candidates:
            key = conversation_of(c)
            if key not in best or c.score > best[key].score:
                best[key] = c
        winners = {id(c) for c in best.values()}
        return FilterResult(kept=[c for c in candidates if id(c) in winners],
                            removed=[c for c in candidates if id(c) not in winners])
