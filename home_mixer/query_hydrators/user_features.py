"""UserFeatures: following (and which of them follow back), blocked, muted, muted keywords,
subscriptions and recently served ids with their times, from Thunder's user context (the UserContext hydrator). When Thunder did not answer, the safety cache's copy (if
any, at most its TTL old) stands in, and the response says so; with no copy the features
stay unknown and the safety filters remove every candidate."""
from __future__ import annotations

import dataclasses

from candidate_pipeline import QueryHydrator
from foryou_protos import thunder_pb2
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery, UserFeatures

CACHED_NOTE = "user_features_cached"


def features_from_context(context: thunder_pb2.UserContext) -> UserFeatures:
    return UserFeatures(
        following=frozenset(context.following_user_ids),
        blocked=frozenset(context.blocked_user_ids),
        muted=frozenset(context.muted_user_ids),
        muted_keywords=tuple(context.muted_keywords),
        subscriptions=frozenset(context.subscribed_author_ids),
        served_ids=tuple(context.served_post_ids),
        served_at_ms=tuple(context.served_at_ms),
        mutual_follows=frozenset(context.mutual_follow_user_ids),
    )


class UserFeaturesUnavailable(RuntimeError):
    """No user context from Thunder and no cached copy of the viewer's features."""


class UserFeaturesHydrator(QueryHydrator[ScoredPostsQuery]):
    name = "UserFeatures"
    reads = ("user_context",)
    writes = ("user_features",)

    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery) -> ScoredPostsQuery:
        context = query.user_context
        if context is None:
            cached = self.thunder.cache.features(query.viewer_id)
            if cached is None:
                raise UserFeaturesUnavailable("no user context from Thunder and no cached copy")
            query.notes.add(CACHED_NOTE)
            return dataclasses.replace(query, user_features=cached)
        features = features_from_context(context)
        self.thunder.cache.put_features(query.viewer_id, features)
        return dataclasses.replace(query, user_features=features)

    def update(self, query: ScoredPostsQuery, hydrated: ScoredPostsQuery) -> None:
        query.user_features = hydrated.user_features
