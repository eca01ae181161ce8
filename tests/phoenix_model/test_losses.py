"""Training losses: a few optimiser steps on a tiny synthetic batch lower them."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from phoenix.config import tiny_ranker_config
from phoenix.features import make_rank_batch, make_user_batch
from phoenix.losses import ranker_loss, retriever_loss
from tests.phoenix_model.phoenix_model_helpers import params_for, random_candidates, random_history


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


CFG = tiny_ranker_config()


@jax.jit
def _ranker_loss(params, batch, labels, dwell, mask):
    return ranker_loss(params, CFG, batch, labels, dwell, mask)


def _ranker_data(seed, histories=(8, 4, 0), cands=(8, 5, 2)):
    rng = np.random.default_rng(seed)
    batch = make_rank_batch(CFG, [1, 2, 3], [random_history(rng, n) for n in histories],
                            [random_candidates(rng, n) for n in cands], num_candidates=8)
    labels = jnp.asarray(rng.random((3, 8, 18)) < 0.2, jnp.float32)
    dwell = jnp.asarray(rng.exponential(5.0, (3, 8)), jnp.float32)
    return batch, labels, dwell, jnp.asarray(batch.candidate_mask)


def test_ranker_loss_goes_down():
    batch, labels, dwell, mask = _ranker_data(0)
    loss, metrics = _ranker_loss(params_for(CFG), batch, labels, dwell, mask)
    assert set(metrics) >= {"loss", "bce", "dwell_mse"} and np.isfinite(float(loss))
    losses = _train(lambda p: _ranker_loss(p, batch, labels, dwell, mask), params_for(CFG))
    assert losses[0] == pytest.approx(float(loss), rel=1e-5)
    assert losses[-1] < losses[0] * 0.9


def test_ranker_loss_ignores_padding_candidates():
    batch, labels, dwell, mask = _ranker_data(1, cands=(2, 2, 2))
    junk_labels = jnp.where(mask[..., None], labels, 1.0)  # labels on padding slots must not count
    junk_dwell = jnp.where(mask, dwell, 100.0)
    a, _ = _ranker_loss(params_for(CFG), batch, labels, dwell, mask)
    b, _ = _ranker_loss(params_for(CFG), batch, junk_labels, junk_dwell, mask)
    assert abs(float(a) - float(b)) < 1e-6
    c, _ = _ranker_loss(params_for(CFG), batch, 1.0 - labels, dwell, mask)
    assert abs(float(a) - float(c)) > 1e-3  # ... while labels on real candidates do


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


def test_retriever_v2_loss_masks_future_negatives_and_learns_an_age_bias():
    from phoenix.config import V2_INPUTS, tiny_retriever_config
    from phoenix.losses import retriever_init_params, retriever_loss_v2

    cfg = tiny_retriever_config(inputs=V2_INPUTS)
    rng = np.random.default_rng(3)
    b, g, h = 4, 6, 2

    def tower(*shape):
        return {"post_hashes": jnp.asarray(rng.integers(1, cfg.hash.item_vocab_size, (*shape, cfg.hash.num_item_hashes)),
                                           jnp.int32),
                "author_hashes": jnp.asarray(rng.integers(1, cfg.hash.author_vocab_size,
                                                          (*shape, cfg.hash.num_author_hashes)), jnp.int32),
                "sids": jnp.asarray(rng.integers(0, V2_INPUTS.sid_codes, (*shape, V2_INPUTS.sid_levels)), jnp.int32),
                "content": jnp.asarray(rng.normal(size=(*shape, V2_INPUTS.content_dim)), jnp.float32)}
    users = make_user_batch(cfg, [1, 2, 3, 4], [random_history(rng, n) for n in (3, 0, 5, 2)])
    pos, neg, hard = tower(b), tower(g), tower(b, h)
    params = {"model": retriever_init_params(cfg), "temperature": jnp.zeros(())}
    log_q, neg_log_q = jnp.full(b, -np.log(b), jnp.float32), jnp.asarray(np.log(g / 100.0), jnp.float32)
    # hours: rows engage at 10; every positive and hard negative exists; the global ones were created at 11
    ages = {"time": jnp.full(b, 10.0), "pos": jnp.asarray([9.0, 5.0, 9.5, 2.0]), "neg": jnp.full(g, 11.0),
            "hard": jnp.full((b, h), -5.0)}

    def loss(p, negatives, a, edges=()):
        return float(retriever_loss_v2(p, cfg, users, pos, negatives, hard, log_q, neg_log_q, 0.2, a, edges)[0])
    plain = loss(params, neg, None)
    masked = loss(params, neg, ages)
    assert masked < plain  # fewer negatives ...
    assert masked == pytest.approx(loss(params, tower(g), ages), abs=1e-6)  # ... and the future ones count for nothing
    # positives all aged under 12 hours, the hard negatives 15: a bias against older posts lowers the loss
    edges = (4.0, 12.0)
    young = {**params, "age_bias": jnp.asarray([0.0, 0.0, -5.0])}
    assert loss(young, neg, ages, edges) < loss({**params, "age_bias": jnp.zeros(3)}, neg, ages, edges) == \
        pytest.approx(masked, abs=1e-6)
