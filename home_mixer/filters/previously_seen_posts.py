"""PreviouslySeenPosts: remove a candidate if any of its related ids (the post, the post it
reposts, the post it replies to) is in the client's seen ids or may be in one of the
client's impression bloom filters."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.bloom import id_hashes
from home_mixer.candidates import RELATED_ID_COLUMNS, PostBatch, id_array, related_id_hit
from home_mixer.query import ScoredPostsQuery


class PreviouslySeenPostsFilter(Filter[ScoredPostsQuery, PostBatch]):
    reads = RELATED_ID_COLUMNS

    def enable(self, query: ScoredPostsQuery) -> bool:
        return bool(query.seen_ids or query.bloom_filters)

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        seen = related_id_hit(candidates, id_array(query.seen_ids))
        if query.bloom_filters:
            blooms = query.bloom_filters
            for name in RELATED_ID_COLUMNS:
                column = candidates[name]
                for row in np.flatnonzero(~seen & (column != 0)).tolist():
                    hashes = id_hashes(int(column[row]))  # once per id, not per filter
                    if any(bloom.may_contain_hashes(hashes) for bloom in blooms):
                        seen[row] = True
        return ~seen
