"""The Grok-style decoder stack, the candidate-isolation mask, and the prefix-cache path.

Full pass: one sequence [user][history][candidates] under the recsys mask. Prefix path: the
same layers run once over [user][history], keeping each layer's keys/values; candidates are
then scored as independent rows, each attending to the cached prefix plus itself. Both give
the same numbers because a candidate never sees another candidate and the prefix never sees
candidates.
"""
from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from phoenix.config import TransformerConfig
from phoenix.layers import (MASKED_LOGIT, GatedGeluFFN, RMSNorm, Rotary, capped_logits, capped_weights, dense,
                            rotary_below, rotate)


class LayerKV(NamedTuple):
    """One layer's keys/values, kv-head-major so attention is a plain batched matmul."""

    keys: jax.Array  # [B, Hkv, P, K], rotary applied
    values: jax.Array  # [B, Hkv, P, K]


# Masks and positions ------------------------------------------------------------------------

def prefix_mask(prefix_valid: jax.Array, causal: bool) -> jax.Array:
    """[B, P, P] bool: query t may read key s (valid keys; s <= t when causal)."""
    p = prefix_valid.shape[1]
    mask = jnp.broadcast_to(prefix_valid[:, None, :], (prefix_valid.shape[0], p, p))
    if causal:
        mask = mask & jnp.tril(jnp.ones((p, p), bool))[None]
    return mask


def recsys_mask(prefix_valid: jax.Array, candidate_valid: jax.Array, causal: bool) -> jax.Array:
    """[B, T, T] bool for [prefix][candidates]: candidates read the valid prefix and themselves only;
    the prefix never reads candidates; padding is never read."""
    b, p = prefix_valid.shape
    c = candidate_valid.shape[1]
    top = jnp.concatenate([prefix_mask(prefix_valid, causal), jnp.zeros((b, p, c), bool)], axis=2)
    own = jnp.eye(c, dtype=bool)[None] & candidate_valid[:, None, :]
    bottom = jnp.concatenate([jnp.broadcast_to(prefix_valid[:, None, :], (b, c, p)), own], axis=2)
    return jnp.concatenate([top, bottom], axis=1)


def prefix_positions(prefix_valid: jax.Array, position_ids: str) -> jax.Array:
    """[B, P] float32 rotary positions of the prefix slots."""
    if position_ids == "slot":
        return jnp.broadcast_to(jnp.arange(prefix_valid.shape[1], dtype=jnp.float32), prefix_valid.shape)
    # Count valid slots only, so padding (anywhere) never shifts a real token's position.
    return (jnp.cumsum(prefix_valid.astype(jnp.int32), axis=1) - 1).astype(jnp.float32)


def candidate_positions(prefix_valid: jax.Array, num_candidates: int, mode: str, position_ids: str,
                        first_slot: jax.Array | int = 0, period: int | None = None) -> jax.Array:
    """[B, C] float32 rotary positions of candidate slots. "shared": all at the position after
    the prefix; "sequential": consecutive from there by slot index (first_slot + c), restarting
    every `period` slots, as the reference's passes of `num_candidates` do."""
    if position_ids == "slot":
        start = jnp.full((prefix_valid.shape[0],), prefix_valid.shape[1], jnp.float32)
    else:
        start = jnp.sum(prefix_valid, axis=1).astype(jnp.float32)
    offsets = jnp.zeros((num_candidates,), jnp.float32)
    if mode == "sequential":
        slots = jnp.arange(num_candidates) + jnp.asarray(first_slot, jnp.int32)
        offsets = (slots % period if period else slots).astype(jnp.float32)
    return start[:, None] + offsets[None, :]


# Layers -------------------------------------------------------------------------------------

