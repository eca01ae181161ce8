"""Hash-embedding tables and the input projections shared by the ranker and the retriever.

Tables are model parameters, one per entity kind and hash function (stored stacked as
[num_hashes, buckets, D]), or one per entity kind shared by its hash functions ([1, buckets, D]). An id's `n` looked-up vectors are concatenated in hash order and
projected to D, as the reference's block_*_reduce functions do.
"""
from __future__ import annotations

from typing import Any

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp

from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.config import HashConfig, InputsConfig, RankerConfig, RetrieverConfig
from phoenix.post_kind import OFFSETS as KIND_OFFSETS, ROWS as KIND_ROWS

HOUR_ROWS = 25  # 24 hours + "unknown"
NUM_NEGATIVE_ACTIONS = 4  # not_interested, block_author, mute_author, report: the last binary actions


def lookup(table: jax.Array, hashes: jax.Array) -> jax.Array:
    """table [H, V, D] (or [1, V, D], shared by all hash functions), hashes [..., H] ->
    concatenated embeddings [..., H*D]."""
    num_hashes, d = hashes.shape[-1], table.shape[-1]
    which = jnp.arange(num_hashes) if table.shape[0] > 1 else jnp.zeros(num_hashes, jnp.int32)
    rows = table[which, hashes]  # [..., H, D]
    return rows.reshape(*hashes.shape[:-1], num_hashes * d)


def tables_shape(num_hashes: int, vocab_size: int, emb_size: int, shared: bool) -> tuple[int, int, int]:
    return (1 if shared else num_hashes, vocab_size, emb_size)


def sum_kind_rows(table: jax.Array, kind: jax.Array) -> jax.Array:
    """[..., 3] photo / video / kind codes -> the sum of their rows of a table stacked as
    phoenix/post_kind.py ROWS / OFFSETS lay it out: [..., table's row width]."""
    return jnp.sum(jnp.take(table, kind + jnp.asarray(KIND_OFFSETS, jnp.int32), axis=0), axis=-2)


