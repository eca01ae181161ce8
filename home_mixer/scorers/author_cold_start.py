"""AuthorColdStartScorer: the best recent post of a small author is lifted to at least the
16th-highest score (home_mixer/stages/cold_start.py). Candidates without predictions (ranked
by recency when Phoenix is down) take no part. Follower and impression counts come with the
post from Thunder (`author_follower_count`, `impression_count`: how often it was served)."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Scorer
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery
from home_mixer.stages.cold_start import cold_start_lift


class AuthorColdStartScorer(Scorer[ScoredPostsQuery, PostBatch]):
    reads = ("score", "scored_at_ms", "author_follower_count", "impression_count", "in_reply_to_post_id",
             "repost_of_post_id")
    writes = ("score",)

    async def score(self, query: ScoredPostsQuery, candidates: PostBatch) -> dict[str, np.ndarray]:
        p = query.params
        score = candidates["score"].copy()
        rows = np.flatnonzero(candidates["scored_at_ms"] > 0)
        original = (candidates["in_reply_to_post_id"][rows] == 0) & (candidates["repost_of_post_id"][rows] == 0)
        lifted, _ = cold_start_lift(
            score[rows], original, candidates["author_follower_count"][rows], candidates["impression_count"][rows],
            target_rank=p.cold_start_target_rank, max_followers=p.cold_start_max_followers,
            max_impressions=p.cold_start_max_impressions, rank_fraction=p.cold_start_rank_fraction)
        score[rows] = lifted
        return {"score": score}
