"""Subscription: is the post subscriber-only, and does the user subscribe to its author."""
from __future__ import annotations

from candidate_pipeline import Hydrator
from home_mixer.candidate import PostCandidate
from home_mixer.clients import ThunderClient
from home_mixer.hydrators.core_data import lookup_posts
from home_mixer.query import ScoredPostsQuery


class SubscriptionHydrator(Hydrator[ScoredPostsQuery, PostCandidate]):
    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        posts = (await lookup_posts(self.thunder, query, candidates)).posts
        subscriptions = query.features.subscriptions
        out = []
        for c in candidates:
            post = posts.get(c.post_id)
            author_id = post.author_id if post else c.author_id
            out.append(c.evolve(subscriber_only=post.subscriber_only if post else c.subscriber_only,
                                viewer_subscribes=author_id in subscriptions))
        return out

    def update(self, candidate: PostCandidate, hydrated: PostCandidate) -> None:
        candidate.subscriber_only = hydrated.subscriber_only
        candidate.viewer_subscribes = hydrated.viewer_subscribes
