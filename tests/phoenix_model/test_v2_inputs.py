"""v2 inputs: semantic ids, content projection, post age; both ranker paths agree; v1 configs
(config.json without an "inputs" section) still load as v1; RQ-k-means codebooks."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from foryou import snowflake
from phoenix.config import V2_INPUTS, InputsConfig, RankerConfig, tiny_ranker_config, tiny_retriever_config
from phoenix.content import ContentStore, PostFeatureView
from phoenix.features import CandidateItem, HistoryItem, age_buckets, make_rank_batch
from phoenix.ranker import predictions
from phoenix.runtime import RankerRuntime, RetrieverRuntime
from phoenix.sid import Codebook, fit_codebook
from tests.phoenix_model.phoenix_model_helpers import compiled, params_for

V2 = dataclasses.replace(V2_INPUTS, sid_levels=2, sid_codes=17)
NOW = 1_800_000_000_000


def _post(minutes_ago: float, seq: int) -> int:
    return snowflake.make_id(int(NOW - minutes_ago * 60_000), low_bits=seq)


def _world(rng, n=40):
    """A store with n posts of random unit content and a codebook fitted on them."""
    ids = [_post(float(rng.uniform(0, 600)), i) for i in range(n)]
    vectors = rng.normal(size=(n, 256)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = ContentStore()
    store.put(ids, vectors)
    book = fit_codebook(vectors, V2.sid_levels, V2.sid_codes, seed=0)
    return ids, vectors, store, book


def test_v1_config_json_without_inputs_loads_as_v1():
    cfg = tiny_ranker_config()
    data = json.loads(cfg.to_json())
    del data["inputs"]
    assert RankerConfig.from_json(json.dumps(data)) == cfg and cfg.inputs == InputsConfig()
    v2 = tiny_ranker_config(inputs=V2)
    assert RankerConfig.from_json(v2.to_json()) == v2


def test_codebook_assigns_nearest_centroids_and_zero_for_missing(tmp_path):
    rng = np.random.default_rng(0)
    _, vectors, _, book = _world(rng)
    codes = book.assign(np.concatenate([vectors[:5], np.zeros((1, 256), np.float32)]))
    assert codes.shape == (6, 2) and codes.min() == 0 and codes.max() <= 16
    assert (codes[:5] > 0).all() and (codes[5] == 0).all()
    first = np.argmin(((vectors[:5, None, :] - book.centroids[0][None]) ** 2).sum(-1), axis=1) + 1
    np.testing.assert_array_equal(codes[:5, 0], first)
    book.save(tmp_path)
    again = Codebook.load(tmp_path)
    np.testing.assert_array_equal(again.centroids, book.centroids)
    assert again.fingerprint == book.fingerprint


def test_age_buckets():
    inputs = InputsConfig(age_buckets=48)
    ids = np.asarray([_post(0, 1), _post(59, 2), _post(61, 3), _post(48 * 60 + 1, 4), 0], np.uint64)
    np.testing.assert_array_equal(age_buckets(inputs, ids, NOW), [1, 1, 2, 49, 0])
    np.testing.assert_array_equal(age_buckets(inputs, ids[:1], 0), [0])  # unknown time: missing


def test_v2_ranker_paths_agree_and_content_moves_scores():
    rng = np.random.default_rng(1)
    ids, vectors, store, book = _world(rng)
    cfg = tiny_ranker_config(inputs=V2)
    params = params_for(cfg)
    features = PostFeatureView(store, book)
    history = [HistoryItem(ids[i], 7 + i, (0,), 1, NOW - 1000 * i, 5000 * i) for i in range(6)]
    cands = [CandidateItem(p, 3) for p in ids[10:30]]
    batch = make_rank_batch(cfg, [5], [history], [cands], num_candidates=32, features=features, now_ms=NOW)
    assert batch.candidate_sids.shape == (1, 32, 2) and batch.candidate_content.shape == (1, 32, 256)
    assert (batch.candidate_sids[0, :20] > 0).all() and (batch.candidate_sids[0, 20:] == 0).all()
    assert (batch.history_actions[0, 1:6, 18] > 0).all()  # the dwell column
    full, fast, _ = compiled(cfg)
    a, b = np.asarray(full(params, batch))[0, :20], np.asarray(fast(params, batch))[0, :20]
    np.testing.assert_allclose(a, b, atol=1e-4)
    runtime = RankerRuntime(cfg, params, book, store)
    np.testing.assert_allclose(runtime.rank(5, history, cands, now_ms=NOW), np.asarray(predictions(a)), atol=1e-4)
    # the same post id and author with another content vector scores differently
    store.put([ids[10]], vectors[11:12])
    moved = runtime.rank(5, history, cands[:1], now_ms=NOW)
    assert np.abs(moved[0] - np.asarray(predictions(a))[0]).max() > 1e-3


def test_v2_retriever_tower_has_no_post_ids_same_content_same_embedding():
    rng = np.random.default_rng(2)
    ids, vectors, store, book = _world(rng)
    cfg = tiny_retriever_config(inputs=V2)
    assert not cfg.inputs.candidate_post_ids
    runtime = RetrieverRuntime.init(cfg)
    runtime = RetrieverRuntime(cfg, runtime.params, book, store)
    twin = _post(1, 99)
    store.put([twin], vectors[3:4])  # a brand-new post with the content of post 3
    emb = runtime.candidate_embeddings(np.asarray([ids[3], twin, ids[4]], np.uint64),
                                       np.asarray([8, 8, 8], np.uint64))
    np.testing.assert_allclose(emb[0], emb[1], atol=1e-6)
    assert np.abs(emb[0] - emb[2]).max() > 1e-3


def test_history_dwell_column_only_with_the_switch():
    item = HistoryItem(1, 2, (0,), 0, 0, 30_000)
    v1 = make_rank_batch(tiny_ranker_config(), [1], [[item]], [[CandidateItem(3, 4)]])
    ref = make_rank_batch(tiny_ranker_config(inputs=InputsConfig(history_dwell=True)), [1], [[item]],
                          [[CandidateItem(3, 4)]])
    assert v1.history_actions.shape[-1] == 18 and ref.history_actions.shape[-1] == 19
    assert ref.history_actions[0, 0, 18] == pytest.approx(0.5)
