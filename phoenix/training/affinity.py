"""The maximum-likelihood fit behind the retriever's re-rank (phoenix/rerank.py): a softmax
over each validation query's allowed posts of `scale * similarity + theta . x(cell)`, where a
post's cell is its age bucket and its author-affinity level (the user's engagements with its
author, capped at MAX_LEVEL) and x(cell) the features of the terms fitted: one indicator per
age bucket (the freshness biases) and, for the joint fit, log1p(level) (the affinity weight).

The log-likelihood is concave in theta and depends on the corpus only through each query's
per-cell sums of exp(scale * similarity) (phoenix/training/freshness.py builds them), so a few
Newton steps on a [queries, cells] table fit it."""
from __future__ import annotations

import numpy as np

MAX_LEVEL = 32  # engagement counts above it share its cell (the fit reads log1p(MAX_LEVEL) for them)
LEVELS = MAX_LEVEL + 1


def levels(counts: np.ndarray) -> np.ndarray:
    return np.minimum(np.asarray(counts), MAX_LEVEL).astype(np.int64)


def cell_features(buckets: int, affinity: bool) -> np.ndarray:
    """[buckets * LEVELS, features]: cell = bucket * LEVELS + level; one indicator per bucket,
    then (with `affinity`) log1p(level)."""
    bucket = np.repeat(np.arange(buckets), LEVELS)
    x = np.eye(buckets)[bucket]
    if affinity:
        x = np.concatenate([x, np.log1p(np.tile(np.arange(LEVELS), buckets))[:, None]], axis=1)
    return x


def _objective(theta: np.ndarray, log_z: np.ndarray, x: np.ndarray, x_target_mean: np.ndarray, l2: float
               ) -> tuple[float, np.ndarray, np.ndarray]:
    """(mean log-likelihood - ridge, gradient, softmax over cells [Q, C]) at `theta`."""
    a = log_z + (x @ theta)[None, :]
    peak = np.max(a, axis=1, keepdims=True)
    lse = np.log(np.sum(np.exp(a - peak), axis=1)) + peak[:, 0]
    p = np.exp(a - lse[:, None])
    value = float(x_target_mean @ theta - np.mean(lse) - 0.5 * l2 * theta @ theta)
    return value, x_target_mean - p.mean(axis=0) @ x - l2 * theta, p


def fit_cell_logit(log_z: np.ndarray, target_cell: np.ndarray, x: np.ndarray, l2: float,
                   iterations: int = 50) -> np.ndarray:
    """[F] theta maximising the mean over queries of log softmax (log_z[q] + x @ theta)[target]
    minus a ridge (Newton's method with step halving; concave, so the optimum is unique). A
    cell no query can rank a post in has no likelihood term; a feature only such cells have
    stays at 0 (the ridge)."""
    q, f = log_z.shape[0], x.shape[1]
    theta = np.zeros(f)
    if q == 0:
        return theta
    log_z = np.where(np.isfinite(log_z), log_z, -1e30)
    x_target_mean = x[target_cell].mean(axis=0)
    value, grad, p = _objective(theta, log_z, x, x_target_mean, l2)
    for _ in range(iterations):
        mean_x = p @ x                                  # [Q, F] each query's expected features
        hessian = mean_x.T @ mean_x / q - (x * p.mean(axis=0)[:, None]).T @ x - l2 * np.eye(f)
        step = np.linalg.solve(hessian, -grad)
        for _halving in range(30):
            new_value, new_grad, new_p = _objective(theta + step, log_z, x, x_target_mean, l2)
            if new_value >= value:
                break
            step = step / 2
        else:
            break
        theta, improved = theta + step, new_value - value
        value, grad, p = new_value, new_grad, new_p
        if improved < 1e-10:
            break
    return theta
