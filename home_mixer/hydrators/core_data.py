"""CoreData: the post's core fields from Thunder. A post Thunder does not know is marked
(`core_data_found = False`). If Thunder does not answer, the safety cache's copies stand in
for the posts it has (and the response says so); the others stay unhydrated
(`core_data_found = None`). CoreDataHydrationFilter removes both kinds: a post is served
only with known core data."""
from __future__ import annotations

from dataclasses import dataclass

from candidate_pipeline import Hydrator
from home_mixer.candidate import PostCandidate, copy_fields
from home_mixer.clients import ThunderClient, memoized
from home_mixer.query import ScoredPostsQuery
from home_mixer.sources.thunder import apply_core_data

# One GetPosts per request, shared by the hydrators that read post fields.
POSTS_MEMO_KEY = "thunder.posts.hydration"
CACHED_NOTE = "core_data_cached"

CORE_FIELDS = (
    "core_data_found", "author_id", "created_at_ms", "text", "in_reply_to_post_id",
    "in_reply_to_user_id", "conversation_id", "repost_of_post_id", "repost_of_user_id",
    "quote_of_post_id", "ancestors", "photo_count", "deleted", "labels",
)


def unhydrated_ids(candidates: list[PostCandidate]) -> list[int]:
    """Ids whose core data the source did not bring (Thunder's in-network posts carry it)."""
    return sorted({c.post_id for c in candidates if c.core_data_found is None})


@dataclass(frozen=True)
class PostLookup:
    posts: dict          # post id -> foryou.Post
    fresh: bool          # Thunder's answer (a missing id is unknown to it), or cached copies


async def lookup_posts(thunder: ThunderClient, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> PostLookup:
    ids = unhydrated_ids(candidates)
    if not ids:
        return PostLookup({}, True)

    async def call() -> PostLookup:
        try:
            return PostLookup(await thunder.posts(query, ids), True)
        except Exception:
            cached = thunder.cache.posts(ids)
            if not cached:
                raise
            query.notes.add(CACHED_NOTE)
            return PostLookup(cached, False)
    return await memoized(query, POSTS_MEMO_KEY, call)


class CoreDataHydrator(Hydrator[ScoredPostsQuery, PostCandidate]):
    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        lookup = await lookup_posts(self.thunder, query, candidates)
        hydrated = []
        for candidate in candidates:
            copy = candidate.evolve()
            if candidate.core_data_found is None:
                post = lookup.posts.get(candidate.post_id)
                if post is None:
                    copy.core_data_found = False if lookup.fresh else None
                else:
                    apply_core_data(copy, post)
            hydrated.append(copy)
        return hydrated

    def update(self, candidate: PostCandidate, hydrated: PostCandidate) -> None:
        copy_fields(candidate, hydrated, CORE_FIELDS)
