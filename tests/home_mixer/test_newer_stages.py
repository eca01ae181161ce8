"""The newer ranking stages (home_mixer/stages/), as pure functions over numpy columns. Every
expected number is worked out by hand in the comments, not by calling the code."""
from __future__ import annotations

import math

import numpy as np
import pytest

from foryou.snowflake import now_ms
from tests.home_mixer.hm_helpers import batch, cand, ids, query, split, with_vectors
from home_mixer.filters.dpp_diversity import DppDiversityFilter, selection_size
from home_mixer.filters.oon_reply_repost import OutOfNetworkReplyRepostFilter
from home_mixer.filters.previously_served_posts import PreviouslyServedPostsFilter
from home_mixer.params import ParamError, Params, parse_params
from home_mixer.query import UserFeatures
from home_mixer.scorers.author_cold_start import AuthorColdStartScorer
from home_mixer.scorers.mutual_follow_reply_boost import MutualFollowReplyBoostScorer
from home_mixer.scorers.weighted import WeightedScorer
from home_mixer.stages.cold_start import cold_start_lift
from home_mixer.stages.dpp import dpp_alpha, dpp_quality, dpp_select, greedy_dpp, unit_rows
from home_mixer.stages.mutual_follow import boosted_combined, mutual_follow_mask
from home_mixer.stages.oon_reply_repost import oon_reply_repost_keep
from home_mixer.stages.served import applies, recent_served_ids


def test_published_defaults():
    p = Params()
    assert (p.served_bottom_only, p.served_window_ms, p.served_max_ids) == (0, 600_000, 100)
    assert p.mutual_follow_reply_boost == 15.0
    assert (p.cold_start_target_rank, p.cold_start_max_followers, p.cold_start_max_impressions,
            p.cold_start_rank_fraction) == (16, 1_000, 1_000, 0.85)
    assert (p.dpp_window, p.top_k, p.dpp_theta) == (150, 50, 0.65)


def test_stage_params_are_overridable_and_checked():
    p = parse_params({"served_bottom_only": 1, "dpp_theta": 0.5, "cold_start_target_rank": 3})
    assert (p.served_bottom_only, p.dpp_theta, p.cold_start_target_rank) == (1, 0.5, 3)
    with pytest.raises(ParamError, match="served_bottom_only"):
        parse_params({"served_bottom_only": 2})
    with pytest.raises(ParamError, match="dpp_theta"):
        parse_params({"dpp_theta": 1.0})  # alpha = theta / (2 (1 - theta)) is infinite at 1


# -- OutOfNetworkReplyRepost ----------------------------------------------------------------

def test_oon_reply_repost_drops_strangers_replies_and_reposts_and_orphan_replies():
    #                  0 original  1 reply  2 reply  3 repost  4 repost  5 reply
    # followed:        no          yes      no       no        yes       yes
    # ancestors known: -           yes      yes      -         -         no
    # 0: an original is kept whoever wrote it; 1: a followed account's reply with context;
    # 2: a stranger's reply; 3: a stranger's repost; 4: a followed account's repost (a repost
    # has no ancestors to know); 5: a followed account's reply whose context is unknown.
    keep = oon_reply_repost_keep(
        is_reply=np.array([0, 1, 1, 0, 0, 1], bool), is_repost=np.array([0, 0, 0, 1, 1, 0], bool),
        author_followed=np.array([0, 1, 0, 0, 1, 1], bool), ancestors_known=np.array([0, 1, 1, 0, 0, 0], bool))
    assert keep.tolist() == [True, True, False, False, True, False]


# -- PreviouslyServedPosts on every request ------------------------------------------------

def test_recent_served_ids_window_then_count():
    served = np.array([50, 40, 30, 20, 10], np.int64)      # newest first
    at = np.array([1_000, 900, 500, 400, 100])
    # now 1,000, window 500: served at >= 500 -> 50, 40, 30; at most 3 -> all three.
    assert recent_served_ids(served, at, 1_000, 500, 3).tolist() == [50, 40, 30]
    # at most 2: the two newest.
    assert recent_served_ids(served, at, 1_000, 500, 2).tolist() == [50, 40]
    # no times in the record: only the count limit, newest 4.
    assert recent_served_ids(served, None, 1_000, 500, 4).tolist() == [50, 40, 30, 20]


