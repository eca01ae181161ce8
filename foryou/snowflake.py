"""Twitter-style snowflake ids: creation time (ms since the Twitter epoch) << 22 | low bits."""
from __future__ import annotations

import time
from typing import overload

import numpy as np

TWITTER_EPOCH_MS = 1288834974657
_TIME_SHIFT = 22
_LOW_MASK = (1 << _TIME_SHIFT) - 1


def now_ms() -> int:
    return int(time.time() * 1000)


def make_id(created_at_ms: int, low_bits: int = 0) -> int:
    """A snowflake id for a post created at `created_at_ms` (Unix ms). `low_bits` (worker and
    sequence in the original) makes ids created in the same millisecond distinct."""
    if created_at_ms < TWITTER_EPOCH_MS:
        raise ValueError(f"created_at_ms {created_at_ms} is before the Twitter epoch")
    return ((created_at_ms - TWITTER_EPOCH_MS) << _TIME_SHIFT) | (low_bits & _LOW_MASK)


@overload
def created_at_ms(snowflake_id: int) -> int: ...
@overload
def created_at_ms(snowflake_id: np.ndarray) -> np.ndarray: ...
def created_at_ms(snowflake_id):
    """Unix ms at which the id was minted."""
    return (snowflake_id >> _TIME_SHIFT) + TWITTER_EPOCH_MS


def created_at_ms_array(snowflake_ids) -> np.ndarray:
    """`created_at_ms` of many ids at once (int64 array)."""
    ids = np.asarray(snowflake_ids, np.uint64)
    return (ids >> np.uint64(_TIME_SHIFT)).astype(np.int64) + TWITTER_EPOCH_MS


def make_ids(created_at_ms, low_bits=0) -> np.ndarray:
    """`make_id` of many creation times (and low bits) at once (uint64 array)."""
    created = np.asarray(created_at_ms, np.int64)
    if created.size and int(created.min()) < TWITTER_EPOCH_MS:
        raise ValueError("created_at_ms is before the Twitter epoch")
    low = np.asarray(low_bits, np.uint64) & np.uint64(_LOW_MASK)
    return ((created - TWITTER_EPOCH_MS).astype(np.uint64) << np.uint64(_TIME_SHIFT)) | low


def age_ms(snowflake_id: int, at_ms: int | None = None) -> int:
    return (now_ms() if at_ms is None else at_ms) - created_at_ms(snowflake_id)
