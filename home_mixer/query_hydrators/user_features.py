"""UserFeatures: following, blocked, muted, muted keywords, subscriptions and recently served
ids, from Thunder's user context."""
from __future__ import annotations

import dataclasses

from candidate_pipeline import QueryHydrator
from foryou_protos import thunder_pb2
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery, UserFeatures


def features_from_context(context: thunder_pb2.UserContext) -> UserFeatures:
    return UserFeatures(
        following=frozenset(context.following_user_ids),
        blocked=frozenset(context.blocked_user_ids),
        muted=frozenset(context.muted_user_ids),
        muted_keywords=tuple(context.muted_keywords),
        subscriptions=frozenset(context.subscribed_author_ids),
        served_ids=frozenset(context.served_post_ids),
    )


class UserFeaturesHydrator(QueryHydrator[ScoredPostsQuery]):
    name = "UserFeatures"

    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery) -> ScoredPostsQuery:
        context = await self.thunder.user_context(query)
        return dataclasses.replace(query, user_features=features_from_context(context))

    def update(self, query: ScoredPostsQuery, hydrated: ScoredPostsQuery) -> None:
        query.user_features = hydrated.user_features
