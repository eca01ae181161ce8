"""MutualFollowReplyBoost: a reply from the viewer to an account that follows them back is
likely a conversation, so the reply weight of original posts by mutual follows is raised
(+15 by default) before the weighted score's offset is applied."""
from __future__ import annotations

import numpy as np


def mutual_follow_mask(author_ids: np.ndarray, is_original: np.ndarray, following: np.ndarray,
                       followers: np.ndarray) -> np.ndarray:
    """bool [n]: original posts (not a reply, not a repost) whose author the viewer follows
    and who follows the viewer. author_ids int64 [n]; following / followers: id arrays."""
    authors = np.asarray(author_ids, np.int64)
    mutual = np.intersect1d(np.asarray(following, np.int64), np.asarray(followers, np.int64))
    return np.asarray(is_original, bool) & np.isin(authors, mutual)


def boosted_combined(combined: np.ndarray, reply_probability: np.ndarray, mask: np.ndarray,
                     boost: float) -> np.ndarray:
    """The weighted sum (before the offset) with the reply weight raised by `boost` where
    `mask` is set: combined + boost * p(reply)."""
    combined = np.asarray(combined, np.float64)
    return combined + np.where(np.asarray(mask, bool), boost * np.asarray(reply_probability, np.float64), 0.0)
