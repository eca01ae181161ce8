"""PhoenixSource: out-of-network candidates from Phoenix retrieval (the posts nearest to the
user embedding), excluding the accounts the user already follows. Only ids come back: their
core data is CoreDataHydrator's."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Source
from home_mixer.candidates import PostBatch
from home_mixer.clients import PhoenixClient
from home_mixer.query import ScoredPostsQuery


class PhoenixSource(Source[ScoredPostsQuery, PostBatch]):
    writes = ("post_id", "author_id", "source", "in_network", "retrieval_score")

    def __init__(self, phoenix: PhoenixClient, timeout_s: float | None = None) -> None:
        self.phoenix = phoenix
        self.timeout_s = timeout_s

    def enable(self, query: ScoredPostsQuery) -> bool:
        return not query.in_network_only and query.params.phoenix_max_results > 0

    async def get_candidates(self, query: ScoredPostsQuery) -> PostBatch:
        posts = await self.phoenix.retrieve(query, k=query.params.phoenix_max_results,
                                            exclude_author_ids=query.features.following)
        n = len(posts)
        source = np.empty(n, dtype=object)
        source.fill(self.name)
        return PostBatch(n, {
            "post_id": np.fromiter((p.post_id for p in posts), dtype=np.int64, count=n),
            "author_id": np.fromiter((p.author_id for p in posts), dtype=np.int64, count=n),
            "retrieval_score": np.fromiter((p.score for p in posts), dtype=np.float32, count=n),
            "source": source, "in_network": np.zeros(n, dtype=bool),
        })
