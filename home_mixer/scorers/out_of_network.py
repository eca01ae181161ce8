"""OutOfNetworkScorer: out-of-network scores are multiplied by a factor (default 0.75), so a
followed account's post wins a close call."""
from __future__ import annotations

from candidate_pipeline import Scorer
from home_mixer.candidate import PostCandidate
from home_mixer.query import ScoredPostsQuery


class OutOfNetworkScorer(Scorer[ScoredPostsQuery, PostCandidate]):
    async def score(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        out = []
        for c in candidates:
            factor = 1.0 if c.in_network or not c.predictions else query.params.oon_factor
            out.append(c.evolve(oon_factor=factor, score=c.score * factor))
        return out

    def update(self, candidate: PostCandidate, scored: PostCandidate) -> None:
        candidate.oon_factor = scored.oon_factor
        candidate.score = scored.score
