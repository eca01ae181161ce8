"""DedupConversation (post-selection): keep the highest-scored post of each conversation. A
post's conversation is the smallest id among its ancestors (the post it replies to, the
conversation root), or its own id without any. Ties: the first (best-ranked) wins."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery


def conversation_keys(candidates: PostBatch) -> np.ndarray:
    post = candidates["post_id"]
    big = np.iinfo(np.int64).max
    ancestors = [np.where((a != 0) & (a != post), a, big)
                 for a in (candidates["in_reply_to_post_id"], candidates["conversation_id"])]
    nearest = np.minimum(*ancestors)
    return np.where(nearest == big, post, nearest)


class DedupConversationFilter(Filter[ScoredPostsQuery, PostBatch]):
    reads = ("post_id", "in_reply_to_post_id", "conversation_id", "score")

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        keys = conversation_keys(candidates)
        # Best score first (stable: among equal scores the earlier row), then one per key.
        order = np.argsort(-candidates["score"], kind="stable")
        _, first = np.unique(keys[order], return_index=True)
        keep = np.zeros(len(candidates), dtype=bool)
        keep[order[first]] = True
        return keep
