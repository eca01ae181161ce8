"""The evaluation's metrics on small cases computed by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from phoenix.evaluation.metrics import (calibration, lift_share, log_loss, ndcg_at_k, per_user_ndcg, pr_auc, rce,
                                        recall_at_k, roc_auc)


def test_roc_auc_counts_pairs_and_ties_half():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4), (0.8>0.1), (0.4=0.4 -> half), (0.4>0.1)
    assert roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.4, 0.1]) == pytest.approx(3.5 / 4)
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_roc_auc_and_log_loss_equal_scikit_learns_on_random_slices_with_ties():
    from sklearn.metrics import log_loss as sk_log_loss, roc_auc_score
    rng = np.random.default_rng(3)
    for size in (5, 200, 3000):
        labels = rng.random(size) < 0.3
        labels[:2] = [True, False]
        scores = np.round(rng.random(size), 2)  # many ties
        assert roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
        assert log_loss(labels, scores) == pytest.approx(
            sk_log_loss(labels, np.clip(scores, 1e-7, 1 - 1e-7), labels=[0, 1]), abs=1e-9)


def test_pr_auc_is_average_precision():
    # ranked: 0.9 (pos), 0.8 (neg), 0.7 (pos): precision at the positives 1 and 2/3
    assert pr_auc([1, 0, 1], [0.9, 0.8, 0.7]) == pytest.approx((1 + 2 / 3) / 2)
    assert math.isnan(pr_auc([0, 0], [0.1, 0.2]))


def test_rce_is_the_gain_over_the_base_rate_entropy():
    labels = np.array([1, 0, 0, 0])
    base = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert rce(labels, np.full(4, 0.25)) == pytest.approx(0.0, abs=1e-9)
    probs = np.array([0.9, 0.1, 0.2, 0.1])
    ce = -(math.log(0.9) + math.log(0.9) + math.log(0.8) + math.log(0.9)) / 4
    assert log_loss(labels, probs) == pytest.approx(ce)
    assert rce(labels, probs) == pytest.approx(100 * (base - ce) / base)
    assert rce(labels, np.array([0.1, 0.9, 0.9, 0.9])) < 0  # worse than the base rate


def test_calibration_is_predicted_over_observed():
    assert calibration([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(1.0)
    assert calibration([1, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(2.0)


def test_per_user_ndcg_averages_users_with_both_classes():
    users = np.array([1, 1, 1, 2, 2, 3, 3])
    labels = np.array([0, 1, 0, 1, 0, 1, 1])        # user 3 has positives only: skipped
    scores = np.array([0.9, 0.5, 0.1, 0.7, 0.2, 0.3, 0.4])
    user1 = (1 / math.log2(3)) / 1.0                 # the positive is ranked 2nd of 3
    user2 = 1.0                                      # the positive is first
    assert per_user_ndcg(users, labels, scores) == pytest.approx((user1 + user2) / 2)
    # a constant score earns no credit for order: positives go last among ties
    assert per_user_ndcg(np.array([1, 1]), np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(1 / math.log2(3))


def test_lift_share_and_top_k():
    assert lift_share(0.65, 0.8) == pytest.approx(0.5)
    assert math.isnan(lift_share(0.6, 0.5))
    ranks = np.array([0, 3, 12, 60])
    assert recall_at_k(ranks, 10) == 0.5 and recall_at_k(ranks, 50) == 0.75
    assert ndcg_at_k(ranks, 10) == pytest.approx((1 + 1 / math.log2(5)) / 4)
