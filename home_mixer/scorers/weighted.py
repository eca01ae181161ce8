"""WeightedScorer: one number from Phoenix's per-action predictions.

combined = sum_i weight_i * p_i (video_quality_view only for videos longer than
vqv_min_duration_ms; dwell_time per unit of the continuous prediction), then offset so that
every score is positive: combined >= 0 -> combined + offset; combined < 0 ->
(combined + negative_magnitude) / (positive_sum + negative_magnitude) * offset, which maps
the negative range into [0, offset). The sums are over the 18 probability weights.

A candidate without predictions (Phoenix down or slow) gets a recency score instead, so
the degraded feed is ordered newest first."""
from __future__ import annotations

import numpy as np

from candidate_pipeline import Scorer
from foryou.snowflake import created_at_ms
from home_mixer.candidates import PostBatch
from home_mixer.params import ACTION_NAMES, Params
from home_mixer.query import ScoredPostsQuery

VQV = ACTION_NAMES.index("video_quality_view")


def weight_vector(params: Params) -> np.ndarray:
    return np.array([params.weights.get(name, 0.0) for name in ACTION_NAMES], dtype=np.float64)


def combined_scores(predictions: np.ndarray, video_duration_ms: np.ndarray, params: Params) -> np.ndarray:
    """[n, num_outputs] predictions -> [n] weighted sums."""
    predictions = np.asarray(predictions, dtype=np.float64)
    weights = weight_vector(params)
    total = predictions @ weights
    short = np.asarray(video_duration_ms) <= params.vqv_min_duration_ms
    return total - np.where(short, weights[VQV] * predictions[:, VQV], 0.0)


def offset_scores(combined: np.ndarray, params: Params) -> np.ndarray:
    combined = np.asarray(combined, dtype=np.float64)
    weight_sum = params.positive_weight_sum + params.negative_weight_magnitude
    if weight_sum == 0:
        negative = np.zeros_like(combined)
    else:
        negative = np.maximum(0.0, (combined + params.negative_weight_magnitude) / weight_sum * params.score_offset)
    return np.where(combined >= 0, combined + params.score_offset, negative)


def recency_scores(post_ids: np.ndarray) -> np.ndarray:
    """Newer posts score higher; only ever compared with other recency scores."""
    return created_at_ms(np.asarray(post_ids, dtype=np.int64)) / 1e15


class WeightedScorer(Scorer[ScoredPostsQuery, PostBatch]):
    reads = ("predictions", "scored_at_ms", "video_duration_ms", "post_id")
    writes = ("weighted_score", "score")

    async def score(self, query: ScoredPostsQuery, candidates: PostBatch) -> dict[str, np.ndarray]:
        scored = candidates["scored_at_ms"] > 0
        weighted = offset_scores(combined_scores(candidates["predictions"], candidates["video_duration_ms"],
                                                 query.params), query.params)
        values = np.where(scored, weighted, recency_scores(candidates["post_id"]))
        return {"weighted_score": values, "score": values}
