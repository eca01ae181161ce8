"""Ranking metrics on numpy arrays: ROC-AUC, log-loss, recall@K and NDCG@K."""
from __future__ import annotations

import numpy as np

_EPS = 1e-7


def _average_ranks(scores: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (what the Mann-Whitney U statistic needs)."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], len(scores)]
    for lo, hi in zip(starts, ends):
        ranks[order[lo:hi]] = (lo + hi + 1) / 2.0
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half).
    NaN when only one class is present."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    labels = np.asarray(labels, np.float64).ravel()
    probs = np.clip(np.asarray(probs, np.float64).ravel(), _EPS, 1 - _EPS)
    if len(labels) == 0:
        return float("nan")
    return float(-np.mean(labels * np.log(probs) + (1 - labels) * np.log(1 - probs)))


def recall_at_k(ranks: np.ndarray, k: int) -> float:
    """Fraction of queries whose single relevant item has 0-based rank < k."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks < k)) if len(ranks) else float("nan")


def ndcg_at_k(ranks: np.ndarray, k: int) -> float:
    """NDCG@k with one relevant item per query: 1/log2(rank + 2) if it is in the top k."""
    ranks = np.asarray(ranks, np.float64)
    if not len(ranks):
        return float("nan")
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(np.mean(gains))
