"""ThunderSource: in-network candidates, the recent posts of the accounts the user follows."""
from __future__ import annotations

from candidate_pipeline import Source
from foryou_protos import common_pb2
from home_mixer.candidate import PostCandidate
from home_mixer.clients import ThunderClient
from home_mixer.query import ScoredPostsQuery


def ancestors_of(post: common_pb2.Post) -> tuple[int, ...]:
    """Nearest first: the post replied to, then the conversation root."""
    chain = []
    for ancestor in (post.in_reply_to_post_id, post.conversation_id):
        if ancestor and ancestor != post.post_id and ancestor not in chain:
            chain.append(ancestor)
    return tuple(chain)


def apply_core_data(candidate: PostCandidate, post: common_pb2.Post) -> None:
    candidate.core_data_found = True
    candidate.author_id = post.author_id
    candidate.created_at_ms = post.created_at_ms
    candidate.text = post.text
    candidate.in_reply_to_post_id = post.in_reply_to_post_id
    candidate.in_reply_to_user_id = post.in_reply_to_user_id
    candidate.conversation_id = post.conversation_id
    candidate.repost_of_post_id = post.repost_of_post_id
    candidate.repost_of_user_id = post.repost_of_user_id
    candidate.quote_of_post_id = post.quote_of_post_id
    candidate.ancestors = ancestors_of(post)
    candidate.photo_count = post.photo_count
    candidate.video_duration_ms = post.video_duration_ms
    candidate.subscriber_only = post.subscriber_only
    candidate.deleted = post.deleted
    candidate.labels = tuple(post.labels)


class ThunderSource(Source[ScoredPostsQuery, PostCandidate]):
    def __init__(self, thunder: ThunderClient, timeout_s: float | None = None) -> None:
        self.thunder = thunder
        self.timeout_s = timeout_s

    def enable(self, query: ScoredPostsQuery) -> bool:
        return query.params.thunder_max_results > 0

    async def get_candidates(self, query: ScoredPostsQuery) -> list[PostCandidate]:
        # Without user features (Thunder's context failed) the list is empty and Thunder
        # reads the following list from its own user store.
        posts = await self.thunder.in_network_posts(
            query, query.features.following, query.params.thunder_max_results, query.params.max_age_ms,
        )
        candidates = []
        for post in posts:
            candidate = PostCandidate(post.post_id, post.author_id, source=self.name, in_network=True)
            apply_core_data(candidate, post)
            candidates.append(candidate)
        return candidates
