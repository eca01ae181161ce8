"""InNetwork: is the candidate's author followed by the user."""
from __future__ import annotations

from candidate_pipeline import Hydrator
from home_mixer.candidate import PostCandidate
from home_mixer.query import ScoredPostsQuery


class InNetworkHydrator(Hydrator[ScoredPostsQuery, PostCandidate]):
    async def hydrate(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        if query.user_features is None:  # following unknown: keep what the source said
            return [c.evolve() for c in candidates]
        following = query.user_features.following
        return [c.evolve(in_network=c.author_id in following) for c in candidates]

    def update(self, candidate: PostCandidate, hydrated: PostCandidate) -> None:
        candidate.in_network = hydrated.in_network
