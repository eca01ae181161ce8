"""Training losses: a few optimiser steps on a tiny synthetic batch lower them."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from phoenix.config import tiny_ranker_config
from phoenix.features import make_rank_batch, make_user_batch
from phoenix.losses import ranker_loss, retriever_loss
from tests.phoenix_model.conftest import params_for, random_candidates, random_history


def _train(loss_fn, params, steps=6, lr=1e-2):
    opt = optax.adam(lr)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state, loss

    losses = []
    for _ in range(steps):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    return losses


def test_ranker_loss_goes_down():
    cfg = tiny_ranker_config()
    rng = np.random.default_rng(0)
    batch = make_rank_batch(cfg, [1, 2, 3], [random_history(rng, n) for n in (8, 4, 0)],
                            [random_candidates(rng, n) for n in (8, 5, 2)], num_candidates=8)
    mask = jnp.asarray(batch.candidate_mask)
    labels = jnp.asarray(rng.random((3, 8, 18)) < 0.2, jnp.float32)
    dwell = jnp.asarray(rng.exponential(5.0, (3, 8)), jnp.float32)
    loss, metrics = jax.jit(lambda p: ranker_loss(p, cfg, batch, labels, dwell, mask))(params_for(cfg))
    assert set(metrics) >= {"loss", "bce", "dwell_mse"} and np.isfinite(float(loss))
    losses = _train(lambda p: ranker_loss(p, cfg, batch, labels, dwell, mask), params_for(cfg))
    assert losses[-1] < losses[0] * 0.9


def test_ranker_loss_ignores_padding_candidates():
    cfg = tiny_ranker_config()
    rng = np.random.default_rng(1)
    batch = make_rank_batch(cfg, [1, 2, 3], [random_history(rng, 3)] * 3, [random_candidates(rng, 2)] * 3,
                            num_candidates=8)
    mask = jnp.asarray(batch.candidate_mask)
    labels = jnp.zeros((3, 8, 18))
    junk = labels.at[:, 2:].set(1.0)  # labels on padding slots must not count
    dwell = jnp.zeros((3, 8))
    loss = jax.jit(lambda p, y, d: ranker_loss(p, cfg, batch, y, d, mask)[0])
    a = loss(params_for(cfg), labels, dwell)
    b = loss(params_for(cfg), junk, dwell.at[:, 2:].set(100.0))
    assert abs(float(a) - float(b)) < 1e-6


def test_retriever_loss_goes_down_and_masks_duplicate_positives(retriever_runtime):
    cfg = retriever_runtime.config
    rng = np.random.default_rng(2)
    users = make_user_batch(cfg, list(range(1, 9)), [random_history(rng, int(rng.integers(0, 9))) for _ in range(8)])
    posts = jnp.asarray(rng.integers(1, cfg.hash.item_vocab_size, (8, cfg.hash.num_item_hashes)), jnp.int32)
    authors = jnp.asarray(rng.integers(1, cfg.hash.author_vocab_size, (8, cfg.hash.num_author_hashes)), jnp.int32)
    params = retriever_runtime.params
    losses = _train(lambda p: retriever_loss(p, cfg, users, posts, authors), params)
    assert losses[-1] < losses[0] * 0.9
    # Every user engaged with the same post: no negatives are left, so the loss is exactly zero.
    same_posts, same_authors = jnp.tile(posts[:1], (8, 1)), jnp.tile(authors[:1], (8, 1))
    loss, metrics = jax.jit(lambda p, x, y: retriever_loss(p, cfg, users, x, y))(params, same_posts, same_authors)
    assert float(loss) < 1e-6 and float(metrics["in_batch_accuracy"]) == 1.0
