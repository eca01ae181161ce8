"""DppDiversityFilter: diversity selection over content (the reference's "VM ranker"), the
last post-selection filter. Of the top `dpp_window` (150) posts by score a greedy
determinantal point process keeps `top_k` (50), the others are removed in its name
(home_mixer/stages/dpp.py). Without content vectors (a model with no content input) it keeps
the top `top_k` by score: author-only diversity, from AuthorDiversityScorer's multipliers.

TopKScoreSelector keeps `selection_size(query)` posts so that the window reaches it."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Filter
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery
from home_mixer.stages.dpp import dpp_select


class DppDiversityFilter(Filter[ScoredPostsQuery, PostBatch]):
    reads = ("score", "content_vector")

    async def filter(self, query: ScoredPostsQuery, candidates: PostBatch) -> np.ndarray:
        p = query.params
        chosen = dpp_select(candidates["score"], candidates.get("content_vector"),
                            window=p.dpp_window, k=p.top_k, theta=p.dpp_theta)
        keep = np.zeros(len(candidates), bool)
        keep[chosen] = True
        return keep


def selection_size(query: ScoredPostsQuery) -> int:
    """How many posts the selector keeps: the DPP's window while it runs, else top_k."""
    if DppDiversityFilter.name in query.disabled_components:
        return query.params.top_k
    return max(query.params.top_k, query.params.dpp_window)
