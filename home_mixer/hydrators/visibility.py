"""Visibility (post-selection): fresh deleted flag and moderation labels of the selected
posts, read after scoring so a label that arrived meanwhile still counts. If Thunder does not
answer, the safety cache's copies (never older than what hydration saw, since every fresh
answer refreshes them) stand in, and the response says so."""
from __future__ import annotations

from candidate_pipeline import Hydrator
from home_mixer.candidate import PostCandidate
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery

CACHED_NOTE = "visibility_cached"


class VisibilityHydrator(Hydrator[ScoredPostsQuery, PostCandidate]):
    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        ids = sorted({c.post_id for c in candidates})
        try:
            posts = await self.thunder.posts(query, ids) if ids else {}
        except Exception:
            posts = self.thunder.cache.posts(ids)
            if not posts:
                raise
            query.notes.add(CACHED_NOTE)
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
