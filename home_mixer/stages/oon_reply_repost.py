"""OutOfNetworkReplyRepost: a reply or a repost is shown only when the viewer follows its
author (a stranger's reply or repost is out of context in the feed), and a reply only when
its ancestors are known (the feed shows a reply with the post it answers)."""
from __future__ import annotations

import numpy as np


def oon_reply_repost_keep(is_reply: np.ndarray, is_repost: np.ndarray, author_followed: np.ndarray,
                          ancestor_counts: np.ndarray) -> np.ndarray:
    """Keep mask, one entry per candidate.

    is_reply / is_repost / author_followed: bool [n]; ancestor_counts: int [n], the number of
    known ancestors of each candidate (0 for a reply means its context is unknown)."""
    is_reply = np.asarray(is_reply, bool)
    is_repost = np.asarray(is_repost, bool)
    stranger = (is_reply | is_repost) & ~np.asarray(author_followed, bool)
    orphan = is_reply & (np.asarray(ancestor_counts) <= 0)
    return ~(stranger | orphan)
