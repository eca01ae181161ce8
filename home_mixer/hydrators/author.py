"""Author: handle, verified flag and follower count of each candidate's author (and the
handle of a repost's original author)."""
from __future__ import annotations

from candidate_pipeline import Hydrator
from home_mixer.candidate import PostCandidate, copy_fields
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery

AUTHOR_FIELDS = ("author_handle", "author_verified", "author_follower_count", "reposted_author_handle")


class AuthorHydrator(Hydrator[ScoredPostsQuery, PostCandidate]):
    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        ids = sorted({i for c in candidates for i in (c.author_id, c.repost_of_user_id) if i})
        authors = await self.thunder.authors(query, ids) if ids else {}
        out = []
        for c in candidates:
            author = authors.get(c.author_id)
            original = authors.get(c.repost_of_user_id)
            out.append(c.evolve(
                author_handle=author.handle if author else c.author_handle,
                author_verified=author.verified if author else c.author_verified,
                author_follower_count=author.follower_count if author else c.author_follower_count,
                reposted_author_handle=original.handle if original else c.reposted_author_handle,
            ))
        return out

    def update(self, candidate: PostCandidate, hydrated: PostCandidate) -> None:
        copy_fields(candidate, hydrated, AUTHOR_FIELDS)
