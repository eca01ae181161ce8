"""The sequential retriever: every prefix position of one causal pass is the user after that
prefix (as a request with that shorter history gets it), its windows train every engagement
exactly once, and its softmax excludes the user's own engagements and subtracts log-Q."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from phoenix.config import InputsConfig, tiny_retriever_config
from phoenix.features import make_user_batch
from phoenix.losses import retriever_sequence_loss
from phoenix.retriever import retriever_init_params, retriever_prefix_user_embeddings, retriever_user_embeddings
from phoenix.training.sequences import sequence_windows
from tests.phoenix_model.phoenix_model_helpers import random_history


class _Content:
    """Deterministic per-post content vectors (the PostFeatures protocol, content only)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def content(self, post_ids: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(7)
        table = rng.normal(size=(97, self.dim)).astype(np.float32)
        return table[np.asarray(post_ids, np.uint64) % np.uint64(97)]

    def sids(self, post_ids: np.ndarray) -> None:
        return None


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_each_prefix_position_is_the_user_with_that_history(pooling):
    cfg = tiny_retriever_config(user_pooling=pooling, inputs=InputsConfig(content_dim=8))
    params = retriever_init_params(cfg, seed=1)
    features = _Content(8)
    history = random_history(np.random.default_rng(3), cfg.history_len)
    full = make_user_batch(cfg, [5], [history], features)
    per_prefix = np.asarray(retriever_prefix_user_embeddings(params, cfg, full))[0]  # [1 + S, D]
    shorter = make_user_batch(cfg, [5] * (cfg.history_len + 1), [history[:i] for i in range(cfg.history_len + 1)],
                              features)
    alone = np.asarray(retriever_user_embeddings(params, cfg, shorter))
    np.testing.assert_allclose(per_prefix, alone, atol=2e-5)
    assert np.abs(per_prefix[1:] - per_prefix[:-1]).max() > 1e-3  # the history moves the user


def test_windows_train_every_engagement_once_with_its_longest_context():
    for n in (1, 2, 8, 9, 10, 17, 30):
        items = list(range(n))
        targets = []
        for window, first in sequence_windows(items, 8):
            assert 1 <= len(window) <= 9
            targets += [(item, i) for i, item in enumerate(window) if i >= first]
        assert sorted(t for t, _ in targets) == items
        # only the first engagement is predicted from the user alone; each other one sees the
        # items before it in its window
        assert [item for item, i in targets if i == 0] == [0]


def _loss_inputs(cfg, rng, windows=3, user_keys=(1, 2, 3), neg_share=0.0, global_negatives=4):
    p = cfg.history_len + 1
    users = make_user_batch(cfg, list(range(1, windows + 1)),
                            [random_history(rng, cfg.history_len) for _ in range(windows)])
    h = cfg.hash

    def tower(shape):
        return {"post_hashes": jnp.asarray(rng.integers(1, h.item_vocab_size, (*shape, h.num_item_hashes)), jnp.int32),
                "author_hashes": jnp.asarray(rng.integers(1, h.author_vocab_size, (*shape, h.num_author_hashes)),
                                             jnp.int32)}

    targets, neg = tower((windows, p)), tower((global_negatives,))
    hard = {k: jnp.zeros((windows, 2, v.shape[-1]), jnp.int32) for k, v in targets.items()}
    return dict(users=users, targets=targets, target_valid=jnp.ones((windows, p), bool),
                target_share=jnp.full((windows, p), 1e-3), user_key=jnp.asarray(user_keys, jnp.int32),
                neg=neg, neg_share=jnp.full((global_negatives,), neg_share), hard=hard)


def test_sequence_loss_excludes_the_users_own_engagements_and_subtracts_log_q():
    cfg = tiny_retriever_config()
    params = {"model": retriever_init_params(cfg, seed=0), "temperature": jnp.zeros(())}
    loss = jax.jit(lambda p, kw, corpus: retriever_sequence_loss(p, cfg, **kw, corpus_size=corpus)[0],
                   static_argnums=2)
    rng = np.random.default_rng(0)
    # one user's windows only, and no global negative that is not padding: nothing is a
    # negative for anyone, so the loss is exactly zero
    alone = _loss_inputs(cfg, rng, user_keys=(4, 4, 4))
    alone["neg"] = {k: jnp.zeros_like(v) for k, v in alone["neg"].items()}
    assert float(loss(params, alone, 1000)) < 1e-6
    others = dict(alone, user_key=jnp.asarray([1, 2, 3], jnp.int32))
    assert float(loss(params, others, 1000)) > 1.0  # other users' targets are negatives
    # a sampled negative that is often a training target has its log expected count
    # subtracted: the more popular, the lower its logit, the lower the loss
    base = _loss_inputs(cfg, np.random.default_rng(1))
    popular = dict(base, neg_share=jnp.full((4,), 0.2))
    assert float(loss(params, popular, 1000)) < float(loss(params, base, 1000)) - 1e-3
    # padding rows and columns do not count
    half = dict(base, target_valid=base["target_valid"].at[:, 5:].set(False))
    junk = dict(half, targets={k: v.at[:, 5:].set(1) for k, v in half["targets"].items()})
    assert float(loss(params, half, 1000)) == pytest.approx(float(loss(params, junk, 1000)), abs=1e-5)


def test_user_pooling_is_in_the_config_and_defaults_to_mean():
    from phoenix.config import RetrieverConfig
    from phoenix.training.cli import _actions
    from phoenix.training.retriever import SEQUENCE_BATCH, default_settings

    cfg = tiny_retriever_config(inputs=InputsConfig(content_dim=8, candidate_post_ids=False), user_pooling="last")
    assert RetrieverConfig.from_dict(cfg.to_dict()).user_pooling == "last"
    old = cfg.to_dict()
    del old["user_pooling"]  # a checkpoint written before the field existed loads as mean
    assert RetrieverConfig.from_dict(old).user_pooling == "mean"
    assert default_settings(10, cfg).batch_size == SEQUENCE_BATCH
    assert default_settings(10, dataclasses.replace(cfg, user_pooling="mean")).batch_size != SEQUENCE_BATCH
    assert _actions("favorite, click") == {1, 5}
    with pytest.raises(SystemExit, match="unknown action 'clik'"):
        _actions("clik")


def test_movielens_preset_is_small_with_the_sequential_retriever_recipe():
    from phoenix.server_models import preset_configs
    from phoenix.training.presets import DEFAULT_STEPS, RANKER_STEPS, train_recipe

    small_ranker, small_retriever = preset_configs("small")
    small = train_recipe("small")  # the synthetic worlds' presets keep their models and defaults
    assert (small.ranker, small.retriever, small.positives, small.freshness) == (small_ranker, small_retriever,
                                                                              None, True)
    assert (small.steps("ranker"), small.steps("retriever")) == (RANKER_STEPS, DEFAULT_STEPS)
    movielens = train_recipe("movielens")
    assert movielens.ranker == small_ranker
    assert movielens.retriever.user_pooling == "last" and movielens.retriever.prefix_attention == "causal"
    assert movielens.retriever.inputs == small_retriever.inputs and movielens.retriever.hash == small_retriever.hash
    assert movielens.steps("retriever") > DEFAULT_STEPS and movielens.steps("ranker") == RANKER_STEPS
    assert not movielens.freshness
    assert movielens.positives == {1, 5}  # favorite, click: every rating is a target


def test_input_dropout_changes_only_the_training_pass():
    cfg = tiny_retriever_config(user_pooling="last", inputs=InputsConfig(content_dim=8))
    params = retriever_init_params(cfg, seed=1)
    users = make_user_batch(cfg, [5, 6], [random_history(np.random.default_rng(s), cfg.history_len) for s in (3, 4)],
                            _Content(8))
    plain = np.asarray(retriever_prefix_user_embeddings(params, cfg, users))
    key = jax.random.PRNGKey(0)
    dropped = np.asarray(retriever_prefix_user_embeddings(params, cfg, users, 0.5, key))
    again = np.asarray(retriever_prefix_user_embeddings(params, cfg, users, 0.5, key))
    other = np.asarray(retriever_prefix_user_embeddings(params, cfg, users, 0.5, jax.random.PRNGKey(1)))
    np.testing.assert_array_equal(dropped, again)  # the step's key decides the mask
    assert np.abs(dropped - plain).max() > 1e-2 and np.abs(other - dropped).max() > 1e-2
    # no key (validation, serving) or no rate: the plain pass
    np.testing.assert_array_equal(np.asarray(retriever_prefix_user_embeddings(params, cfg, users, 0.5)), plain)
    np.testing.assert_allclose(np.asarray(retriever_user_embeddings(params, cfg, users, 0.0, key)),
                               np.asarray(retriever_user_embeddings(params, cfg, users)))


def test_dropout_is_refused_for_a_v1_retriever():
    from phoenix.training import retriever

    assert tiny_retriever_config().inputs.candidate_post_ids  # v1: post ids in the candidate tower
    with pytest.raises(ValueError, match="v2 models only"):
        retriever.train([], tiny_retriever_config(), steps=1, dropout=0.2)
