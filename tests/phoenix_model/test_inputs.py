"""Actions, config as data, hashing and the feature arrays (no model compiled here)."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from foryou_protos import common_pb2
from phoenix.actions import ACTION_NAMES, DWELL_TIME_INDEX, NUM_ACTIONS, NUM_BINARY_ACTIONS, action_index
from phoenix.config import (HashConfig, RankerConfig, RetrieverConfig, TransformerConfig, demo_ranker_config,
                            demo_retriever_config, serving_ranker_config, tiny_ranker_config)
from phoenix.features import (CandidateItem, HistoryItem, candidate_bucket, make_rank_batch, make_user_batch,
                              pad_rank_batch)
from phoenix.hashing import hash_ids

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_action_names_follow_the_proto_enum():
    assert NUM_ACTIONS == 19 and NUM_BINARY_ACTIONS == 18 and DWELL_TIME_INDEX == 18
    assert ACTION_NAMES[-1] == "dwell_time"
    for value in range(1, 19):
        assert ACTION_NAMES[action_index(value)] == common_pb2.Action.Name(value).lower()
    assert action_index(common_pb2.FAVORITE) == 0 and action_index(common_pb2.REPORT) == 17


@pytest.mark.parametrize("bad", [0, 19, -1])
def test_action_index_rejects_unknown_values(bad):
    with pytest.raises(ValueError):
        action_index(bad)


@pytest.mark.parametrize("config", [demo_ranker_config(), serving_ranker_config(),
                                    tiny_ranker_config(prefix_attention="bidirectional",
                                                       candidate_positions="sequential")])
def test_ranker_config_round_trips_through_json(config):
    assert RankerConfig.from_json(config.to_json()) == config
    assert RankerConfig.from_dict(json.loads(json.dumps(dataclasses.asdict(config)))) == config


def test_demo_config_has_the_reference_sizes():
    cfg = demo_ranker_config()
    m = cfg.model
    assert (m.emb_size, m.num_layers, m.num_q_heads, m.num_kv_heads, m.key_size) == (128, 2, 2, 2, 64)
    assert (m.widening_factor, m.attn_output_multiplier, m.ffn_size) == (2.0, 0.125, 176)
    assert (cfg.history_len, cfg.num_candidates, cfg.num_actions, cfg.product_surface_vocab_size) == (32, 8, 19, 16)
    assert (cfg.prefix_attention, cfg.candidate_positions) == ("causal", "shared")
    serving = serving_ranker_config()
    assert (serving.model.emb_size, serving.model.num_layers, serving.history_len) == (256, 4, 512)
    assert RetrieverConfig.from_json(demo_retriever_config().to_json()) == demo_retriever_config()


@pytest.mark.parametrize("kwargs", [{"prefix_attention": "full"}, {"candidate_positions": "random"},
                                    {"position_ids": "x"}, {"num_actions": 3}])
def test_invalid_ranker_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        tiny_ranker_config(**kwargs)


def test_invalid_sizes_are_rejected():
    with pytest.raises(ValueError):
        TransformerConfig(num_q_heads=3, num_kv_heads=2)
    with pytest.raises(ValueError):
        HashConfig(item_vocab_size=1)
    with pytest.raises(ValueError):
        RankerConfig.from_dict({"no_such_field": 1})


def test_hashes_are_in_range_and_zero_is_padding():
    ids = np.array([0, 1, 2, 2**63 + 5, 2**64 - 1, 123456789], dtype=np.uint64)
    h = hash_ids(ids, num_hashes=3, num_buckets=97, seed=7)
    assert h.shape == (6, 3) and h.dtype == np.int32
    assert (h[0] == 0).all()
    assert ((h[1:] >= 1) & (h[1:] <= 96)).all()


def test_hashes_are_deterministic_seeded_and_independent():
    ids = np.arange(1, 20_001, dtype=np.uint64)
    a = hash_ids(ids, 2, 1000, seed=0)
    assert np.array_equal(a, hash_ids(ids, 2, 1000, seed=0))
    assert not np.array_equal(a, hash_ids(ids, 2, 1000, seed=1))
    assert np.mean(a[:, 0] == a[:, 1]) < 0.01  # the two hash functions differ
    counts = np.bincount(a[:, 0], minlength=1000)[1:]
    assert counts.min() > 0 and counts.max() < 3 * counts.mean()  # roughly uniform


def test_hashes_are_identical_in_another_process():
    code = ("import numpy as np; from phoenix.hashing import hash_ids; "
            "print(hash_ids(np.array([1, 42, 2**40], dtype=np.uint64), 2, 65536, 3).tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123"}, cwd=REPO_ROOT)
    expected = hash_ids(np.array([1, 42, 2**40], dtype=np.uint64), 2, 65536, 3).tolist()
    assert json.loads(out.stdout) == expected


def test_candidate_buckets_repeat_shapes():
    assert [candidate_bucket(n) for n in (0, 1, 8, 9, 100, 1000, 1024, 1025, 3000)] == \
        [8, 8, 8, 16, 128, 1024, 1024, 2048, 3072]


def test_rank_batch_keeps_the_most_recent_history_oldest_first_and_pads():
    cfg = tiny_ranker_config()  # history_len 8
    history = [HistoryItem(post_id=100 + i, author_id=7, actions=(i % 18,), surface=i % 3) for i in range(11)]
    cands = [CandidateItem(500, 9, 2), CandidateItem(501, 9)]
    batch = make_rank_batch(cfg, [42, 43], [history, history[:3]], [cands, cands[:1]])
    h = cfg.hash
    assert batch.user_hashes.shape == (2, h.num_user_hashes)
    assert batch.history_post_hashes.shape == (2, 8, h.num_item_hashes)
    assert batch.history_author_hashes.shape == (2, 8, h.num_author_hashes)
    assert batch.history_actions.shape == (2, 8, 18) and batch.history_actions.dtype == np.float32
    assert batch.candidate_post_hashes.shape == (2, 8, h.num_item_hashes)  # bucketed
    expected_posts = np.array([103 + i for i in range(8)], dtype=np.uint64)
    assert np.array_equal(batch.history_post_hashes[0],
                          hash_ids(expected_posts, h.num_item_hashes, h.item_vocab_size, h.seed))
    assert batch.history_actions[0, 0].argmax() == 3 and batch.history_actions[0, 0].sum() == 1
    assert (batch.history_post_hashes[1, 3:] == 0).all() and (batch.history_post_hashes[1, :3] != 0).all()
    assert batch.candidate_mask.tolist()[1] == [True] + [False] * 7
    assert batch.candidate_surface[0, 0] == 2
    padded = pad_rank_batch(batch, batch_size=4, num_candidates=16)
    assert padded.candidate_post_hashes.shape == (4, 16, h.num_item_hashes)
    assert (padded.user_hashes[2:] == 0).all()


@pytest.mark.parametrize("history,cands,match", [
    ([HistoryItem(1, 1, (18,))], [], "action index"),
    ([HistoryItem(1, 1, (), surface=16)], [], "surface"),
    ([HistoryItem(0, 1, ())], [], "post_id"),
    ([], [CandidateItem(0, 1)], "post_id"),
])
def test_bad_items_are_rejected_with_the_field_named(history, cands, match):
    with pytest.raises(ValueError, match=match):
        make_rank_batch(tiny_ranker_config(), [1], [history], [cands])


def test_too_many_candidates_for_a_fixed_width_is_an_error():
    with pytest.raises(ValueError):
        make_rank_batch(tiny_ranker_config(), [1], [[]], [[CandidateItem(1, 1)] * 5], num_candidates=4)
    users = make_user_batch(tiny_ranker_config(), [1, 2], [[], []])
    assert users.history_surface.shape == (2, 8)
