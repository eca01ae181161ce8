"""Every tunable number of the For You pipeline, with its documented default, in one place,
and how a request overrides them (`ScoredPostsQuery.params`, a map of name -> number).

Names a request may override:
  result_size            posts in the response after post-selection filters (35)
  top_k                  candidates kept by the TopKScore selector (50)
  thunder_max_results    in-network candidate budget (1,200)
  phoenix_max_results    out-of-network (retrieval) candidate budget (1,000)
  max_age_ms             AgeFilter: older posts are dropped (2 days)
  max_history            engagement entries sent to Phoenix, newest kept (32)
  history_merge_window_ms  engagements on the same post this close are one entry (5 min)
  weight.<action>        WeightedScorer weight of one Phoenix output (see DEFAULT_WEIGHTS)
  score_offset           WeightedScorer offset that keeps scores positive (0.001)
  vqv_min_duration_ms    video_quality_view counts only for longer videos (10,000 ms)
  diversity_decay        AuthorDiversityScorer decay per repeated author (0.5)
  diversity_floor        AuthorDiversityScorer floor of the multiplier (0.25)
  oon_factor             OutOfNetworkScorer multiplier for out-of-network posts (0.75)
The newer ranking stages (the reference authors' August 2026 release; docs/home_mixer.md):
  served_bottom_only     PreviouslyServedPosts: 1 = only on bottom requests, whole record (v1); 0 = every request (0)
  served_window_ms       PreviouslyServedPosts on every request: served this recently (10 min)
  served_max_ids         ... at most this many of the newest served ids (100)
  mutual_follow_reply_boost  MutualFollowReplyBoost: added to the reply weight of mutual follows' original posts (15)
  cold_start_target_rank     AuthorColdStart: the score at this rank is the target (16)
  cold_start_max_followers   ... authors with at most this many followers (1,000)
  cold_start_max_impressions ... posts with fewer impressions than this (1,000)
  cold_start_rank_fraction   ... ranked within this top fraction of the non-zero scores (0.85)
  dpp_window             DppDiversity: the top posts by score the DPP chooses from (150); it keeps top_k
  dpp_theta              DppDiversity: relevance vs diversity, quality exp(theta / (2 (1 - theta)) * normalised score) (0.65)
Any other name is rejected (ParamError -> gRPC INVALID_ARGUMENT naming it).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from phoenix import actions
from phoenix.settings import PhoenixSettings

# Phoenix outputs, in model order: the actions (Action enum value - 1), then dwell_time.
ACTION_NAMES = actions.ACTION_NAMES
# The continuous output: weighted per unit, not a probability, so not part of the weight sums.
CONTINUOUS_OUTPUTS = frozenset({"dwell_time"})

# The weights the reference's authors published (home-mixer params, August 2026).
DEFAULT_WEIGHTS: dict[str, float] = {
    "favorite": 0.5, "reply": 5.0, "repost": 1.0, "photo_expand": 0.05, "click": 0.4,
    "profile_click": 0.0, "video_quality_view": 0.05, "share": 2.0, "share_via_dm": 5.0,
    "share_via_copy_link": 20.0, "dwell": 0.0, "quote": 5.0, "quoted_click": 0.05,
    "follow_author": 4.0, "not_interested": -43.2, "block_author": -31.2, "mute_author": -58.8,
    "report": -234.0, "dwell_time": 0.004,
}
assert set(DEFAULT_WEIGHTS) == set(ACTION_NAMES)

MAX_RESULT_SIZE = 500
MAX_SOURCE_BUDGET = 5_000
MAX_RETRIEVAL_K = PhoenixSettings.default("max_k")  # Phoenix rejects a larger Retrieve k
DAY_MS = 24 * 3600 * 1000


class ParamError(ValueError):
    """A bad per-request parameter; the message names it."""


def _param(default: float, low: float, high: float) -> Any:
    """A parameter a request may override: its default, and the range a request may set."""
    return field(default=default, metadata={"range": (low, high)})


@dataclass(frozen=True)
class Params:
    result_size: int = _param(35, 1, MAX_RESULT_SIZE)
    top_k: int = _param(50, 1, MAX_SOURCE_BUDGET)
    thunder_max_results: int = _param(1_200, 0, MAX_SOURCE_BUDGET)
    phoenix_max_results: int = _param(1_000, 0, MAX_RETRIEVAL_K)
    max_age_ms: int = _param(2 * DAY_MS, 1, 30 * DAY_MS)
    max_history: int = _param(32, 0, 4_096)
    history_merge_window_ms: int = _param(5 * 60 * 1000, 0, DAY_MS)
    score_offset: float = _param(0.001, 0.0, math.inf)
    vqv_min_duration_ms: int = _param(10_000, 0, DAY_MS)
    diversity_decay: float = _param(0.5, 0.0, 1.0)
    diversity_floor: float = _param(0.25, 0.0, 1.0)
    oon_factor: float = _param(0.75, 0.0, math.inf)
    # The newer ranking stages (home_mixer/stages/), with the published defaults.
    served_bottom_only: int = _param(0, 0, 1)
    served_window_ms: int = _param(10 * 60 * 1000, 0, 30 * DAY_MS)
    served_max_ids: int = _param(100, 0, 100_000)
    mutual_follow_reply_boost: float = _param(15.0, -math.inf, math.inf)
    cold_start_target_rank: int = _param(16, 1, MAX_SOURCE_BUDGET)
    cold_start_max_followers: int = _param(1_000, 0, 2**63 - 1)
    cold_start_max_impressions: int = _param(1_000, 0, 2**63 - 1)
    cold_start_rank_fraction: float = _param(0.85, 0.0, 1.0)
    dpp_window: int = _param(150, 1, MAX_SOURCE_BUDGET)
    dpp_theta: float = _param(0.65, 0.0, 0.99)
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    @property
    def positive_weight_sum(self) -> float:
        return sum(w for n, w in self.weights.items() if w > 0 and n not in CONTINUOUS_OUTPUTS)

    @property
    def negative_weight_magnitude(self) -> float:
        return -sum(w for n, w in self.weights.items() if w < 0 and n not in CONTINUOUS_OUTPUTS)


# name -> (kind, lowest, highest) of the scalar parameters a request may override.
_BOUNDS: dict[str, tuple[type, float, float]] = {
    f.name: (type(f.default), *f.metadata["range"]) for f in dataclasses.fields(Params) if "range" in f.metadata}
WEIGHT_PREFIX = "weight."


def parse_params(overrides: Mapping[str, float], base: Params | None = None) -> Params:
    """`base` (default: the documented defaults) with the request's overrides applied."""
    base = base or Params()
    changes: dict[str, Any] = {}
    weights = dict(base.weights)
    for name in sorted(overrides):
        value = float(overrides[name])
        if not math.isfinite(value):
            raise ParamError(f"params.{name} must be a finite number, got {value}")
        if name.startswith(WEIGHT_PREFIX):
            action = name[len(WEIGHT_PREFIX):]
            if action not in weights:
                raise ParamError(f"params: unknown parameter {name!r} (unknown action {action!r})")
            weights[action] = value
            continue
        if name not in _BOUNDS:
            raise ParamError(f"params: unknown parameter {name!r}")
        kind, low, high = _BOUNDS[name]
        if kind is int and value != int(value):
            raise ParamError(f"params.{name} must be an integer, got {value}")
        if not low <= value <= high:
            raise ParamError(f"params.{name} must be in [{low:g}, {high:g}], got {value:g}")
        changes[name] = kind(value)
    return dataclasses.replace(base, weights=weights, **changes)

