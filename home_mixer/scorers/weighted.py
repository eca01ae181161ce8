"""WeightedScorer: one number from Phoenix's per-action predictions.

combined = sum_i weight_i * p_i (video_quality_view only for videos longer than
vqv_min_duration_ms; dwell_time per unit of the continuous prediction), then offset so that
every score is positive: combined >= 0 -> combined + offset; combined < 0 ->
(combined + negative_magnitude) / (positive_sum + negative_magnitude) * offset, which maps
the negative range into [0, offset). The sums are over the 18 probability weights.

A candidate without predictions (Phoenix down or slow) gets a recency score instead, so
the degraded feed is ordered newest first."""
from __future__ import annotations

from candidate_pipeline import Scorer
from foryou.snowflake import created_at_ms
from home_mixer.candidate import PostCandidate
from home_mixer.params import Params
from home_mixer.query import ScoredPostsQuery

VQV = "video_quality_view"


def combined_score(predictions: dict[str, float], video_duration_ms: int, params: Params) -> float:
    total = 0.0
    for name, weight in params.weights.items():
        if name == VQV and video_duration_ms <= params.vqv_min_duration_ms:
            continue
        total += weight * predictions.get(name, 0.0)
    return total


def offset_score(combined: float, params: Params) -> float:
    if combined >= 0:
        return combined + params.score_offset
    weight_sum = params.positive_weight_sum + params.negative_weight_magnitude
    if weight_sum == 0:
        return 0.0
    return max(0.0, (combined + params.negative_weight_magnitude) / weight_sum * params.score_offset)


def recency_score(post_id: int) -> float:
    """Newer posts score higher; only ever compared with other recency scores."""
    return created_at_ms(post_id) / 1e15


def weighted_score(c: PostCandidate, params: Params) -> float:
    if not c.predictions:
        return recency_score(c.post_id)
    return offset_score(combined_score(c.predictions, c.video_duration_ms, params), params)


class WeightedScorer(Scorer[ScoredPostsQuery, PostCandidate]):
    async def score(self, query: ScoredPostsQuery, candidates: list[PostCandidate]) -> list[PostCandidate]:
        out = []
        for c in candidates:
            value = weighted_score(c, query.params)
            out.append(c.evolve(weighted_score=value, score=value))
        return out

    def update(self, candidate: PostCandidate, scored: PostCandidate) -> None:
        candidate.weighted_score = scored.weighted_score
        candidate.score = scored.score
