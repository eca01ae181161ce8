"""AuthorColdStart: a small author's new post rarely gathers the engagement the ranker learns
from, so one of them per feed is lifted to where it is seen: take the score at rank
`target_rank` (the 16th-highest) as the target; among original posts whose author has at
most `max_followers` followers, with fewer than `max_impressions` impressions, that rank
within the top `rank_fraction` (85%) of the non-zero scores, the single best one is raised to
at least the target."""
from __future__ import annotations

import math

import numpy as np


def cold_start_lift(scores: np.ndarray, is_original: np.ndarray, follower_counts: np.ndarray,
                    impressions: np.ndarray | None, *, target_rank: int = 16, max_followers: int = 1_000,
                    max_impressions: int = 1_000, rank_fraction: float = 0.85) -> tuple[np.ndarray, int]:
    """(new scores, index of the chosen candidate or -1 when none qualifies; its score may
    already have been at the target). `scores` is not modified.

    Rank ties keep the input order. `impressions` None: the impression count is unknown and
    only the other conditions apply. Fewer than `target_rank` candidates: nothing to lift to."""
    scores = np.asarray(scores, np.float64)
    out = scores.copy()
    if target_rank < 1 or len(scores) < target_rank:
        return out, -1
    order = np.argsort(-scores, kind="stable")
    target = scores[order[target_rank - 1]]
    nonzero = order[scores[order] != 0]
    in_top = nonzero[: math.floor(rank_fraction * len(nonzero))]
    eligible = np.asarray(is_original, bool) & (np.asarray(follower_counts) <= max_followers)
    if impressions is not None:
        eligible &= np.asarray(impressions) < max_impressions
    candidates = in_top[eligible[in_top]]  # still in descending score order
    if len(candidates) == 0:
        return out, -1
    best = int(candidates[0])
    out[best] = max(scores[best], target)
    return out, best
