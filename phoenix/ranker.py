"""The Phoenix ranker: hash embeddings -> Grok-style transformer under the candidate-isolation
mask -> final norm -> unembedding to per-action logits.

Two equivalent ways to run it: `ranker_logits` (the plain full-sequence pass, what training
and the reference use) and `ranker_prefix` + `ranker_score_candidates` (the prefix cache:
the user+history prefix once, then any number of candidates as independent rows).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from phoenix.actions import NUM_BINARY_ACTIONS
from phoenix.config import RankerConfig
from phoenix.embeddings import InputEmbeddings, sum_kind_rows
from phoenix.features import RankBatch, UserBatch, make_rank_batch
from phoenix.layers import RMSNorm, input_dropout
from phoenix.post_kind import ROWS as KIND_ROWS
from phoenix.transformer import (LayerKV, Transformer, candidate_positions, prefix_positions, prefix_mask,
                                 recsys_mask)

Params = Any


class PrefixCache(NamedTuple):
    """Per-layer keys/values of one batch of [user][history] prefixes."""

    layers: list[LayerKV]
    valid: jax.Array  # [B, P] bool
    profile: jax.Array | None = None  # [B, Dc] the viewer's content profile (content-affinity models)


class CandidateTables(NamedTuple):
    """Hash tables already multiplied by their block of the candidate projection, so a candidate's
    input is a sum of looked-up rows instead of a [(Hi+Ha+1)*D, D] matmul per candidate (the
    same linear map, summed in another order). Computed once per parameter set, for serving."""

    post: jax.Array  # [Hi, Vi, D]
    author: jax.Array  # [Ha, Va, D]
    surface: jax.Array  # [surfaces, D]


class CandidateContext(NamedTuple):
    """The v2 candidate inputs (each None when the model lacks it)."""

    sids: jax.Array | None = None     # [B, C, L]
    content: jax.Array | None = None  # [B, C, Dc]
    age: jax.Array | None = None      # [B, C]
    profile: jax.Array | None = None  # [B, Dc] the viewer's content profile (from the prefix)
    kind: jax.Array | None = None     # [B, C, 3] post_kind codes

    @classmethod
    def of(cls, batch: RankBatch) -> "CandidateContext":
        return cls(batch.candidate_sids, batch.candidate_content, batch.candidate_age, kind=batch.candidate_kind)

    def with_profile(self, profile: jax.Array | None) -> "CandidateContext":
        return self._replace(profile=profile)


class PhoenixRanker(nn.Module):
    config: RankerConfig

    def setup(self) -> None:
        cfg, d, h = self.config, self.config.model.emb_size, self.config.hash
        self.dtype = jnp.dtype(cfg.model.dtype)
        self.embeddings = InputEmbeddings.of(cfg)
        self.proj_candidate = self.param(
            "proj_candidate", nn.initializers.lecun_normal(), ((h.num_item_hashes + h.num_author_hashes + 1) * d, d))
        self.transformer = Transformer(cfg.model)
        self.final_norm = RMSNorm(cfg.model.norm_eps)
        self.unembeddings = self.param("unembeddings", nn.initializers.lecun_normal(), (d, cfg.num_actions))
        if cfg.inputs.action_bias:
            self.action_bias = self.param("action_bias", nn.initializers.zeros, (cfg.num_actions,))
        if cfg.inputs.post_kind:  # per-action logit offsets of the candidate's photo / video / kind codes
            self.kind_bias = self.param("post_kind_action_bias", nn.initializers.zeros,
                                        (sum(KIND_ROWS), cfg.num_actions))

    def _prefix_inputs(self, users: UserBatch) -> tuple[jax.Array, jax.Array]:
        x, valid = self.embeddings.prefix(users)
        return x.astype(self.dtype), valid

    def _candidate_inputs(self, post_hashes: jax.Array, author_hashes: jax.Array,
                          surface: jax.Array, context: "CandidateContext | None" = None) -> tuple[jax.Array, jax.Array]:
        raw = jnp.concatenate([self.embeddings.post_author(post_hashes, author_hashes),
                               self.embeddings.surface(surface)], axis=-1)
        x = jnp.dot(raw.astype(self.dtype), self.proj_candidate.astype(self.dtype))
        x = x + self._candidate_context(context)
        return x.astype(self.dtype), post_hashes[..., 0] != 0

    def _candidate_context(self, context: "CandidateContext | None"):
        if context is None:
            return 0.0
        out = self.embeddings.post_context(context.sids, context.content, context.age, context.kind)
        if self.config.inputs.content_affinity_buckets and context.content is not None and context.profile is not None:
            out = out + self.embeddings.content_affinity(context.content, context.profile)
        return out

    def candidate_tables(self) -> CandidateTables:
        """Fold the candidate projection into the hash tables (see CandidateTables)."""
        emb, w, h = self.embeddings, self.proj_candidate, self.config.hash
        hi, ha, d = h.num_item_hashes, h.num_author_hashes, self.config.model.emb_size
        post = jnp.broadcast_to(emb.post_tables, (hi, *emb.post_tables.shape[1:]))  # shared tables: one per hash
        author = jnp.broadcast_to(emb.author_tables, (ha, *emb.author_tables.shape[1:]))
        return CandidateTables(
            post=jnp.einsum("hvd,hde->hve", post, w[:hi * d].reshape(hi, d, d)),
            author=jnp.einsum("hvd,hde->hve", author, w[hi * d:(hi + ha) * d].reshape(ha, d, d)),
            surface=emb.surface_table @ w[(hi + ha) * d:],
        )

    def _candidate_inputs_from_tables(self, tables: CandidateTables, post_hashes: jax.Array,
                                      author_hashes: jax.Array, surface: jax.Array,
                                      context: "CandidateContext | None" = None) -> tuple[jax.Array, jax.Array]:
        x = jnp.take(tables.surface, surface, axis=0) + self._candidate_context(context)
        for k in range(post_hashes.shape[-1]):
            x = x + jnp.take(tables.post[k], post_hashes[..., k], axis=0)
        for k in range(author_hashes.shape[-1]):
            x = x + jnp.take(tables.author[k], author_hashes[..., k], axis=0)
        return x.astype(self.dtype), post_hashes[..., 0] != 0

    def _logits(self, h: jax.Array, kind: jax.Array | None = None) -> jax.Array:
        out = self.final_norm(h)
        logits = jnp.dot(out.astype(jnp.float32), self.unembeddings)
        if self.config.inputs.post_kind and kind is not None:
            logits = logits + sum_kind_rows(self.kind_bias, kind)
        return logits + self.action_bias if self.config.inputs.action_bias else logits

    def __call__(self, batch: RankBatch, dropout: float = 0.0) -> jax.Array:
        """Plain full-sequence pass: logits [B, C, num_actions] (float32). `dropout` > 0 (training
        only; needs a "dropout" rng): that share of the transformer's input activations is
        zeroed, the rest scaled up to keep their expectation."""
        cfg = self.config
        prefix, prefix_valid = self._prefix_inputs(batch)
        context = CandidateContext.of(batch).with_profile(self._profile(batch))
        cands, cand_valid = self._candidate_inputs(batch.candidate_post_hashes, batch.candidate_author_hashes,
                                                   batch.candidate_surface, context)
        c = cands.shape[1]
        positions = jnp.concatenate([
            prefix_positions(prefix_valid, cfg.position_ids),
            candidate_positions(prefix_valid, c, cfg.candidate_positions, cfg.position_ids,
                                period=cfg.num_candidates),
        ], axis=1)
        mask = recsys_mask(prefix_valid, cand_valid, cfg.prefix_attention == "causal")
        x = jnp.concatenate([prefix, cands], axis=1)
        if dropout > 0:
            x = input_dropout(x, dropout, self.make_rng("dropout"))
        h, _ = self.transformer(x, positions, mask)
        return self._logits(h[:, prefix.shape[1]:], batch.candidate_kind)

    def prefix(self, users: UserBatch) -> PrefixCache:
        """Run [user][history] once and keep each layer's keys/values."""
        cfg = self.config
        x, valid = self._prefix_inputs(users)
        mask = prefix_mask(valid, cfg.prefix_attention == "causal")
        _, layers = self.transformer(x, prefix_positions(valid, cfg.position_ids), mask)
        return PrefixCache(layers, valid, self._profile(users))

    def _profile(self, users: UserBatch) -> jax.Array | None:
        if not self.config.inputs.content_affinity_buckets or users.history_content is None:
            return None
        return self.embeddings.content_profile(users)

    def score_candidates(self, cache: PrefixCache, post_hashes: jax.Array, author_hashes: jax.Array,
                         surface: jax.Array, first_slot: jax.Array | int = 0,
                         tables: CandidateTables | None = None,
                         context: "CandidateContext | None" = None) -> jax.Array:
        """Logits [B, C, num_actions] of candidates against a cached prefix. `first_slot` is the
        slot index of the first candidate (matters only for sequential positions, when chunking);
        `tables` (from `candidate_tables`) replaces the per-candidate input projection; `context`
        holds the v2 candidate inputs."""
        cfg = self.config
        if context is not None:
            context = context.with_profile(cache.profile)
        if tables is None:
            x, valid = self._candidate_inputs(post_hashes, author_hashes, surface, context)
        else:
            x, valid = self._candidate_inputs_from_tables(tables, post_hashes, author_hashes, surface, context)
        # Shared positions: one per user, broadcast over the candidates (a [B, 1] rotary table).
        shared = cfg.candidate_positions == "shared"
        positions = candidate_positions(cache.valid, 1 if shared else x.shape[1], cfg.candidate_positions,
                                        cfg.position_ids, first_slot, period=cfg.num_candidates)
        # The prefix's P slots, then one shared position or `num_candidates` sequential ones.
        below = cache.valid.shape[1] + (1 if shared else cfg.num_candidates)
        h = self.transformer.extend(x, positions, cache.layers, cache.valid, valid, below)
        return self._logits(h, None if context is None else context.kind)