def test_served_filter_runs_on_every_request_unless_v1_bottom_only():
    assert applies(is_bottom_request=False, bottom_only=False)      # the new default
    assert not applies(is_bottom_request=False, bottom_only=True)   # v1: top of feed shows them again
    assert applies(is_bottom_request=True, bottom_only=True)


# -- MutualFollowReplyBoost -----------------------------------------------------------------

def test_mutual_follow_mask_needs_original_followed_and_following_back():
    # following {7, 8}, followers {7, 9}: mutual {7}. 0: author 7 original -> boosted;
    # 1: 8 is followed but does not follow back; 2: 9 follows back but is not followed;
    # 3: author 7 but a reply, not an original post.
    mask = mutual_follow_mask(np.array([7, 8, 9, 7], np.int64), np.array([1, 1, 1, 0], bool),
                              following=np.array([7, 8]), followers=np.array([7, 9]))
    assert mask.tolist() == [True, False, False, False]


def test_boost_adds_fifteen_times_the_reply_probability():
    # 1.0 + 15 * 0.1 = 2.5; the others unchanged.
    out = boosted_combined(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3]), np.array([1, 0, 0], bool), 15.0)
    assert out.tolist() == pytest.approx([2.5, 2.0, 3.0])


# -- AuthorColdStart --------------------------------------------------------------------------

def _twenty():
    scores = np.arange(20, 0, -1, dtype=float)      # index i scores 20 - i
    followers = np.full(20, 5_000)
    impressions = np.zeros(20, int)
    original = np.ones(20, bool)
    followers[16] = 1_000  # score 4: eligible (<= 1,000 followers, < 1,000 impressions)
    impressions[16] = 999
    followers[17] = 10                               # score 3: eligible but below the top 85%
    followers[10] = 500  # score 10: 1,000 impressions is not fewer than 1,000
    impressions[10] = 1_000
    followers[12] = 200  # score 8: a reply, not an original post
    original[12] = False
    return scores, original, followers, impressions


def test_cold_start_lifts_the_best_small_author_post_to_the_sixteenth_score():
    scores, original, followers, impressions = _twenty()
    # Target: the 16th-highest score = index 15 = 5. Non-zero scores: 20; top 85% = the
    # first floor(17.0) = 17 ranks = indices 0..16. Eligible among them: only 16 (score 4).
    out, lifted = cold_start_lift(scores, original, followers, impressions)
    assert lifted == 16
    expected = scores.copy()
    expected[16] = 5.0
    assert out.tolist() == expected.tolist()
    assert scores[16] == 4.0  # the input is not modified


def test_cold_start_keeps_a_post_already_above_the_target():
    scores, original, followers, _ = _twenty()
    # Impressions unknown: index 10 (score 10, 500 followers) is eligible and the best; 10 >= 5,
    # so nothing changes.
    out, lifted = cold_start_lift(scores, original, followers, None)
    assert lifted == 10 and out.tolist() == scores.tolist()


def test_cold_start_ranks_among_non_zero_scores_only():
    scores = np.array([*range(14, 0, -1), 0, 0, 0, 0, 0, 0], float)   # 14 non-zero, 6 zeros
    followers = np.full(20, 5_000)  # index 11 scores 3
    followers[11] = 1
    # Non-zero: 14; top 85% = floor(11.9) = 11 ranks = indices 0..10 (scores 14..4): 11 is out.
    out, lifted = cold_start_lift(scores, np.ones(20, bool), followers, None)
    assert lifted == -1 and out.tolist() == scores.tolist()


def test_cold_start_needs_sixteen_candidates():
    out, lifted = cold_start_lift(np.arange(15.0), np.ones(15, bool), np.zeros(15), None)
    assert lifted == -1 and out.tolist() == list(np.arange(15.0))


