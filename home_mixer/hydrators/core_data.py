"""CoreData: the post's core fields from Thunder. A post Thunder does not know is marked
(`core_data_found = False`) so CoreDataHydrationFilter removes it; if Thunder cannot be
reached the hydrator fails, nothing is marked, and out-of-network candidates still flow."""
from __future__ import annotations

from candidate_pipeline import Hydrator
from home_mixer.candidate import PostCandidate, copy_fields
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery
from home_mixer.sources.thunder import apply_core_data

# One GetPosts per request, shared by the hydrators that read post fields.
POSTS_MEMO_KEY = "thunder.posts.hydration"

CORE_FIELDS = (
    "core_data_found", "author_id", "created_at_ms", "text", "in_reply_to_post_id",
    "in_reply_to_user_id", "conversation_id", "repost_of_post_id", "repost_of_user_id",
    "quote_of_post_id", "ancestors", "photo_count", "deleted", "labels",
)


def unhydrated_ids(candidates: list[PostCandidate]) -> list[int]:
    """Ids whose core data the source did not bring (Thunder's in-network posts carry it)."""
    return sorted({c.post_id for c in candidates if c.core_data_found is None})


async def lookup_posts(thunder: ThunderClient, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> dict:
    ids = unhydrated_ids(candidates)
    if not ids:
        return {}
    return await thunder.posts(query, ids, memo_key=POSTS_MEMO_KEY)


class CoreDataHydrator(Hydrator[ScoredPostsQuery, PostCandidate]):
    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    async def hydrate(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        posts = await lookup_posts(self.thunder, query, candidates)
        hydrated = []
        for candidate in candidates:
            copy = candidate.evolve()
            if candidate.core_data_found is None:
                post = posts.get(candidate.post_id)
                if post is None:
                    copy.core_data_found = False
                else:
                    apply_core_data(copy, post)
            hydrated.append(copy)
        return hydrated

    def update(self, candidate: PostCandidate, hydrated: PostCandidate) -> None:
        copy_fields(candidate, hydrated, CORE_FIELDS)
