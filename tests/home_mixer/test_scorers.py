"""The four scorers and the selector, with hand-computed expectations."""
from __future__ import annotations

import numpy as np
import pytest

from foryou.snowflake import make_id
from tests.home_mixer.hm_helpers import batch, cand, ids, prediction_row, query
from home_mixer.candidates import ranked_author_ids, ranked_post_ids
from home_mixer.params import Params
from home_mixer.scorers.author_diversity import AuthorDiversityScorer, diversity_multiplier, occurrence_ranks
from home_mixer.scorers.out_of_network import OutOfNetworkScorer
from home_mixer.scorers.weighted import WeightedScorer, combined_scores, offset_scores, recency_scores
from home_mixer.selectors.top_k_score import TopKScoreSelector


def combined(predictions: dict[str, float], video_duration_ms: int, params: Params) -> float:
    return float(combined_scores(prediction_row(**predictions)[None, :], np.array([video_duration_ms]), params)[0])


def offset(value: float, params: Params) -> float:
    return float(offset_scores(np.array([value]), params)[0])


def test_default_weight_sums_match_the_spec():
    params = Params()
    assert params.positive_weight_sum == pytest.approx(43.05)
    assert params.negative_weight_magnitude == pytest.approx(367.2)


def test_positive_combination_gets_the_offset_added():
    params = Params()
    value = combined({"favorite": 0.5, "reply": 0.1, "report": 0.0}, 0, params)
    assert value == pytest.approx(0.5 * 0.5 + 5 * 0.1)
    assert offset(value, params) == pytest.approx(0.751)
    assert offset(0.0, params) == pytest.approx(0.001)


def test_negative_combination_maps_into_zero_to_offset():
    params = Params()
    value = combined({"not_interested": 0.5}, 0, params)
    assert value == pytest.approx(-21.6)
    # (-21.6 + 367.2) / (43.05 + 367.2) * 0.001
    assert offset(value, params) == pytest.approx(345.6 / 410.25 * 0.001)
    worst = combined({"not_interested": 1, "block_author": 1, "mute_author": 1, "report": 1}, 0, params)
    assert worst == pytest.approx(-367.2)
    assert offset(worst, params) == pytest.approx(0.0, abs=1e-12)
    assert 0 <= offset(-1e-9, params) < params.score_offset


def test_video_quality_view_counts_only_for_long_videos_and_dwell_time_per_unit():
    params = Params()
    assert combined({"video_quality_view": 1.0}, 10_000, params) == 0.0
    assert combined({"video_quality_view": 1.0}, 10_001, params) == pytest.approx(0.05)
    assert combined({"dwell_time": 100.0}, 0, params) == pytest.approx(0.4)


async def test_weighted_scorer_uses_request_overrides_and_recency_fallback():
    q = query(params={"weight.favorite": 2.0, "score_offset": 1.0})
    liked = cand(make_id(1_700_000_000_000), predictions={"favorite": 0.5})
    older, newer = cand(make_id(1_700_000_000_000)), cand(make_id(1_700_000_100_000))
    scored = await WeightedScorer().score(q, batch(liked, older, newer))
    weighted = scored["weighted_score"]
    assert weighted[0] == pytest.approx(2.0 * 0.5 + 1.0)
    assert scored["score"].tolist() == weighted.tolist()
    # Without predictions (Phoenix down): newest first.
    assert weighted[2] > weighted[1] > 0
    assert weighted[1] == recency_scores(np.array([older["post_id"]]))[0]


async def test_author_diversity_formula():
    assert diversity_multiplier(0, 0.5, 0.25) == 1.0
    assert diversity_multiplier(1, 0.5, 0.25) == pytest.approx(0.625)
    assert diversity_multiplier(2, 0.5, 0.25) == pytest.approx(0.4375)
    assert occurrence_ranks(np.array([5, 3, 5, 5, 3])).tolist() == [0, 0, 1, 2, 1]
    p = {"favorite": 1.0}
    a3, b1, a1, a2 = (cand(1, author=1, weighted_score=0.6, predictions=p), cand(2, author=2, weighted_score=0.7, predictions=p),
                      cand(3, author=1, weighted_score=0.9, predictions=p), cand(4, author=1, weighted_score=0.8, predictions=p))
    scored = await AuthorDiversityScorer().score(query(), batch(a3, b1, a1, a2))
    assert scored["diversity_multiplier"].tolist() == pytest.approx([0.4375, 1.0, 1.0, 0.625])
    assert scored["score"].tolist() == pytest.approx([0.6 * 0.4375, 0.7, 0.9, 0.8 * 0.625])
    custom = await AuthorDiversityScorer().score(query(params={"diversity_decay": 0.0, "diversity_floor": 0.1}),
                                                 batch(a1, a2))
    assert custom["diversity_multiplier"][1] == pytest.approx(0.1)


async def test_author_diversity_leaves_recency_fallback_alone():
    unscored = batch(cand(1, author=1, weighted_score=0.5), cand(2, author=1, weighted_score=0.4))
    scored = await AuthorDiversityScorer().score(query(), unscored)
    assert scored["diversity_multiplier"].tolist() == [1.0, 1.0]


async def test_out_of_network_factor():
    p = {"favorite": 1.0}
    inn, oon = cand(1, in_network=True, score=0.8, predictions=p), cand(2, in_network=False, score=0.8, predictions=p)
    scored = await OutOfNetworkScorer().score(query(), batch(inn, oon))
    assert (scored["score"][0], scored["oon_factor"][0]) == (0.8, 1.0)
    assert scored["score"][1] == pytest.approx(0.6) and scored["oon_factor"][1] == 0.75
    scored = await OutOfNetworkScorer().score(query(params={"oon_factor": 0.5}), batch(oon))
    assert scored["score"][0] == pytest.approx(0.4)
    unscored = await OutOfNetworkScorer().score(query(), batch(cand(3, in_network=False, score=0.8)))
    assert unscored["oon_factor"].tolist() == [1.0]        # recency fallback: left alone


def test_phoenix_scores_a_repost_as_its_original():
    candidates = batch(cand(10, author=3), cand(11, author=4, repost_of_post_id=10, repost_of_user_id=3))
    assert list(zip(ranked_post_ids(candidates).tolist(), ranked_author_ids(candidates).tolist())) == [(10, 3), (10, 3)]


def test_top_k_selector_sorts_and_cuts():
    candidates = batch(*[cand(i, score=s) for i, s in [(1, 0.1), (2, 0.9), (3, 0.5), (4, 0.5), (5, 0.7)]])
    no_dpp = frozenset({"DppDiversityFilter"})
    top3 = TopKScoreSelector().select(query(params={"top_k": 3}, disabled_components=no_dpp), candidates)
    assert ids(candidates.take(top3)) == [2, 5, 4]
    # While the DPP runs, the selector keeps its window (dpp_window 4 here), not top_k.
    window = TopKScoreSelector().select(query(params={"top_k": 3, "dpp_window": 4}), candidates)
    assert ids(candidates.take(window)) == [2, 5, 4, 3]
    assert ids(candidates.take(TopKScoreSelector().select(query(), candidates))) == [2, 5, 4, 3, 1]
