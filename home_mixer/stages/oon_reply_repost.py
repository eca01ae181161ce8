"""OutOfNetworkReplyRepost: a reply or a repost is shown only when the viewer follows its
author (a stranger's reply or repost is out of context in the feed), and a reply only when
its ancestors are known (the feed shows a reply with the post it answers)."""
from __future__ import annotations

import numpy as np


def oon_reply_repost_keep(is_reply: np.ndarray, is_repost: np.ndarray, author_followed: np.ndarray,
                          ancestors_known: np.ndarray) -> np.ndarray:
    """Keep mask, one entry per candidate. All arguments bool [n]; `ancestors_known` matters
    for replies only (false: the post it answers is not known)."""
    is_reply = np.asarray(is_reply, bool)
    is_repost = np.asarray(is_repost, bool)
    stranger = (is_reply | is_repost) & ~np.asarray(author_followed, bool)
    orphan = is_reply & ~np.asarray(ancestors_known, bool)
    return ~(stranger | orphan)
