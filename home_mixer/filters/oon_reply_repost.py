"""OutOfNetworkReplyRepostFilter: replies and reposts only from accounts the viewer follows,
and replies only with known ancestors (home_mixer/stages/oon_reply_repost.py).

A reply's ancestors count as known when it names the post it answers, that post's author
and its conversation. Thunder serves an in-network reply only when the post it answers is
known and not deleted (thunder/post_store.py, `_reply_check`); an out-of-network reply is
removed anyway, its author not being followed."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery
from home_mixer.stages.oon_reply_repost import oon_reply_repost_keep


class OutOfNetworkReplyRepostFilter(Filter[ScoredPostsQuery, PostBatch]):
    reads = ("in_network", "in_reply_to_post_id", "in_reply_to_user_id", "conversation_id", "repost_of_post_id")

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        return oon_reply_repost_keep(
            is_reply=candidates["in_reply_to_post_id"] != 0,
            is_repost=candidates["repost_of_post_id"] != 0,
            author_followed=candidates["in_network"],
            ancestors_known=(candidates["in_reply_to_user_id"] != 0) & (candidates["conversation_id"] != 0),
        )
