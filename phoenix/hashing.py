"""Deterministic, seedable hashing of uint64 ids into embedding-table buckets.

Bucket 0 is reserved for padding: id 0 maps to all zeros, every real id to 1..num_buckets-1.
The mixer is splitmix64 (pure integer arithmetic), so the buckets are identical across
processes, machines and Python hash seeds.
"""
from __future__ import annotations

import numpy as np

from foryou.hash64 import GOLDEN_GAMMA

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_HASH_STRIDE = np.uint64(0xD6E8FEB86659FD93)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + GOLDEN_GAMMA
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    return x ^ (x >> np.uint64(31))


def hash_ids(ids: np.ndarray, num_hashes: int, num_buckets: int, seed: int) -> np.ndarray:
    """ids [...] (uint64-compatible) -> int32 [..., num_hashes] in 1..num_buckets-1; id 0 -> zeros."""
    if num_hashes < 1:
        raise ValueError(f"num_hashes must be >= 1, got {num_hashes}")
    if not 2 <= num_buckets <= 2**31 - 1:
        raise ValueError(f"num_buckets must be in 2..2**31-1, got {num_buckets}")
    ids = np.asarray(ids)
    if ids.dtype.kind == "i" and ids.size and ids.min() < 0:
        raise ValueError("ids must be non-negative")
    ids = ids.astype(np.uint64)
    with np.errstate(over="ignore"):
        # Each (seed, hash index) gets its own odd key; XOR before mixing makes the functions independent.
        keys = _splitmix64(np.uint64(seed) * _HASH_STRIDE + np.arange(num_hashes, dtype=np.uint64))
        mixed = _splitmix64(ids[..., None] ^ keys)
    buckets = (mixed % np.uint64(num_buckets - 1)).astype(np.int64) + 1
    buckets[ids == 0] = 0
    return buckets.astype(np.int32)
