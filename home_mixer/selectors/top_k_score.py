"""TopKScoreSelector: sort by final score, descending, keep the top K."""
from __future__ import annotations

from candidate_pipeline import Selector
from home_mixer.candidate import PostCandidate
from home_mixer.query import ScoredPostsQuery


class TopKScoreSelector(Selector[ScoredPostsQuery, PostCandidate]):
    def select(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        # Ties: the newer post first (larger snowflake id), so the order is deterministic.
        ordered = sorted(candidates, key=lambda c: (c.score, c.post_id), reverse=True)
        return ordered[:query.params.top_k]