class InputEmbeddings(nn.Module):
    hash: HashConfig
    emb_size: int
    num_actions: int
    product_surface_vocab_size: int
    dtype: Any = jnp.float32
    inputs: InputsConfig = InputsConfig()

    @classmethod
    def of(cls, config: RankerConfig | RetrieverConfig) -> "InputEmbeddings":
        """A model's input embeddings, as its config sizes them (in the model's setup). The
        post-kind input is the ranker's only: a retriever never has its table."""
        inputs = config.inputs if isinstance(config, RankerConfig) else dataclasses.replace(config.inputs, post_kind=False)
        return cls(config.hash, config.model.emb_size, config.num_actions, config.product_surface_vocab_size,
                   jnp.dtype(config.model.dtype), inputs)

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
        # v2 inputs: each adds a D-vector to the projected post positions (history and candidates
        # share them, so a candidate and a history post with the same content match alike).
        i = self.inputs
        small = nn.initializers.normal(stddev=0.02)
        if i.sid_levels:
            self.sid_tables = self.param("sid_tables", small, (i.sid_levels, i.sid_codes, d))
        if i.content_dim:
            self.content_projection = self.param("content_projection", lecun, (i.content_dim, d))
        if i.age_buckets:
            self.age_table = self.param("age_table", small, (i.age_rows, d))
        if i.hour_of_day:
            self.hour_table = self.param("hour_table", small, (HOUR_ROWS, d))
        if i.content_affinity_buckets:
            self.affinity_table = self.param("content_affinity_table", small, (i.content_affinity_buckets + 1, d))
        if i.post_kind:  # photo, video and kind rows stacked (phoenix/post_kind.py ROWS)
            self.kind_table = self.param("post_kind_table", small, (sum(KIND_ROWS), d))

    def _project(self, x: jax.Array, w: jax.Array) -> jax.Array:
        return jnp.dot(x.astype(self.dtype), w.astype(self.dtype))

    def surface(self, surface: jax.Array) -> jax.Array:
        return jnp.take(self.surface_table, surface, axis=0)

    def actions(self, actions: jax.Array) -> jax.Array:
        """Multi-hot [..., 18] -> signed (2a - 1) projection [..., D]; zeros for a slot with no action.
        With 18 columns the dwell-time row of the projection sees a constant 0 (-1 signed); with all
        num_actions columns (history_dwell) the last one is the scaled dwell, as in the reference."""
        pad = self.num_actions - actions.shape[-1]
        a = jnp.concatenate([actions, jnp.zeros((*actions.shape[:-1], pad), actions.dtype)], axis=-1)
        emb = jnp.dot((2.0 * a - 1.0).astype(jnp.float32), self.action_projection)
        return emb * jnp.any(actions != 0, axis=-1, keepdims=True)

    def post_author(self, post_hashes: jax.Array, author_hashes: jax.Array) -> jax.Array:
        """Raw concatenation [..., (Hi + Ha) * D] of a post's and its author's hash embeddings."""
        return jnp.concatenate([lookup(self.post_tables, post_hashes),
                                lookup(self.author_tables, author_hashes)], axis=-1)

    def sid_sum(self, sids: jax.Array) -> jax.Array:
        """[..., L] codes -> [..., D]: one table per level, summed; code 0 (missing) adds nothing."""
        rows = self.sid_tables[jnp.arange(sids.shape[-1]), sids]  # [..., L, D]
        return jnp.sum(rows * (sids != 0)[..., None], axis=-2)

    def kind_sum(self, kind: jax.Array) -> jax.Array:
        """[..., 3] photo / video / kind codes -> [..., D]: the sum of their three rows."""
        return sum_kind_rows(self.kind_table, kind)

    def post_context(self, sids: jax.Array | None, content: jax.Array | None,
                     age: jax.Array | None, kind: jax.Array | None = None) -> jax.Array | float:
        """The v2 additions of a post position [..., D] (0.0 for a v1 model)."""
        out: jax.Array | float = 0.0
        if self.inputs.post_kind and kind is not None:
            out = out + self.kind_sum(kind)
        if self.inputs.sid_levels and sids is not None:
            out = out + self.sid_sum(sids)
        if self.inputs.content_dim and content is not None:
            out = out + jnp.dot(content.astype(self.dtype), self.content_projection.astype(self.dtype))
        if self.inputs.age_buckets and age is not None:
            out = out + jnp.take(self.age_table, age, axis=0)
        return out

    def content_profile(self, users) -> jax.Array:
        """[B, Dc]: the unit mean content vector of the history's posts with a positive action
        (zeros: none). Negative actions are the last NUM_NEGATIVE_ACTIONS binary columns."""
        actions = users.history_actions[..., :NUM_BINARY_ACTIONS - NUM_NEGATIVE_ACTIONS]
        weight = (jnp.any(actions > 0, axis=-1) & (users.history_post_hashes[..., 0] != 0)).astype(jnp.float32)
        total = jnp.einsum("bs,bsd->bd", weight, users.history_content.astype(jnp.float32))
        norm = jnp.linalg.norm(total, axis=-1, keepdims=True)
        return jnp.where(norm > 1e-6, total / jnp.maximum(norm, 1e-6), 0.0)

    def content_affinity(self, content: jax.Array, profile: jax.Array) -> jax.Array:
        """[B, C, D]: the bucketed cosine of each candidate's content with the viewer's profile
        (row 0, "missing", for a candidate without content or a viewer without a profile)."""
        buckets = self.inputs.content_affinity_buckets
        content = content.astype(jnp.float32)
        cos = jnp.einsum("bcd,bd->bc", content, profile)
        bucket = 1 + jnp.clip(jnp.floor((cos + 1.0) * 0.5 * buckets), 0, buckets - 1).astype(jnp.int32)
        present = jnp.any(content != 0, axis=-1) & jnp.any(profile != 0, axis=-1)[:, None]
        return jnp.take(self.affinity_table, jnp.where(present, bucket, 0), axis=0).astype(self.dtype)

    def prefix(self, users) -> tuple[jax.Array, jax.Array]:
        """[user][history] embeddings [B, 1+S, D] and validity [B, 1+S]. The user slot is always
        valid in v1; with `pad_user_slot` it is padding when its first hash is 0 (reference)."""
        user = self._project(lookup(self.user_tables, users.user_hashes), self.proj_user)
        if self.inputs.hour_of_day and users.user_hour is not None:
            user = user + jnp.take(self.hour_table, users.user_hour, axis=0)
        history_raw = jnp.concatenate([
            self.post_author(users.history_post_hashes, users.history_author_hashes),
            self.actions(users.history_actions),
            self.surface(users.history_surface),
        ], axis=-1)
        history = self._project(history_raw, self.proj_history)
        history = history + self.post_context(users.history_sids, users.history_content, users.history_age,
                                              users.history_kind)
        if self.inputs.pad_user_slot:
            user_valid = users.user_hashes[:, :1] != 0
        else:
            user_valid = jnp.ones((users.user_hashes.shape[0], 1), bool)
        valid = jnp.concatenate([user_valid, users.history_post_hashes[..., 0] != 0], axis=1)
        return jnp.concatenate([user[:, None, :], history.astype(user.dtype)], axis=1), valid
