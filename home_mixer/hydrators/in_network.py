"""InNetwork: is the candidate's author followed by the user. Reads the author id after
CoreData filled it (a repost's author is the reposter)."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Hydrator
from home_mixer.candidates import PostBatch, id_array
from home_mixer.query import ScoredPostsQuery


class InNetworkHydrator(Hydrator[ScoredPostsQuery, PostBatch]):
    reads = ("author_id",)
    writes = ("in_network",)

    async def hydrate(self, query: ScoredPostsQuery, candidates: PostBatch) -> dict[str, np.ndarray]:
        if query.user_features is None:  # following unknown: keep what the source said
            return {}
        return {"in_network": np.isin(candidates["author_id"], id_array(query.user_features.following))}
