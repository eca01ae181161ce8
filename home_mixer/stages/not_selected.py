"""The selector's cut at the result size: the posts past it are not shown, and side effects
get them as "not selected" (what the viewer could have seen next, e.g. for logging or for
a later page), apart from the selected ones."""
from __future__ import annotations

import numpy as np


def split_at(order: np.ndarray, result_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(selected, not selected): the first `result_size` entries of `order`, and the rest."""
    order = np.asarray(order)
    size = max(0, result_size)
    return order[:size], order[size:]
