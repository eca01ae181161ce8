"""PreviouslyServedPosts: remove posts whose related ids were served to the user recently.

On every request (the newest default, home_mixer/stages/served.py): the request's own served
ids and, of Thunder's served record, the ids served within the last `served_window_ms`
(10 min), at most the newest `served_max_ids` (100) of them. `served_bottom_only = 1` is the
v1 behaviour (the reference's first release): only on a bottom request (paging down), against
the whole record."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from foryou.snowflake import now_ms
from home_mixer.candidates import RELATED_ID_COLUMNS, PostBatch, id_array, related_id_hit
from home_mixer.query import ScoredPostsQuery
from home_mixer.stages.served import applies, recent_served_ids


def served_ids(query: ScoredPostsQuery) -> np.ndarray:
    """The ids a request filters against."""
    p = query.params
    if p.served_bottom_only:
        return id_array(query.all_served_ids())
    features = query.features
    recent = recent_served_ids(id_array(features.served_ids), id_array(features.served_at_ms), now_ms(),
                               p.served_window_ms, p.served_max_ids)
    return np.union1d(id_array(query.served_ids), recent)


class PreviouslyServedPostsFilter(Filter[ScoredPostsQuery, PostBatch]):
    reads = RELATED_ID_COLUMNS

    def enable(self, query: ScoredPostsQuery) -> bool:
        return applies(query.is_bottom_request, bool(query.params.served_bottom_only))

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        return ~related_id_hit(candidates, served_ids(query))
