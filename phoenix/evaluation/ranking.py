"""Held-out evaluation of ranker predictions: per-action ROC-AUC and log-loss."""
from __future__ import annotations

import numpy as np

from phoenix.actions import BINARY_ACTION_NAMES
from phoenix.evaluation.metrics import log_loss, roc_auc


def per_action_metrics(labels: np.ndarray, scores: np.ndarray, probs: np.ndarray) -> dict[str, dict[str, float]]:
    """action name -> {"auc", "log_loss", "positives"}; AUC is NaN for actions with one class."""
    out = {}
    for a, name in enumerate(BINARY_ACTION_NAMES):
        out[name] = {
            "auc": roc_auc(labels[:, a], scores[:, a]),
            "log_loss": log_loss(labels[:, a], probs[:, a]),
            "positives": int(labels[:, a].sum()),
        }
    return out
