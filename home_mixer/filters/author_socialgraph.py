"""AuthorSocialgraph: remove posts by authors the user blocked or muted (a repost of such an
author's post too). Without the user's features (Thunder did not answer, no cached copy)
the blocks and mutes are unknown, and every candidate is removed."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import PostBatch, id_array
from home_mixer.query import ScoredPostsQuery


class AuthorSocialgraphFilter(Filter[ScoredPostsQuery, PostBatch]):
    fail_closed = True
    reads = ("author_id", "repost_of_user_id")

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        if query.user_features is None:
            return np.zeros(len(candidates), dtype=bool)
        excluded = id_array(query.user_features.blocked | query.user_features.muted)
        return ~(np.isin(candidates["author_id"], excluded) | np.isin(candidates["repost_of_user_id"], excluded))
