"""Ranking metrics on numpy arrays. PR-AUC is scikit-learn's average precision; ROC-AUC (the
Mann-Whitney rank form) and binary log-loss are computed here directly, as scikit-learn's
per-call input validation cost more than the metric itself over the evaluation's hundreds
of slices (tests/evaluation/test_metrics.py checks both against scikit-learn). Slices with
one class give NaN instead of raising; RCE, calibration and the top-K metrics are defined here."""
from __future__ import annotations

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score

_EPS = 1e-7


def _binary(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(labels).astype(bool).ravel(), np.asarray(scores, np.float64).ravel()


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half).
    NaN when only one class is present."""
    y, s = _binary(labels, scores)
    if y.all() or not y.any():
        return float("nan")
    positives, negatives = int(y.sum()), int((~y).sum())
    rank_sum = float(rankdata(s)[y].sum())  # average ranks: a tie counts half
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (the area under the precision-recall curve). NaN without positives."""
    y, s = _binary(labels, scores)
    if not y.any() or not len(y):
        return float("nan")
    return float(average_precision_score(y, s))


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    labels = np.asarray(labels, np.float64).ravel()
    probs = np.clip(np.asarray(probs, np.float64).ravel(), _EPS, 1 - _EPS)
    if len(labels) == 0:
        return float("nan")
    return float(-np.mean(labels * np.log(probs) + (1 - labels) * np.log1p(-probs)))


def entropy(rate: float) -> float:
    """Cross-entropy of always predicting `rate` on labels whose positive rate is `rate`."""
    p = min(max(rate, _EPS), 1 - _EPS)
    return float(-(p * np.log(p) + (1 - p) * np.log(1 - p)))


def rce(labels: np.ndarray, probs: np.ndarray) -> float:
    """Relative cross-entropy gain over the slice's own base rate, in percent:
    100 * (H(base) - CE) / H(base). 0 = no better than the base rate; NaN with one class."""
    labels = np.asarray(labels, np.float64).ravel()
    if not len(labels) or labels.min() == labels.max():
        return float("nan")
    base = entropy(float(labels.mean()))
    return float(100.0 * (base - log_loss(labels, probs)) / base)


def calibration(labels: np.ndarray, probs: np.ndarray) -> float:
    """Sum of predicted probabilities / number of positives (1 = calibrated on average)."""
    positives = float(np.asarray(labels, np.float64).sum())
    return float(np.asarray(probs, np.float64).sum() / positives) if positives else float("nan")


def per_user_ndcg(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean over users with at least one positive and one negative of the NDCG of their own
    candidates ranked by score (binary gains, whole list; ties broken against the model:
    positives last among equal scores, so a constant score earns no credit)."""
    users = np.asarray(users).ravel()
    y = np.asarray(labels, np.float64).ravel()
    s = np.asarray(scores, np.float64).ravel()
    values = []
    order = np.argsort(users, kind="stable")
    bounds = np.flatnonzero(np.r_[True, users[order][1:] != users[order][:-1], True])
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        idx = order[lo:hi]
        gains = y[idx]
        if gains.min() == gains.max():
            continue
        ranked = gains[np.lexsort((gains, -s[idx]))]  # by score desc, then positives last
        discounts = 1.0 / np.log2(np.arange(2, len(idx) + 2))
        ideal = np.sort(gains)[::-1]
        values.append(float((ranked * discounts).sum() / (ideal * discounts).sum()))
    return float(np.mean(values)) if values else float("nan")


def lift_share(auc_model: float, auc_oracle: float) -> float:
    """(AUC_model - 0.5) / (AUC_oracle - 0.5): the share of the achievable lift over chance."""
    if not np.isfinite(auc_model) or not np.isfinite(auc_oracle) or auc_oracle <= 0.5:
        return float("nan")
    return float((auc_model - 0.5) / (auc_oracle - 0.5))


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Fraction of queries whose single relevant item has 0-based rank < k (= HR@k)."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks < k)) if len(ranks) else float("nan")


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """NDCG@k with one relevant item per query: 1/log2(rank + 2) if it is in the top k."""
    ranks = np.asarray(ranks, np.float64)
    if not len(ranks):
        return float("nan")
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(np.mean(gains))
