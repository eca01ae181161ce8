"""PreviouslyServedPosts: remove posts whose related ids were already served to the user
(Thunder's served record plus the request's served ids). As in the reference, only on a
bottom request (paging down): a fresh top-of-feed request may show recent posts again."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import RELATED_ID_COLUMNS, PostBatch, id_array, related_id_hit
from home_mixer.query import ScoredPostsQuery


class PreviouslyServedPostsFilter(Filter[ScoredPostsQuery, PostBatch]):
    reads = RELATED_ID_COLUMNS

    def enable(self, query: ScoredPostsQuery) -> bool:
        return query.is_bottom_request

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        return ~related_id_hit(candidates, id_array(query.all_served_ids()))
