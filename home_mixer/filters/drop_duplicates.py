"""DropDuplicates: the same post id from two sources is kept once (the first, i.e. from the
source listed first: in-network wins)."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery


def first_occurrences(values: np.ndarray) -> np.ndarray:
    """True at the first row of each distinct value."""
    keep = np.zeros(len(values), dtype=bool)
    keep[np.unique(values, return_index=True)[1]] = True
    return keep


class DropDuplicatesFilter(Filter[ScoredPostsQuery, PostBatch]):
    reads = ("post_id",)

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        return first_occurrences(candidates["post_id"])
