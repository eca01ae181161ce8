"""UserContext: the viewer's context from Thunder (one GetUserContext per request), read by
the UserFeatures and UserActionSequence hydrators, which run after it because they declare
that they read `user_context`. When Thunder does not answer it stays None and the readers
fall back (the safety cache) or fail, each in its own name."""
from __future__ import annotations

import dataclasses

from candidate_pipeline import QueryHydrator
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery


class UserContextHydrator(QueryHydrator[ScoredPostsQuery]):
    name = "UserContext"
    writes = ("user_context",)

    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery) -> ScoredPostsQuery:
        return dataclasses.replace(query, user_context=await self.thunder.user_context(query))

    def update(self, query: ScoredPostsQuery, hydrated: ScoredPostsQuery) -> None:
        query.user_context = hydrated.user_context
