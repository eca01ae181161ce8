"""IneligibleSubscription: remove subscriber-only posts from authors the user does not
subscribe to (the user's own posts are never ineligible). Without the user's features the
subscriptions are unknown, and every subscriber-only post is removed."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import PostBatch, id_array
from home_mixer.query import ScoredPostsQuery


class IneligibleSubscriptionFilter(Filter[ScoredPostsQuery, PostBatch]):
    fail_closed = True
    reads = ("subscriber_only", "viewer_subscribes", "author_id")

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        author = candidates["author_id"]
        allowed = ~candidates["subscriber_only"] | (author == query.viewer_id)
        if query.user_features is None:
            return allowed
        subscriptions = id_array(query.user_features.subscriptions)
        return allowed | candidates["viewer_subscribes"] | np.isin(author, subscriptions)
