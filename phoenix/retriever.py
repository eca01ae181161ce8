"""The two-tower retriever: a user tower (the ranker's transformer over [user][history], mean of
the valid outputs or the last one's (`user_pooling`), L2-normalised) and a candidate tower (post+author hash embeddings, a
two-layer SiLU MLP, L2-normalised). Similarity is the dot product.
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from phoenix.config import RetrieverConfig
from phoenix.embeddings import InputEmbeddings, lookup
from phoenix.features import UserBatch, make_user_batch
from phoenix.layers import input_dropout
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
        self.embeddings = InputEmbeddings.of(cfg)
        self.transformer = Transformer(cfg.model)
        lecun = nn.initializers.lecun_normal()
        self.tower_1 = self.param("candidate_tower_1", lecun, (candidate_input_size(cfg), cfg.candidate_hidden))
        self.tower_2 = self.param("candidate_tower_2", lecun, (cfg.candidate_hidden, d))
        if cfg.inputs.content_dim:
            # v2: the mean content of the history, projected, joins the user representation
            # directly, so a burst of engagements on one topic moves retrieval at once.
            self.user_content = self.param("user_content_projection", lecun, (cfg.inputs.content_dim, d))

    def user_embedding(self, users: UserBatch, dropout: float = 0.0) -> jax.Array:
        """[B, D] unit-norm user representations: the user after the whole history."""
        per_prefix = self.prefix_user_embeddings(users, dropout)  # [B, 1+S, D]
        last = jnp.sum(users.history_post_hashes[..., 0] != 0, axis=1)  # histories are left-aligned
        return jnp.take_along_axis(per_prefix, last[:, None, None], axis=1)[:, 0]

    def prefix_user_embeddings(self, users: UserBatch, dropout: float = 0.0) -> jax.Array:
        """[B, 1+S, D] unit-norm: position i is the user after the first i history items (0: the
        user slot alone). With causal attention position i depends on that prefix only, so one
        pass gives every prefix's representation, exactly as a request with that shorter history
        would get it (sequential training, phoenix/training/retriever.py). `dropout` > 0
        (training only; needs a "dropout" rng): that share of the transformer's input
        activations is zeroed, as SASRec regularises its item embeddings."""
        cfg = self.config
        x, valid = self.embeddings.prefix(users)
        if dropout > 0:
            x = input_dropout(x, dropout, self.make_rng("dropout"))
        mask = prefix_mask(valid, cfg.prefix_attention == "causal")
        out, _ = self.transformer(x.astype(self.dtype), prefix_positions(valid, cfg.position_ids), mask)
        out = out.astype(jnp.float32)
        if cfg.user_pooling == "mean":  # running mean of the valid outputs (v1: the mean of all)
            weights = valid.astype(jnp.float32)[..., None]
            rep = jnp.cumsum(out * weights, axis=1) / jnp.maximum(jnp.cumsum(weights, axis=1), 1.0)
        else:
            rep = out
        if cfg.inputs.content_dim and users.history_content is not None:
            # running mean of the history's content vectors (the user slot has none)
            w = valid[:, 1:].astype(jnp.float32)[..., None]
            c = users.history_content.astype(jnp.float32) * w
            zero = jnp.zeros_like(c[:, :1])
            total = jnp.cumsum(jnp.concatenate([zero, c], axis=1), axis=1)
            count = jnp.cumsum(jnp.concatenate([zero[..., :1], w], axis=1), axis=1)
            rep = rep + (total / jnp.maximum(count, 1.0)) @ self.user_content
        return l2_normalize(rep)

    def candidate_embedding(self, post_hashes: jax.Array, author_hashes: jax.Array,
                            sids: jax.Array | None = None, content: jax.Array | None = None) -> jax.Array:
        """[..., D] unit-norm candidate representations; padding hashes contribute zeros (reference).
        v2 (`candidate_post_ids` off) uses no post-id embedding: the post is its semantic ids and
        content (plus its author), so a post never seen in training lands next to its content."""
        emb, inputs = self.embeddings, self.config.inputs
        parts = []
        if inputs.candidate_post_ids:
            parts.append(lookup(emb.post_tables, post_hashes) * _hash_mask(post_hashes, emb.post_tables.shape[-1]))
        parts.append(lookup(emb.author_tables, author_hashes) * _hash_mask(author_hashes, emb.author_tables.shape[-1]))
        if inputs.sid_levels:
            parts.append(emb.sid_sum(sids if sids is not None else
                                     jnp.zeros((*author_hashes.shape[:-1], inputs.sid_levels), jnp.int32)))
        if inputs.content_dim:
            c = content if content is not None else jnp.zeros((*author_hashes.shape[:-1], inputs.content_dim))
            parts.append(jnp.dot(c.astype(self.dtype), emb.content_projection.astype(self.dtype)))
        x = jnp.concatenate([p.astype(self.dtype) for p in parts], axis=-1)
        hidden = jax.nn.silu(jnp.dot(x, self.tower_1.astype(self.dtype)))
        return l2_normalize(jnp.dot(hidden, self.tower_2.astype(self.dtype)))

    def __call__(self, users: UserBatch, post_hashes: jax.Array, author_hashes: jax.Array,
                 sids: jax.Array | None = None, content: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        return self.user_embedding(users), self.candidate_embedding(post_hashes, author_hashes, sids, content)


def candidate_input_size(cfg: RetrieverConfig) -> int:
    h, d, i = cfg.hash, cfg.model.emb_size, cfg.inputs
    size = (h.num_item_hashes * i.candidate_post_ids + h.num_author_hashes) * d
    return size + d * bool(i.sid_levels) + d * bool(i.content_dim)


def _hash_mask(hashes: jax.Array, emb_size: int) -> jax.Array:
    """[..., H*D] 1/0 mask zeroing the embedding of each hash-0 (padding) lookup."""
    return jnp.repeat((hashes != 0).astype(jnp.float32), emb_size, axis=-1)


def _example_users(config: RetrieverConfig) -> UserBatch:
    return make_user_batch(config, [0], [[]])


@functools.lru_cache(maxsize=8)
def _compiled_init(config: RetrieverConfig):
    return jax.jit(PhoenixRetriever(config).init)


def retriever_init_params(config: RetrieverConfig, seed: int = 0) -> Params:
    """Random parameters for training from scratch: {"params": {...}} (float32)."""
    h = config.hash
    return _compiled_init(config)(
        jax.random.PRNGKey(seed), _example_users(config),
        np.zeros((1, h.num_item_hashes), np.int32), np.zeros((1, h.num_author_hashes), np.int32))


def _array(applied: Any) -> jax.Array:
    """What `apply` returns without `mutable` (flax types it as maybe a (value, state) pair)."""
    return applied


def _user_tower(params: Params, config: RetrieverConfig, users: UserBatch, method, dropout: float,
                rng: jax.Array | None) -> jax.Array:
    """One user-tower method applied; with `dropout` > 0 and `rng`, the training pass."""
    if dropout > 0 and rng is not None:
        return _array(PhoenixRetriever(config).apply(params, users, dropout, rngs={"dropout": rng}, method=method))
    return _array(PhoenixRetriever(config).apply(params, users, method=method))


def retriever_user_embeddings(params: Params, config: RetrieverConfig, users: UserBatch,
                              dropout: float = 0.0, rng: jax.Array | None = None) -> jax.Array:
    """The user embeddings; with `dropout` > 0 and `rng`, the training pass."""
    return _user_tower(params, config, users, PhoenixRetriever.user_embedding, dropout, rng)


def retriever_prefix_user_embeddings(params: Params, config: RetrieverConfig, users: UserBatch,
                                     dropout: float = 0.0, rng: jax.Array | None = None) -> jax.Array:
    """Every prefix's user embedding; with `dropout` > 0 and `rng`, the training pass."""
    return _user_tower(params, config, users, PhoenixRetriever.prefix_user_embeddings, dropout, rng)


def retriever_candidate_embeddings(params: Params, config: RetrieverConfig, post_hashes: jax.Array,
                                   author_hashes: jax.Array, sids: jax.Array | None = None,
                                   content: jax.Array | None = None) -> jax.Array:
    return _array(PhoenixRetriever(config).apply(params, post_hashes, author_hashes, sids, content,
                                                 method=PhoenixRetriever.candidate_embedding))