class DecoderLayer(nn.Module):
    """h = h + norm(attn(norm(h))); h = h + norm(ffn(norm(h)))."""

    config: TransformerConfig

    def setup(self) -> None:
        cfg, dt = self.config, jnp.dtype(self.config.dtype)
        self.attn_norm = RMSNorm(cfg.norm_eps)
        self.query = dense(cfg.num_q_heads * cfg.key_size, dt)
        self.key = dense(cfg.num_kv_heads * cfg.key_size, dt)
        self.value = dense(cfg.num_kv_heads * cfg.key_size, dt)
        self.attn_out = dense(cfg.emb_size, dt)
        self.post_attn_norm = RMSNorm(cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.norm_eps)
        self.ffn = GatedGeluFFN(cfg.emb_size, cfg.ffn_size, dt)
        self.post_ffn_norm = RMSNorm(cfg.norm_eps)

    def _qkv(self, h: jax.Array, positions: Rotary) -> tuple[jax.Array, jax.Array, jax.Array]:
        """q [B, Hkv, T*G, K] (rows ordered (t, g)), k and v [B, Hkv, T, K].
        Query head i belongs to kv head i // G, as in the reference's GQA reshape."""
        cfg = self.config
        b, t, _ = h.shape
        groups = cfg.num_q_heads // cfg.num_kv_heads
        x = self.attn_norm(h)
        q = rotate(self.query(x).reshape(b, t, cfg.num_q_heads, cfg.key_size), positions)
        k = rotate(self.key(x).reshape(b, t, cfg.num_kv_heads, cfg.key_size), positions)
        v = self.value(x).reshape(b, t, cfg.num_kv_heads, cfg.key_size)
        q = q.reshape(b, t, cfg.num_kv_heads, groups, cfg.key_size).transpose(0, 2, 1, 3, 4)
        return (q.reshape(b, cfg.num_kv_heads, t * groups, cfg.key_size),
                k.transpose(0, 2, 1, 3), v.transpose(0, 2, 1, 3))

    def _finish(self, h: jax.Array, attn: jax.Array) -> jax.Array:
        """attn [B, Hkv, T*G, K] -> output projection, post-norm residual, then the feed-forward block."""
        b, t, _ = h.shape
        attn = attn.reshape(b, self.config.num_kv_heads, t, -1).transpose(0, 2, 1, 3).reshape(b, t, -1)
        h = h + self.post_attn_norm(self.attn_out(attn))
        return h + self.post_ffn_norm(self.ffn(self.ffn_norm(h)))

    def _logits(self, logits: jax.Array) -> jax.Array:
        return capped_logits(logits, self.config.attn_output_multiplier, self.config.attn_logit_cap)

    def __call__(self, h: jax.Array, positions: Rotary, mask: jax.Array) -> tuple[jax.Array, LayerKV]:
        """Self-attention over the whole sequence under `mask` [B, T, T]; returns (h, this layer's K/V)."""
        q, k, v = self._qkv(h, positions)
        b, t, _ = h.shape
        groups = q.shape[2] // t
        logits = self._logits(jnp.einsum("bhqd,bhsd->bhqs", q, k))
        row_mask = jnp.broadcast_to(mask[:, None, :, None, :], (b, 1, t, groups, t)).reshape(b, 1, t * groups, t)
        logits = jnp.where(row_mask, logits, MASKED_LOGIT)
        weights = jax.nn.softmax(logits, axis=-1).astype(h.dtype)
        return self._finish(h, jnp.einsum("bhqs,bhsd->bhqd", weights, v)), LayerKV(k, v)

    def extend(self, h: jax.Array, positions: Rotary, cache: LayerKV, prefix_valid: jax.Array,
               self_valid: jax.Array) -> jax.Array:
        """Candidate rows h [B, C, D]: each attends to the cached prefix and to itself only."""
        cfg = self.config
        q, k, v = self._qkv(h, positions)
        b, c, _ = h.shape
        groups = q.shape[2] // c
        # Softmax weights relative to the cap (capped logits never exceed it), so no running max;
        # masked keys get weight 0 (as exp(-1e30) in the full pass). Normalise after the matmul.
        mult, cap = cfg.attn_output_multiplier, cfg.attn_logit_cap
        prefix_w = capped_weights(jnp.einsum("bhqd,bhpd->bhqp", q, cache.keys), mult, cap)
        prefix_w = jnp.where(prefix_valid[:, None, None, :], prefix_w, 0.0)
        q_own = q.reshape(b, cfg.num_kv_heads, c, groups, cfg.key_size)
        self_logits = jnp.sum(q_own.astype(jnp.float32) * k[:, :, :, None, :].astype(jnp.float32), axis=-1)
        self_w = capped_weights(self_logits, mult, cap)  # [B, Hkv, C, G]
        self_w = jnp.where(self_valid[:, None, :, None], self_w, 0.0)
        denom = jnp.sum(prefix_w, axis=-1) + self_w.reshape(b, cfg.num_kv_heads, c * groups)
        attn = jnp.einsum("bhqp,bhpd->bhqd", prefix_w.astype(h.dtype), cache.values).astype(jnp.float32)
        own = (self_w[..., None] * v[:, :, :, None, :].astype(jnp.float32)).reshape(attn.shape)
        attn = ((attn + own) / denom[..., None]).astype(h.dtype)
        return self._finish(h, attn)


class Transformer(nn.Module):
    config: TransformerConfig

    def setup(self) -> None:
        self.layers = [DecoderLayer(self.config) for _ in range(self.config.num_layers)]

    def _rotary(self, positions: jax.Array, length: int) -> Rotary:
        """Once per pass, from tables: every layer's queries and keys rotate by the same
        positions, whole numbers below `length`."""
        return rotary_below(positions, length, self.config.key_size, self.config.rotary_base)

    def __call__(self, h: jax.Array, positions: jax.Array, mask: jax.Array) -> tuple[jax.Array, list[LayerKV]]:
        """Full pass; returns the final hidden states (no final norm) and every layer's K/V."""
        caches = []
        tables = self._rotary(positions, h.shape[1])  # a sequence of T slots has positions below T
        for layer in self.layers:
            h, kv = layer(h, tables, mask)
            caches.append(kv)
        return h, caches

    def extend(self, h: jax.Array, positions: jax.Array, caches: list[LayerKV], prefix_valid: jax.Array,
               self_valid: jax.Array, positions_below: int) -> jax.Array:
        """Candidate rows h [B, C, D] at `positions` [B, C], or [B, 1]: one position for all;
        every position is below `positions_below`."""
        tables = self._rotary(positions, positions_below)
        for layer, cache in zip(self.layers, caches):
            h = layer.extend(h, tables, cache, prefix_valid, self_valid)
        return h
