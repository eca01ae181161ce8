"""VisibilityFilter (post-selection): remove deleted posts and posts labelled unsafe. A
softer label (misinformation) keeps the post (VisibilityHydrator names it in
visibility_reason). A post whose visibility is unknown (no core data) is removed too,
whichever filters ran before."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from foryou_protos import common_pb2
from home_mixer.candidates import CORE_FOUND, PostBatch, label_mask
from home_mixer.query import ScoredPostsQuery

UNSAFE_LABELS = frozenset({common_pb2.SPAM, common_pb2.VIOLENCE, common_pb2.GORE, common_pb2.NSFW,
                           common_pb2.HATE, common_pb2.ABUSE})
UNSAFE_MASK = label_mask(UNSAFE_LABELS)


class VisibilityFilter(Filter[ScoredPostsQuery, PostBatch]):
    fail_closed = True
    reads = ("core_data", "deleted", "label_mask")

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        return ((candidates["core_data"] == CORE_FOUND) & ~candidates["deleted"]
                & ((candidates["label_mask"] & UNSAFE_MASK) == 0))
