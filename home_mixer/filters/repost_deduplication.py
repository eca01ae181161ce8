"""RepostDeduplication: one appearance per original post. Walking candidates in order, an
original marks its id as seen; a repost is removed if its original (or another repost of
it) was already seen, else it marks the original as seen. Equivalently: a repost goes when
an earlier candidate has the same key (an original's own id, a repost's original id)."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery


class RepostDeduplicationFilter(Filter[ScoredPostsQuery, PostBatch]):
    reads = ("post_id", "repost_of_post_id")

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        repost = candidates["repost_of_post_id"]
        is_repost = repost != 0
        keys = np.where(is_repost, repost, candidates["post_id"])
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        earlier_same_key = first[inverse] < np.arange(len(keys))
        return ~(is_repost & earlier_same_key)
