"""Shared helpers for the phoenix model tests: compiled functions and parameters cached per
config (one compile per shape for the whole session) and random requests."""
from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from phoenix.config import RankerConfig
from phoenix.features import CandidateItem, HistoryItem
from phoenix.ranker import (ranker_candidate_tables, ranker_init_params, ranker_logits, ranker_logits_prefix_path,
                            ranker_prefix)


@functools.lru_cache(maxsize=None)
def compiled(config: RankerConfig):
    """(full pass, prefix path as served (folded candidate tables), prefix cache) jitted for one
    config; shared across tests."""
    full = jax.jit(lambda p, b: ranker_logits(p, config, b))
    fast = jax.jit(lambda p, b: ranker_logits_prefix_path(p, config, b, ranker_candidate_tables(p, config)))
    prefix = jax.jit(lambda p, users: ranker_prefix(p, config, users))
    return full, fast, prefix


def params_for(config: RankerConfig, seed: int = 0):
    """Parameters depend only on sizes: configs that differ in attention or positions share them."""
    return _params(dataclasses.replace(config, prefix_attention="causal", candidate_positions="shared",
                                       position_ids="valid"), seed)


@functools.lru_cache(maxsize=None)
def _params(config: RankerConfig, seed: int):
    return ranker_init_params(config, seed)


def random_history(rng: np.random.Generator, n: int) -> list[HistoryItem]:
    return [HistoryItem(int(rng.integers(1, 2**62)), int(rng.integers(1, 10**9)),
                        tuple(int(a) for a in rng.choice(18, size=int(rng.integers(0, 4)), replace=False)),
                        int(rng.integers(0, 16)))
            for _ in range(n)]


def random_candidates(rng: np.random.Generator, n: int) -> list[CandidateItem]:
    return [CandidateItem(int(rng.integers(1, 2**62)), int(rng.integers(1, 10**9)), int(rng.integers(0, 16)))
            for _ in range(n)]