# Pure functions ------------------------------------------------------------------------------

def _example_batch(config: RankerConfig, num_candidates: int = 1) -> RankBatch:
    return make_rank_batch(config, [0], [[]], [[]], num_candidates=num_candidates)


@functools.lru_cache(maxsize=8)
def _compiled_init(config: RankerConfig):
    return jax.jit(PhoenixRanker(config).init)


def ranker_init_params(config: RankerConfig, seed: int = 0) -> Params:
    """Random parameters for training from scratch: {"params": {...}} (float32)."""
    return _compiled_init(config)(jax.random.PRNGKey(seed), _example_batch(config))


def ranker_logits(params: Params, config: RankerConfig, batch: RankBatch, dropout: float = 0.0,
                  rng: jax.Array | None = None) -> jax.Array:
    """Plain full-sequence pass: [B, C, num_actions] logits (with input dropout when training)."""
    if dropout > 0:
        return PhoenixRanker(config).apply(params, batch, dropout, rngs={"dropout": rng})
    return PhoenixRanker(config).apply(params, batch)


def ranker_prefix(params: Params, config: RankerConfig, users: UserBatch) -> PrefixCache:
    return PhoenixRanker(config).apply(params, users, method=PhoenixRanker.prefix)


def ranker_score_candidates(params: Params, config: RankerConfig, cache: PrefixCache, post_hashes: jax.Array,
                            author_hashes: jax.Array, surface: jax.Array, first_slot: jax.Array | int = 0,
                            tables: CandidateTables | None = None,
                            context: CandidateContext | None = None) -> jax.Array:
    return PhoenixRanker(config).apply(params, cache, post_hashes, author_hashes, surface, first_slot, tables,
                                       context, method=PhoenixRanker.score_candidates)


def ranker_candidate_tables(params: Params, config: RankerConfig) -> CandidateTables:
    return PhoenixRanker(config).apply(params, method=PhoenixRanker.candidate_tables)


def ranker_logits_prefix_path(params: Params, config: RankerConfig, batch: RankBatch,
                              tables: CandidateTables | None = None) -> jax.Array:
    """Same numbers as `ranker_logits` (to float rounding), computed through the prefix cache."""
    cache = ranker_prefix(params, config, batch.user_batch())
    return ranker_score_candidates(params, config, cache, batch.candidate_post_hashes,
                                   batch.candidate_author_hashes, batch.candidate_surface, 0, tables,
                                   CandidateContext.of(batch))


def predictions(logits: jax.Array) -> jax.Array:
    """Logits -> outputs: sigmoid probabilities for the binary actions, raw dwell-time regression."""
    probs = jax.nn.sigmoid(logits[..., :NUM_BINARY_ACTIONS])
    return jnp.concatenate([probs, logits[..., NUM_BINARY_ACTIONS:]], axis=-1)
