"""Subscription: does the user subscribe to the candidate's author (read with the post's
subscriber-only flag by IneligibleSubscriptionFilter)."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Hydrator
from home_mixer.candidates import PostBatch, id_array
from home_mixer.query import ScoredPostsQuery


class SubscriptionHydrator(Hydrator[ScoredPostsQuery, PostBatch]):
    reads = ("author_id",)
    writes = ("viewer_subscribes",)

    async def hydrate(self, query: ScoredPostsQuery, candidates: PostBatch) -> dict[str, np.ndarray]:
        if query.user_features is None:
            return {}  # unknown: stays False, and the filter treats every subscriber-only post as ineligible
        return {"viewer_subscribes": np.isin(candidates["author_id"], id_array(query.user_features.subscriptions))}
