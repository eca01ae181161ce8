"""Visibility (post-selection): fresh deleted flag and moderation labels of the selected
posts, read after scoring so a label that arrived meanwhile still counts."""
from __future__ import annotations

from candidate_pipeline import Hydrator
from home_mixer.candidate import PostCandidate
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery


class VisibilityHydrator(Hydrator[ScoredPostsQuery, PostCandidate]):
    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        ids = sorted({c.post_id for c in candidates})
        posts = await self.thunder.posts(query, ids) if ids else {}
        out = []
        for c in candidates:
            post = posts.get(c.post_id)
            if post is None:  # expired or unknown now: keep what hydration saw
                out.append(c.evolve())
            else:
                out.append(c.evolve(deleted=post.deleted, labels=tuple(post.labels)))
        return out

    def update(self, candidate: PostCandidate, hydrated: PostCandidate) -> None:
        candidate.deleted = hydrated.deleted
        candidate.labels = hydrated.labels
