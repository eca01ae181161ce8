"""IneligibleSubscription: remove subscriber-only posts from authors the user does not
subscribe to (the user's own posts are never ineligible). Without the user's features the
subscriptions are unknown, and every subscriber-only post is removed."""
from __future__ import annotations

from candidate_pipeline import Filter, FilterResult
from home_mixer.candidate import PostCandidate
from home_mixer.filters import split
from home_mixer.query import ScoredPostsQuery


class IneligibleSubscriptionFilter(Filter[ScoredPostsQuery, PostCandidate]):
    fail_closed = True

    async def filter(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> FilterResult[PostCandidate]:
        if query.user_features is None:
            return split(candidates, lambda c: not c.subscriber_only or c.author_id == query.viewer_id)
        subscriptions = query.user_features.subscriptions
        return split(candidates, lambda c: not c.subscriber_only or c.viewer_subscribes
                     or c.author_id in subscriptions or c.author_id == query.viewer_id)
