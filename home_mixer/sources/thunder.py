"""ThunderSource: in-network candidates, the recent posts of the accounts the user follows,
with their core data, visibility and authors (Thunder's in-network answer carries them)."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Source
from home_mixer.candidates import PostBatch
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery
from home_mixer.wire import POST_COLUMNS


class ThunderSource(Source[ScoredPostsQuery, PostBatch]):
    writes = (*POST_COLUMNS, "source", "in_network")

    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    def enable(self, query: ScoredPostsQuery) -> bool:
        return query.params.thunder_max_results > 0

    async def get_candidates(self, query: ScoredPostsQuery) -> PostBatch:
        # Without user features (Thunder's context failed) the list is empty and Thunder
        # reads the following list from its own user store.
        columns = await self.thunder.in_network_posts(
            query, query.features.following, query.params.thunder_max_results, query.params.max_age_ms,
        )
        n = len(columns["post_id"])
        source = np.empty(n, dtype=object)
        source.fill(self.name)
        return PostBatch(n, {**columns, "source": source, "in_network": np.ones(n, dtype=bool)})
