"""PreviouslyServedPosts on every request: the ids served to the viewer recently (the last
`window_ms`, at most `max_ids` of them, newest first) are not served again. The v1 behaviour
(bottom requests only, the whole served record) stays available as a parameter."""
from __future__ import annotations

import numpy as np


def applies(is_bottom_request: bool, bottom_only: bool) -> bool:
    """Whether the filter runs for a request: always, or (v1) only when paging down."""
    return is_bottom_request or not bottom_only


def recent_served_ids(served_newest_first: np.ndarray, served_at_ms: np.ndarray | None, now_ms: int,
                      window_ms: int, max_ids: int) -> np.ndarray:
    """The newest `max_ids` ids served within `window_ms` before `now_ms`.

    served_newest_first: int64 [m]; served_at_ms: int64 [m] (same order) or None when the
    record carries no times, in which case only the count limit applies."""
    ids = np.asarray(served_newest_first, np.int64)
    if served_at_ms is not None:
        ids = ids[np.asarray(served_at_ms, np.int64) >= now_ms - window_ms]
    return ids[:max_ids]