# -- DPP diversity selection ------------------------------------------------------------------

def test_alpha_and_quality():
    # alpha = theta / (2 (1 - theta)): 0.65 -> 0.65 / 0.7 = 0.928571...; 0.5 -> 0.5.
    assert dpp_alpha(0.65) == pytest.approx(0.65 / 0.7)
    assert dpp_alpha(0.5) == 0.5
    # scores 3, 2, 1 -> ranks scaled to 1, 0.5, 0 -> exp(0.5 r) = e^0.5, e^0.25, 1.
    assert dpp_quality(np.array([3.0, 2.0, 1.0]), 0.5).tolist() == pytest.approx(
        [math.exp(0.5), math.exp(0.25), 1.0])
    # Ranks, not values: a heavy tail (100 far above 2 and 1) gives the same qualities; min-max
    # would give 1, 0.0101, 0. Ties share their mean rank: 5, 5, 1 -> ranks 2.5, 2.5, 1 -> 0.75, 0.75, 0.
    assert dpp_quality(np.array([100.0, 2.0, 1.0]), 0.5).tolist() == pytest.approx(
        [math.exp(0.5), math.exp(0.25), 1.0])
    assert dpp_quality(np.array([5.0, 5.0, 1.0]), 0.5).tolist() == pytest.approx(
        [math.exp(0.375), math.exp(0.375), 1.0])
    assert dpp_quality(np.array([2.0, 2.0]), 0.65).tolist() == [1.0, 1.0]  # all equal: r = 0


def test_unit_rows_leave_unknown_content_at_zero():
    assert unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).ravel().tolist() == pytest.approx([0.6, 0.8, 0.0, 0.0])


def test_greedy_dpp_skips_a_duplicate_for_an_orthogonal_post():
    q = np.array([1.0, 0.9, 0.8])
    v = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])   # 1 says what 0 says
    # Gains start at q^2 = 1, 0.81, 0.64: take 0. Its kernel row q0 q S0 = 1, 0.9, 0, so
    # e = (1, 0.9, 0) / sqrt(1) and the gains become 0, 0.81 - 0.81 = 0, 0.64 - 0 = 0.64:
    # take 2, although 1 scores higher.
    assert greedy_dpp(q, v, 2).tolist() == [0, 2]
    # A third pick: 2's row is 0, 0, 0.64, e = (0, 0, 0.64) / 0.8 = (0, 0, 0.8): 1's gain
    # stays 0, nothing is left to span, so the rest are filled in quality order: 1.
    assert greedy_dpp(q, v, 3).tolist() == [0, 2, 1]
    # The same, kernel row by row (9 posts > 4 * 2): three more copies of each of 0 and 2
    # with lower quality add nothing new; 0, then 2.
    q9 = np.array([1.0, 0.9, 0.8, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4])
    v9 = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], *[[1.0, 0.0]] * 3, *[[0.0, 1.0]] * 3])
    assert greedy_dpp(q9, v9, 2).tolist() == [0, 2]


def test_greedy_dpp_trades_quality_against_similarity():
    # cos(0, 1) = 0.6, cos(0, 2) = 0, cos(1, 2) = 0.8.
    v = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    # q = 1, 0.95, 0.5: take 0; then 1's gain = 0.95^2 - (0.95 * 0.6)^2 = 0.9025 - 0.3249
    # = 0.5776 (= det L_{0,1} = 0.9025 * (1 - 0.36)), 2's gain = 0.25: the similar but much
    # better post wins.
    assert greedy_dpp(np.array([1.0, 0.95, 0.5]), v, 2).tolist() == [0, 1]
    # q2 = 0.8: 2's gain = 0.64 > 0.5776: the orthogonal post wins.
    assert greedy_dpp(np.array([1.0, 0.95, 0.8]), v, 2).tolist() == [0, 2]


