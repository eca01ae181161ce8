"""PhoenixScorer: the Phoenix ranker's per-action predictions for every candidate, and each
candidate's content vector when the model has one (for diversity by content). A repost is
scored as its original post (the original's post and author ids are sent)."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Scorer
from foryou.snowflake import now_ms
from home_mixer.candidates import PostBatch, ranked_author_ids, ranked_post_ids
from home_mixer.clients import PhoenixClient
from home_mixer.query import ScoredPostsQuery


class PhoenixScorer(Scorer[ScoredPostsQuery, PostBatch]):
    reads = ("post_id", "author_id", "repost_of_post_id", "repost_of_user_id")
    writes = ("predictions", "scored_at_ms", "content_vector")

    def __init__(self, phoenix: PhoenixClient, timeout_s: float | None = None) -> None:
        self.phoenix = phoenix
        self.timeout_s = timeout_s

    async def score(self, query: ScoredPostsQuery, candidates: PostBatch) -> dict[str, np.ndarray]:
        if not len(candidates):
            return {}
        predictions, content = await self.phoenix.rank(query, ranked_post_ids(candidates),
                                                       ranked_author_ids(candidates))
        out = {"predictions": predictions, "scored_at_ms": np.full(len(candidates), now_ms(), dtype=np.int64)}
        if content is not None:
            out["content_vector"] = content
        return out
