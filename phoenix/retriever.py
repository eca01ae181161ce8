"""The two-tower retriever: a user tower (the ranker's transformer over [user][history], mean of
the valid outputs, L2-normalised) and a candidate tower (post+author hash embeddings, a
two-layer SiLU MLP, L2-normalised). Similarity is the dot product.
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.config import RetrieverConfig
from phoenix.embeddings import InputEmbeddings, lookup
from phoenix.features import UserBatch
from phoenix.transformer import Transformer, prefix_mask, prefix_positions

Params = Any
NORM_EPS = 1e-12  # squared-norm floor, as the reference


def l2_normalize(x: jax.Array) -> jax.Array:
    x = x.astype(jnp.float32)
    return x / jnp.sqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), NORM_EPS))


class PhoenixRetriever(nn.Module):
    config: RetrieverConfig

    def setup(self) -> None:
        cfg, d = self.config, self.config.model.emb_size
        self.dtype = jnp.dtype(cfg.model.dtype)
        h = cfg.hash
        self.embeddings = InputEmbeddings(h, d, cfg.num_actions, cfg.product_surface_vocab_size, self.dtype)
        self.transformer = Transformer(cfg.model)
        lecun = nn.initializers.lecun_normal()
        self.tower_1 = self.param("candidate_tower_1", lecun,
                                  ((h.num_item_hashes + h.num_author_hashes) * d, cfg.candidate_hidden))
        self.tower_2 = self.param("candidate_tower_2", lecun, (cfg.candidate_hidden, d))

    def user_embedding(self, users: UserBatch) -> jax.Array:
        """[B, D] unit-norm user representations."""
        cfg = self.config
        x, valid = self.embeddings.prefix(users.user_hashes, users.history_post_hashes,
                                          users.history_author_hashes, users.history_actions,
                                          users.history_surface)
        mask = prefix_mask(valid, cfg.prefix_attention == "causal")
        out, _ = self.transformer(x.astype(self.dtype), prefix_positions(valid, cfg.position_ids), mask)
        weights = valid.astype(jnp.float32)[..., None]
        mean = jnp.sum(out.astype(jnp.float32) * weights, axis=1) / jnp.maximum(jnp.sum(weights, axis=1), 1.0)
        return l2_normalize(mean)

    def candidate_embedding(self, post_hashes: jax.Array, author_hashes: jax.Array) -> jax.Array:
        """[..., D] unit-norm candidate representations; padding hashes contribute zeros (reference)."""
        emb = self.embeddings
        post = lookup(emb.post_tables, post_hashes) * _hash_mask(post_hashes, emb.post_tables.shape[-1])
        author = lookup(emb.author_tables, author_hashes) * _hash_mask(author_hashes, emb.author_tables.shape[-1])
        x = jnp.concatenate([post, author], axis=-1).astype(self.dtype)
        hidden = jax.nn.silu(jnp.dot(x, self.tower_1.astype(self.dtype)))
        return l2_normalize(jnp.dot(hidden, self.tower_2.astype(self.dtype)))

    def __call__(self, users: UserBatch, post_hashes: jax.Array, author_hashes: jax.Array) -> tuple[jax.Array, jax.Array]:
        return self.user_embedding(users), self.candidate_embedding(post_hashes, author_hashes)


def _hash_mask(hashes: jax.Array, emb_size: int) -> jax.Array:
    """[..., H*D] 1/0 mask zeroing the embedding of each hash-0 (padding) lookup."""
    return jnp.repeat((hashes != 0).astype(jnp.float32), emb_size, axis=-1)


def _example_users(config: RetrieverConfig) -> UserBatch:
    h, s = config.hash, config.history_len
    return UserBatch(
        user_hashes=np.zeros((1, h.num_user_hashes), np.int32),
        history_post_hashes=np.zeros((1, s, h.num_item_hashes), np.int32),
        history_author_hashes=np.zeros((1, s, h.num_author_hashes), np.int32),
        history_actions=np.zeros((1, s, NUM_BINARY_ACTIONS), np.float32),
        history_surface=np.zeros((1, s), np.int32),
    )


@functools.lru_cache(maxsize=8)
def _compiled_init(config: RetrieverConfig):
    return jax.jit(PhoenixRetriever(config).init)


def retriever_init_params(config: RetrieverConfig, seed: int = 0) -> Params:
    """Random parameters for training from scratch: {"params": {...}} (float32)."""
    h = config.hash
    return _compiled_init(config)(
        jax.random.PRNGKey(seed), _example_users(config),
        np.zeros((1, h.num_item_hashes), np.int32), np.zeros((1, h.num_author_hashes), np.int32))


def retriever_user_embeddings(params: Params, config: RetrieverConfig, users: UserBatch) -> jax.Array:
    return PhoenixRetriever(config).apply(params, users, method=PhoenixRetriever.user_embedding)


def retriever_candidate_embeddings(params: Params, config: RetrieverConfig, post_hashes: jax.Array,
                                   author_hashes: jax.Array) -> jax.Array:
    return PhoenixRetriever(config).apply(params, post_hashes, author_hashes,
                                          method=PhoenixRetriever.candidate_embedding)