def test_dpp_select_takes_the_window_by_score_and_falls_back_without_vectors():
    scores = np.array([0.1, 0.9, 0.8, 0.7])
    v = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # Window 3: posts 1, 2, 3 (0 is out). theta 0.5: r = 1, 0.5, 0, q = e^0.5, e^0.25, 1.
    # Take 1 (largest q); 2 duplicates it (gain 0), 3 is orthogonal (gain 1): 1, 3.
    assert dpp_select(scores, v, window=3, k=2, theta=0.5).tolist() == [1, 3]
    # No content vectors: the top 2 by score.
    assert dpp_select(scores, None, window=3, k=2, theta=0.5).tolist() == [1, 2]
    # k larger than the window: the window grows to k. Window 2, k 3: posts 1, 2, 3 again;
    # take 1, then 3 (orthogonal), then 2 (gain 0, filled in by score): 1, 3, 2.
    assert dpp_select(scores, v, window=2, k=3, theta=0.5).tolist() == [1, 3, 2]
    # k >= n keeps every post.
    assert sorted(dpp_select(scores, v, window=3, k=10, theta=0.5).tolist()) == [0, 1, 2, 3]


@pytest.mark.parametrize("k", [4, 2])  # 12 <= 4 * 4: the whole kernel at once; 12 > 4 * 2: row by row
def test_greedy_dpp_maximises_the_determinant_on_a_random_case(k):
    # Not hand-computed: a check of the incremental Cholesky against det L_Y computed
    # directly: each greedy step must take the post with the largest det of the grown set.
    rng = np.random.default_rng(0)
    v = unit_rows(rng.normal(size=(12, 4)))
    q = np.exp(rng.uniform(size=12))
    chosen = greedy_dpp(q, v, k).tolist()
    assert len(chosen) == k
    kernel = q[:, None] * (v @ v.T) * q[None, :]
    picked: list[int] = []
    for step in chosen:
        dets = {i: np.linalg.det(kernel[np.ix_(picked + [i], picked + [i])]) for i in range(12) if i not in picked}
        assert step == max(dets, key=dets.get)
        picked.append(step)


# == The components (one file each), on batches built with hm_helpers ========================

def _features(**fields) -> UserFeatures:
    return UserFeatures(**fields)


async def test_oon_reply_repost_filter_component():
    rows = [cand(1, in_network=False),                                                   # original: kept
            cand(2, in_network=True, in_reply_to_post_id=50, in_reply_to_user_id=5, conversation_id=50),
            cand(3, in_network=False, in_reply_to_post_id=50, in_reply_to_user_id=5, conversation_id=50),
            cand(4, in_network=False, repost_of_post_id=60),                             # a stranger's repost
            cand(5, in_network=True, repost_of_post_id=60),
            cand(6, in_network=True, in_reply_to_post_id=50, in_reply_to_user_id=0, conversation_id=50)]
    # 3: a stranger's reply; 6: a reply that does not name whom it answers (context unknown).
    result = await split(OutOfNetworkReplyRepostFilter(), query(), rows)
    assert result.kept == [1, 2, 5] and result.removed == [3, 4, 6]


async def test_previously_served_filter_every_request_last_ten_minutes_newest_hundred():
    # Thunder's record, newest first: 9 served a minute ago, 8 nine minutes ago, 7 eleven
    # minutes ago (outside the 10-minute window). The request itself sent 3. A top-of-feed
    # request (not bottom): the filter runs by default.
    now = now_ms()
    record = _features(served_ids=(9, 8, 7), served_at_ms=(now - 60_000, now - 540_000, now - 660_000))
    q = query(record, served_ids=frozenset({3}))
    assert PreviouslyServedPostsFilter().enable(q)
    rows = [cand(9), cand(7), cand(10, repost_of_post_id=8), cand(11, in_reply_to_post_id=3), cand(12)]
    # 9 served; 10 reposts 8; 11 replies to 3; 7 was served, but longer ago than 10 minutes.
    result = await split(PreviouslyServedPostsFilter(), q, rows)
    assert result.kept == [7, 12] and result.removed == [9, 10, 11]
    # served_max_ids 1: of the two in the window only the newest (9) counts: 10 stays.
    result = await split(PreviouslyServedPostsFilter(), query(record, params={"served_max_ids": 1}), rows)
    assert result.kept == [7, 10, 11, 12] and result.removed == [9]
    # A 12-minute window: 7 (11 minutes ago) goes too.
    result = await split(PreviouslyServedPostsFilter(), query(record, params={"served_window_ms": 720_000}), rows)
    assert result.kept == [11, 12]


