"""PreviouslySeenPosts: remove a candidate if the post, the post it reposts or the post it
replies to is in the client's seen ids or may be in one of its impression bloom filters."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.bloom import id_hashes
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery


class PreviouslySeenPostsFilter(Filter[ScoredPostsQuery, PostCandidate]):
    def enable(self, query: ScoredPostsQuery) -> bool:
        return bool(query.seen_ids or query.bloom_filters)

    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        def unseen(c: PostCandidate) -> bool:
            ids = c.related_ids
            if ids & query.seen_ids:
                return False
            hashes = [id_hashes(i) for i in ids]  # once per id, not per filter
            return not any(bloom.may_contain_hashes(h) for bloom in query.bloom_filters for h in hashes)
        return split(candidates, unseen)
