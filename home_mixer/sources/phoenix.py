"""PhoenixSource: out-of-network candidates from Phoenix retrieval (the posts nearest to the
user embedding), excluding the accounts the user already follows."""
from __future__ import annotations

from candidate_pipeline import Source
from home_mixer.candidate import PostCandidate
from home_mixer.clients import PhoenixClient
from home_mixer.query import ScoredPostsQuery


class PhoenixSource(Source[ScoredPostsQuery, PostCandidate]):
    def __init__(self, phoenix: PhoenixClient, timeout_s: float | None = None) -> None:
        self.phoenix = phoenix
        self.timeout_s = timeout_s

    def enable(self, query: ScoredPostsQuery) -> bool:
        return not query.in_network_only and query.params.phoenix_max_results > 0

    async def get_candidates(self, query: ScoredPostsQuery) -> list[PostCandidate]:
        posts = await self.phoenix.retrieve(query, k=query.params.phoenix_max_results,
                                            exclude_author_ids=query.features.following)
        return [PostCandidate(p.post_id, p.author_id, source=self.name, in_network=False,
                              retrieval_score=float(p.score)) for p in posts]
