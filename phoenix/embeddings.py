"""Hash-embedding tables and the input projections shared by the ranker and the retriever.

Tables are model parameters, one per entity kind and hash function (stored stacked as
[num_hashes, buckets, D]), or one per entity kind shared by its hash functions ([1, buckets, D]). An id's `n` looked-up vectors are concatenated in hash order and
projected to D, as the reference's block_*_reduce functions do.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.config import HashConfig


def lookup(table: jax.Array, hashes: jax.Array) -> jax.Array:
    """table [H, V, D] (or [1, V, D], shared by all hash functions), hashes [..., H] ->
    concatenated embeddings [..., H*D]."""
    num_hashes, d = hashes.shape[-1], table.shape[-1]
    which = jnp.arange(num_hashes) if table.shape[0] > 1 else jnp.zeros(num_hashes, jnp.int32)
    rows = table[which, hashes]  # [..., H, D]
    return rows.reshape(*hashes.shape[:-1], num_hashes * d)


def tables_shape(num_hashes: int, vocab_size: int, emb_size: int, shared: bool) -> tuple[int, int, int]:
    return (1 if shared else num_hashes, vocab_size, emb_size)


class InputEmbeddings(nn.Module):
    hash: HashConfig
    emb_size: int
    num_actions: int
    product_surface_vocab_size: int
    dtype: Any = jnp.float32

    def setup(self) -> None:
        h, d = self.hash, self.emb_size
        table_init = nn.initializers.normal(stddev=1.0)
        shared = h.shared_tables
        self.user_tables = self.param("user_tables", table_init,
                                      tables_shape(h.num_user_hashes, h.user_vocab_size, d, shared))
        self.post_tables = self.param("post_tables", table_init,
                                      tables_shape(h.num_item_hashes, h.item_vocab_size, d, shared))
        self.author_tables = self.param("author_tables", table_init,
                                        tables_shape(h.num_author_hashes, h.author_vocab_size, d, shared))
        self.action_projection = self.param("action_projection", nn.initializers.lecun_normal(),
                                            (self.num_actions, d))
        self.surface_table = self.param("product_surface_embedding_table", table_init,
                                        (self.product_surface_vocab_size, d))
        lecun = nn.initializers.lecun_normal()
        self.proj_user = self.param("proj_user", lecun, (h.num_user_hashes * d, d))
        self.proj_history = self.param(
            "proj_history", lecun, ((h.num_item_hashes + h.num_author_hashes + 2) * d, d))

    def _project(self, x: jax.Array, w: jax.Array) -> jax.Array:
        return jnp.dot(x.astype(self.dtype), w.astype(self.dtype))

    def surface(self, surface: jax.Array) -> jax.Array:
        return jnp.take(self.surface_table, surface, axis=0)

    def actions(self, actions: jax.Array) -> jax.Array:
        """Multi-hot [..., 18] -> signed (2a - 1) projection [..., D]; zeros for a slot with no action.
        The dwell-time row of the projection sees a constant 0 (-1 signed), as in the reference."""
        pad = self.num_actions - NUM_BINARY_ACTIONS
        a = jnp.concatenate([actions, jnp.zeros((*actions.shape[:-1], pad), actions.dtype)], axis=-1)
        emb = jnp.dot((2.0 * a - 1.0).astype(jnp.float32), self.action_projection)
        return emb * jnp.any(actions != 0, axis=-1, keepdims=True)

    def post_author(self, post_hashes: jax.Array, author_hashes: jax.Array) -> jax.Array:
        """Raw concatenation [..., (Hi + Ha) * D] of a post's and its author's hash embeddings."""
        return jnp.concatenate([lookup(self.post_tables, post_hashes),
                                lookup(self.author_tables, author_hashes)], axis=-1)

    def prefix(self, user_hashes: jax.Array, history_post_hashes: jax.Array, history_author_hashes: jax.Array,
               history_actions: jax.Array, history_surface: jax.Array) -> tuple[jax.Array, jax.Array]:
        """[user][history] embeddings [B, 1+S, D] and validity [B, 1+S] (the user slot is always valid)."""
        user = self._project(lookup(self.user_tables, user_hashes), self.proj_user)[:, None, :]
        history_raw = jnp.concatenate([
            self.post_author(history_post_hashes, history_author_hashes),
            self.actions(history_actions),
            self.surface(history_surface),
        ], axis=-1)
        history = self._project(history_raw, self.proj_history)
        valid = jnp.concatenate([jnp.ones((user_hashes.shape[0], 1), bool),
                                 history_post_hashes[..., 0] != 0], axis=1)
        return jnp.concatenate([user, history], axis=1), valid
