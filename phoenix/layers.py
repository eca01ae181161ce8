"""Building blocks of the Grok-style transformer: RMSNorm, rotary embeddings, gated GELU,
bias-free projections, and soft-capped masked attention weights.

Parameters are float32; computation runs in the configured dtype, with norms and the
attention softmax in float32 (as the reference does).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from phoenix import compilation_cache  # noqa: F401 - turns the on-disk XLA cache on for every model

# Masked attention logits; exp(MASKED - max) underflows to exactly 0 in float32.
MASKED_LOGIT = -1e30


class RMSNorm(nn.Module):
    """`scale * x / rms(x)`, computed in float32, scale initialised at 1 (trainable from scratch)."""

    eps: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],), jnp.float32)
        x32 = x.astype(jnp.float32)
        normed = x32 * jax.lax.rsqrt(mean_square(x32) + self.eps)
        return (scale * normed).astype(x.dtype)


def mean_square(x: jax.Array) -> jax.Array:
    """mean(x**2) over the last axis, keeping it: [..., 1]. As a matrix-vector product: XLA:CPU
    rewrites a plain mean into a windowed reduction that costs more than the matmuls around it."""
    d = x.shape[-1]
    return jnp.dot(jnp.square(x), jnp.full((d,), 1.0 / d, x.dtype))[..., None]


def input_dropout(x: jax.Array, rate: float, key: jax.Array) -> jax.Array:
    """Training-time dropout of a transformer's input activations: `rate` of them zeroed, the
    rest scaled by 1 / (1 - rate) so the expected input is unchanged."""
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)


def dense(features: int, dtype: Any, name: str | None = None) -> nn.Dense:
    """Bias-free projection with a [in, out] kernel (the reference's `w` layout)."""
    return nn.Dense(features, use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                    kernel_init=nn.initializers.lecun_normal(), name=name)


def rotate_half(x: jax.Array) -> jax.Array:
    x1, x2 = jnp.split(x, 2, axis=-1)
    return jnp.concatenate((-x2, x1), axis=-1)


class Rotary(NamedTuple):
    """cos and sin of the rotary phases at some positions, [B, T, 1, K] (T may be 1: one
    position broadcast over every slot), computed once per pass and shared by every layer's
    queries and keys."""
    cos: jax.Array
    sin: jax.Array


def rotary(positions: jax.Array, key_size: int, base: float) -> Rotary:
    """The rotary tables at float positions [B, T] (half-split layout, as the reference)."""
    inv_freq = 1.0 / (base ** (jnp.arange(0, key_size, 2, dtype=jnp.float32) / key_size))
    phase = positions.astype(jnp.float32)[..., None] * inv_freq  # [B, T, K/2]
    phase = jnp.concatenate([phase, phase], axis=-1)[:, :, None, :]  # [B, T, 1, K]
    return Rotary(jnp.cos(phase), jnp.sin(phase))


@functools.lru_cache(maxsize=64)
def _rotary_table(length: int, key_size: int, base: float) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin [length, K] at positions 0..length-1, computed once per length, eagerly by
    XLA's own kernels (the numbers a pass computing them itself gets)."""
    # Compiled with the positions as an argument, as in a pass (XLA folds the frequencies the
    # same way), and run now: a compiled function runs even when called while tracing one.
    at = np.arange(length, dtype=np.float32)[None]
    tables = jax.jit(lambda p: rotary(p, key_size, base)).lower(at).compile()(at)
    return np.asarray(tables.cos)[0, :, 0], np.asarray(tables.sin)[0, :, 0]


def rotary_below(positions: jax.Array, length: int, key_size: int, base: float) -> Rotary:
    """`rotary` for whole-number positions [B, T] below `length`, read from constant tables.
    Computed in the pass, XLA fuses sin and cos into every consumer and evaluates them again
    for each head and candidate element of q and k (a tenth of the demo ranker's time)."""
    cos, sin = _rotary_table(length, key_size, base)
    at = positions.astype(jnp.int32)
    return Rotary(jnp.asarray(cos)[at][:, :, None, :], jnp.asarray(sin)[at][:, :, None, :])


def rotate(x: jax.Array, tables: Rotary) -> jax.Array:
    """Rotary embedding of x [B, T, H, K] with tables of its positions."""
    x32 = x.astype(jnp.float32)
    return (x32 * tables.cos + rotate_half(x32) * tables.sin).astype(x.dtype)


def apply_rotary(x: jax.Array, positions: jax.Array, base: float) -> jax.Array:
    """Rotary embedding of x [B, T, H, K] at float positions [B, T]."""
    return rotate(x, rotary(positions, x.shape[-1], base))


def capped_logits(logits: jax.Array, multiplier: float, cap: float) -> jax.Array:
    """float32 attention logits scaled and soft-capped as cap * tanh(x / cap)."""
    logits = logits.astype(jnp.float32) * multiplier
    return cap * jnp.tanh(logits / cap)


def capped_weights(logits: jax.Array, multiplier: float, cap: float) -> jax.Array:
    """Unnormalised softmax weights exp(cap * tanh(x / cap) - cap) of raw logits x * multiplier.

    Since cap * (tanh(y) - 1) = -2 cap / (exp(2y) + 1), this is exp(-2 cap / (exp(2y) + 1)):
    two exponentials instead of tanh + exp (about half the cost on CPU), no running max
    needed (the exponent lies in [-2 cap, 0]), and exp(2y) overflowing to inf still gives
    the right limit (weight 1)."""
    y = logits.astype(jnp.float32) * (2.0 * multiplier / cap)
    return jnp.exp((-2.0 * cap) / (jnp.exp(y) + 1.0))


class GatedGeluFFN(nn.Module):
    """`W_out(gelu(W_1 x) * W_v x)`, no biases."""

    emb_size: int
    hidden_size: int
    dtype: Any = jnp.float32

    def setup(self) -> None:
        self.value_in = dense(self.hidden_size, self.dtype)  # reference: linear_v
        self.gelu_in = dense(self.hidden_size, self.dtype)  # reference: linear
        self.out = dense(self.emb_size, self.dtype)  # reference: linear_1

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.out(jax.nn.gelu(self.gelu_in(x), approximate=True) * self.value_in(x))
