"""AuthorDiversityScorer: walking candidates by descending weighted score, the n-th post of
the same author (n = 0, 1, 2, ...) is multiplied by (1 - floor) * decay**n + floor.
Recency-fallback candidates (no predictions) are left as they are: the degraded feed stays
in time order."""
from __future__ import annotations

from collections import Counter

from candidate_pipeline import Scorer
from home_mixer.candidate import PostCandidate
from home_mixer.query import ScoredPostsQuery


def diversity_multiplier(n: int, decay: float, floor: float) -> float:
    return (1.0 - floor) * decay ** n + floor


class AuthorDiversityScorer(Scorer[ScoredPostsQuery, PostCandidate]):
    async def score(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        decay, floor = query.params.diversity_decay, query.params.diversity_floor
        multipliers = [1.0] * len(candidates)
        seen_per_author: Counter[int] = Counter()
        # Stable sort: ties keep the incoming order.
        for index in sorted(range(len(candidates)), key=lambda i: -candidates[i].weighted_score):
            c = candidates[index]
            if not c.predictions:
                continue
            multipliers[index] = diversity_multiplier(seen_per_author[c.author_id], decay, floor)
            seen_per_author[c.author_id] += 1
        return [c.evolve(diversity_multiplier=m, score=c.weighted_score * m)
                for c, m in zip(candidates, multipliers)]

    def update(self, candidate: PostCandidate, scored: PostCandidate) -> None:
        candidate.diversity_multiplier = scored.diversity_multiplier
        candidate.score = scored.score
