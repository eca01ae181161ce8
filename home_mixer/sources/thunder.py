"""ThunderSource: in-network candidates, the recent posts of the accounts the user follows,
with their core data, visibility and authors (Thunder's in-network answer carries them).

The posts normally come with the viewer's context: the UserContext hydrator asks for them in
its call (`prefetch`), so a feed makes one Thunder call for both. Only when that answer did
not bring them (Thunder did not answer, the hydrator was disabled) does this source make its
own GetInNetworkPosts call, over the user features it has (possibly the safety cache's)."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Source
from home_mixer.candidates import PostBatch
from home_mixer.clients import InNetworkQuery, ThunderClient
from home_mixer.query import ScoredPostsQuery
from home_mixer.wire import POST_COLUMNS


class ThunderSource(Source[ScoredPostsQuery, PostBatch]):
    writes = (*POST_COLUMNS, "source", "in_network")

    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    def enable(self, query: ScoredPostsQuery) -> bool:
        return query.params.thunder_max_results > 0

    @classmethod
    def prefetch(cls, query: ScoredPostsQuery) -> InNetworkQuery | None:
        """The in-network query this source will want answered for `query`, if it runs."""
        if query.params.thunder_max_results <= 0 or cls.name in query.disabled_components:
            return None
        return InNetworkQuery(query.params.thunder_max_results, query.params.max_age_ms)

    async def get_candidates(self, query: ScoredPostsQuery) -> PostBatch:
        context = query.user_context
        if context is not None and context.HasField("in_network_posts"):
            columns = self.thunder.posts_of(context.in_network_posts)
        else:
            # Without user features (Thunder's context failed) the list is empty and Thunder
            # reads the following list from its own user store.
            wanted = InNetworkQuery(query.params.thunder_max_results, query.params.max_age_ms)
            columns = await self.thunder.in_network_posts(query, query.features.following, wanted)
        n = len(columns["post_id"])
        source = np.empty(n, dtype=object)
        source.fill(self.name)
        return PostBatch(n, {**columns, "source": source, "in_network": np.ones(n, dtype=bool)})
