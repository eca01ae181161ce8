"""CoreDataHydration: remove candidates whose core data (author, text, links, subscriber-only
flag, deleted flag, labels) is not known: Thunder reported the post missing, or no answer
came and no cached copy had it. Every later safety check reads these fields, so a post
without them is never served (see docs/reliability.md)."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import CORE_FOUND, PostBatch
from home_mixer.query import ScoredPostsQuery


class CoreDataHydrationFilter(Filter[ScoredPostsQuery, PostBatch]):
    fail_closed = True
    reads = ("core_data",)

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        return candidates["core_data"] == CORE_FOUND