async def test_mutual_follow_reply_boost_scorer_component():
    q = query(_features(following=frozenset({7, 8}), mutual_follows=frozenset({7})))
    assert MutualFollowReplyBoostScorer().enable(q)
    assert not MutualFollowReplyBoostScorer().enable(query(_features(following=frozenset({7}))))  # none follows back
    liked = {"favorite": 0.5, "reply": 0.1}
    rows = [cand(1, 7, predictions=liked),                           # mutual, original: boosted
            cand(2, 8, predictions=liked),                           # followed, not following back
            cand(3, 7, predictions=liked, in_reply_to_post_id=1),    # a reply, not an original post
            cand(4, 7, predictions={"not_interested": 0.1, "reply": 0.2})]
    candidates = batch(*rows)
    candidates = candidates.with_columns(await WeightedScorer().score(q, candidates))
    out = await MutualFollowReplyBoostScorer().score(q, candidates)
    # 0.5 * 0.5 + 5 * 0.1 = 0.75 (+ offset 0.001 = 0.751 unboosted); boosted 0.75 + 15 * 0.1
    # = 2.25 -> 2.251. Row 4: -43.2 * 0.1 + 5 * 0.2 = -3.32, boosted + 15 * 0.2 = -0.32, still
    # negative: (-0.32 + 367.2) / (43.05 + 367.2) * 0.001 = 366.88 / 410.25 * 0.001.
    expected = [2.251, 0.751, 0.751, 366.88 / 410.25 * 0.001]
    assert out["weighted_score"].tolist() == pytest.approx(expected)
    assert out["score"].tolist() == pytest.approx(expected)


async def test_author_cold_start_scorer_component():
    scores, original, followers, impressions = _twenty()
    rows = [cand(i + 1, 100 + i, score=float(scores[i]), scored_at_ms=1, author_follower_count=int(followers[i]),
                 impression_count=int(impressions[i]), in_reply_to_post_id=0 if original[i] else 99)
            for i in range(20)]
    # A recency-ranked row (no predictions), highest score, 0 followers: takes no part.
    rows.append(cand(21, 200, score=100.0, scored_at_ms=0, author_follower_count=0))
    out = await AuthorColdStartScorer().score(query(), batch(*rows))
    # As in the pure test: target 5 (16th of the 20 scored); index 10 (score 10, 500
    # followers) has 1,000 impressions, not fewer: index 16 (score 4, 999) is lifted to 5.
    expected = [*scores.tolist(), 100.0]
    expected[16] = 5.0
    assert out["score"].tolist() == expected


async def test_dpp_filter_component_and_selection_size():
    vectors = [[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    plain = batch(*[cand(i + 1, score=s) for i, s in enumerate([0.1, 0.9, 0.8, 0.7])])
    q = query(params={"top_k": 2, "dpp_window": 3, "dpp_theta": 0.5})
    # As test_dpp_select_takes_the_window...: rows 1 and 3 (post ids 2 and 4), kept in input order.
    keep = await DppDiversityFilter().filter(q, with_vectors(plain, vectors))
    assert ids(plain.mask(keep)) == [2, 4]
    # No content vectors: the top 2 by score (post ids 2, 3).
    assert ids(plain.mask(await DppDiversityFilter().filter(q, plain))) == [2, 3]
    # The selector keeps the DPP's window (150) while the DPP runs, else top_k (50).
    assert selection_size(query()) == 150
    assert selection_size(query(params={"top_k": 200})) == 200
    assert selection_size(query(disabled_components=frozenset({"DppDiversityFilter"}))) == 50
