"""The four scorers and the selector, with hand-computed expectations."""
from __future__ import annotations

import pytest

from foryou.snowflake import make_id
from foryou_protos import common_pb2
from tests.home_mixer.hm_helpers import cand, ids, query
from home_mixer.params import Params
from home_mixer.scorers.author_diversity import AuthorDiversityScorer, diversity_multiplier
from home_mixer.scorers.out_of_network import OutOfNetworkScorer
from home_mixer.scorers.phoenix import rank_candidates
from home_mixer.scorers.weighted import WeightedScorer, combined_score, offset_score, recency_score
from home_mixer.selectors.top_k_score import TopKScoreSelector


def test_default_weight_sums_match_the_spec():
    params = Params()
    assert params.positive_weight_sum == pytest.approx(43.05)
    assert params.negative_weight_magnitude == pytest.approx(367.2)


def test_positive_combination_gets_the_offset_added():
    params = Params()
    combined = combined_score({"favorite": 0.5, "reply": 0.1, "report": 0.0}, 0, params)
    assert combined == pytest.approx(0.5 * 0.5 + 5 * 0.1)
    assert offset_score(combined, params) == pytest.approx(0.751)
    assert offset_score(0.0, params) == pytest.approx(0.001)


def test_negative_combination_maps_into_zero_to_offset():
    params = Params()
    combined = combined_score({"not_interested": 0.5}, 0, params)
    assert combined == pytest.approx(-21.6)
    # (-21.6 + 367.2) / (43.05 + 367.2) * 0.001
    assert offset_score(combined, params) == pytest.approx(345.6 / 410.25 * 0.001)
    worst = combined_score({"not_interested": 1, "block_author": 1, "mute_author": 1, "report": 1}, 0, params)
    assert worst == pytest.approx(-367.2)
    assert offset_score(worst, params) == pytest.approx(0.0, abs=1e-12)
    assert 0 <= offset_score(-1e-9, params) < params.score_offset


def test_video_quality_view_counts_only_for_long_videos_and_dwell_time_per_unit():
    params = Params()
    assert combined_score({"video_quality_view": 1.0}, 10_000, params) == 0.0
    assert combined_score({"video_quality_view": 1.0}, 10_001, params) == pytest.approx(0.05)
    assert combined_score({"dwell_time": 100.0}, 0, params) == pytest.approx(0.4)


async def test_weighted_scorer_uses_request_overrides_and_recency_fallback():
    q = query(params={"weight.favorite": 2.0, "score_offset": 1.0})
    liked = cand(make_id(1_700_000_000_000), predictions={"favorite": 0.5})
    older, newer = cand(make_id(1_700_000_000_000)), cand(make_id(1_700_000_100_000))
    scored = await WeightedScorer().score(q, [liked, older, newer])
    assert scored[0].weighted_score == pytest.approx(2.0 * 0.5 + 1.0)
    assert scored[0].score == scored[0].weighted_score
    # Without predictions (Phoenix down): newest first.
    assert scored[2].weighted_score > scored[1].weighted_score > 0
    assert scored[1].weighted_score == recency_score(older.post_id)


async def test_author_diversity_formula():
    assert diversity_multiplier(0, 0.5, 0.25) == 1.0
    assert diversity_multiplier(1, 0.5, 0.25) == pytest.approx(0.625)
    assert diversity_multiplier(2, 0.5, 0.25) == pytest.approx(0.4375)
    p = {"favorite": 1.0}
    a3, b1, a1, a2 = (cand(1, author=1, weighted_score=0.6, predictions=p), cand(2, author=2, weighted_score=0.7, predictions=p),
                      cand(3, author=1, weighted_score=0.9, predictions=p), cand(4, author=1, weighted_score=0.8, predictions=p))
    scored = await AuthorDiversityScorer().score(query(), [a3, b1, a1, a2])
    assert [s.diversity_multiplier for s in scored] == pytest.approx([0.4375, 1.0, 1.0, 0.625])
    assert [s.score for s in scored] == pytest.approx([0.6 * 0.4375, 0.7, 0.9, 0.8 * 0.625])
    custom = await AuthorDiversityScorer().score(query(params={"diversity_decay": 0.0, "diversity_floor": 0.1}), [a1, a2])
    assert custom[1].diversity_multiplier == pytest.approx(0.1)


async def test_author_diversity_leaves_recency_fallback_alone():
    unscored = [cand(1, author=1, weighted_score=0.5), cand(2, author=1, weighted_score=0.4)]
    scored = await AuthorDiversityScorer().score(query(), unscored)
    assert [s.diversity_multiplier for s in scored] == [1.0, 1.0]


async def test_out_of_network_factor():
    p = {"favorite": 1.0}
    inn, oon = cand(1, in_network=True, score=0.8, predictions=p), cand(2, in_network=False, score=0.8, predictions=p)
    scored = await OutOfNetworkScorer().score(query(), [inn, oon])
    assert (scored[0].score, scored[0].oon_factor) == (0.8, 1.0)
    assert scored[1].score == pytest.approx(0.6) and scored[1].oon_factor == 0.75
    scored = await OutOfNetworkScorer().score(query(params={"oon_factor": 0.5}), [oon])
    assert scored[0].score == pytest.approx(0.4)


def test_phoenix_scores_a_repost_as_its_original():
    original = cand(10, author=3)
    repost = cand(11, author=4, repost_of_post_id=10, repost_of_user_id=3)
    sent = rank_candidates([original, repost])
    assert [(c.post_id, c.author_id) for c in sent] == [(10, 3), (10, 3)]
    assert all(c.surface == common_pb2.HOME_FOR_YOU for c in sent)


def test_top_k_selector_sorts_and_cuts():
    candidates = [cand(i, score=s) for i, s in [(1, 0.1), (2, 0.9), (3, 0.5), (4, 0.5), (5, 0.7)]]
    assert ids(TopKScoreSelector().select(query(params={"top_k": 3}), candidates)) == [2, 5, 4]
    assert ids(TopKScoreSelector().select(query(), candidates)) == [2, 5, 4, 3, 1]

