"""PhoenixScorer: the Phoenix ranker's per-action predictions for every candidate. A repost
is scored as its original post (the original's post and author ids are sent)."""
from __future__ import annotations

from candidate_pipeline import Scorer
from foryou.snowflake import now_ms
from foryou_protos import common_pb2, phoenix_pb2
from home_mixer.candidate import PostCandidate, copy_fields
from home_mixer.clients import PhoenixClient
from home_mixer.query import ScoredPostsQuery

PREDICTION_FIELDS = ("predictions", "prediction_request_id", "scored_at_ms")


def rank_candidates(candidates: list[PostCandidate]) -> list[phoenix_pb2.RankCandidate]:
    return [phoenix_pb2.RankCandidate(post_id=c.ranked_post_id, author_id=c.ranked_author_id,
                                      surface=common_pb2.HOME_FOR_YOU) for c in candidates]


class PhoenixScorer(Scorer[ScoredPostsQuery, PostCandidate]):
    def __init__(self, phoenix: PhoenixClient, timeout_s: float | None = None) -> None:
        self.phoenix = phoenix
        self.timeout_s = timeout_s

    async def score(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        if not candidates:
            return []
        predictions = await self.phoenix.rank(query, rank_candidates(candidates))
        scored_at = now_ms()
        return [c.evolve(predictions=p, prediction_request_id=query.request_id, scored_at_ms=scored_at)
                for c, p in zip(candidates, predictions)]

    def update(self, candidate: PostCandidate, scored: PostCandidate) -> None:
        copy_fields(candidate, scored, PREDICTION_FIELDS)
