"""The ranker's post-kind input: photo / video / kind codes from the Post proto, kept per post by
the content store (reposts take their original's media), read by training and serving alike,
absent from the retriever and from configs saved before the switch."""
from __future__ import annotations

import dataclasses

import numpy as np

from foryou import snowflake, topics
from foryou_protos import common_pb2, events_pb2
from phoenix.config import V2_INPUTS, RankerConfig, tiny_ranker_config, tiny_retriever_config
from phoenix.content import ContentStore, PostFeatureView
from phoenix.features import CandidateItem, HistoryItem, make_rank_batch, make_user_batch
from phoenix.post_kind import QUOTE, REPLY, REPOST, post_kind_codes, post_kind_of
from phoenix.ranker import predictions
from phoenix.retriever import retriever_init_params
from phoenix.runtime import RankerRuntime
from phoenix.training.event_log import collect
from phoenix.training.window import merge, trim
from tests.phoenix_model.phoenix_model_helpers import compiled, params_for

NOW = 1_800_000_000_000
V2 = dataclasses.replace(V2_INPUTS, sid_levels=0)  # content + kinds, no codebook to fit


def _id(seq: int, minutes_ago: float = 10) -> int:
    return snowflake.make_id(int(NOW - minutes_ago * 60_000), low_bits=seq)


def test_codes_from_post_columns_and_messages_agree():
    codes = post_kind_codes(photo_count=[0, 1, 4, 0, 0, 0], video_duration_ms=[0, 0, 10_000, 10_001, 90_000, 400_000],
                            in_reply_to_post_id=[0, 0, 5, 5, 0, 5], repost_of_post_id=[0, 0, 0, 0, 7, 0],
                            quote_of_post_id=[0, 0, 0, 9, 9, 0])
    np.testing.assert_array_equal(codes, [[1, 1, 1], [2, 1, 1], [3, 2, REPLY], [1, 3, QUOTE], [1, 4, REPOST],
                                          [1, 5, REPLY]])
    post = common_pb2.Post(post_id=3, photo_count=2, video_duration_ms=61_000, quote_of_post_id=4, in_reply_to_post_id=5)
    np.testing.assert_array_equal(post_kind_of(post), [3, 4, QUOTE])


def test_store_keeps_codes_and_a_repost_takes_its_originals_media():
    store = ContentStore(initial_capacity=1)
    own = post_kind_codes([2, 0, 0], [0, 0, 0], [0, 0, 0], [0, 10, 10], [0, 0, 0])  # a photo post, two reposts
    own[2] = [1, 3, REPOST]  # a repost with media of its own keeps it
    store.add_posts([10, 11, 12], ["garlic oven #cooking", "RT @maya: garlic oven #cooking", "RT x"], [0, 10, 10], own)
    store.add_posts([13], ["RT @maya: garlic"], [10], post_kind_codes([0], [0], [0], [10], [0]))  # later batch
    np.testing.assert_array_equal(store.kinds([10, 11, 12, 13, 99]),
                                  [[3, 1, 1], [3, 1, REPOST], [1, 3, REPOST], [3, 1, REPOST], [0, 0, 0]])
    store.remove([11])
    np.testing.assert_array_equal(store.kinds([11]), [[0, 0, 0]])
    store.add_posts([14], ["no codes given"])
    np.testing.assert_array_equal(store.kinds([14]), [[0, 0, 0]])


def _store_with(ids, kinds) -> ContentStore:
    store = ContentStore()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(ids), 256)).astype(np.float32)
    store.put(ids, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.asarray(kinds, np.int8))
    return store


def test_kinds_reach_history_and_candidates_and_move_scores_on_both_paths():
    ids = [_id(i) for i in range(6)]
    store = _store_with(ids, [[1, 1, 1], [2, 1, 1], [1, 4, 1], [1, 1, QUOTE], [1, 1, REPLY], [3, 1, 1]])
    cfg = tiny_ranker_config(inputs=V2)
    params = params_for(cfg)
    history = [HistoryItem(ids[0], 7, (0,), 1, NOW - 1000), HistoryItem(ids[1], 8, (3,), 1, NOW - 500)]
    cands = [CandidateItem(p, 9) for p in ids[2:]] + [CandidateItem(_id(99), 9)]  # the last one unknown
    batch = make_rank_batch(cfg, [5], [history], [cands], features=PostFeatureView(store, None), now_ms=NOW)
    np.testing.assert_array_equal(batch.history_kind[0, :3], [[1, 1, 1], [2, 1, 1], [0, 0, 0]])
    np.testing.assert_array_equal(batch.candidate_kind[0, :6], [[1, 4, 1], [1, 1, QUOTE], [1, 1, REPLY], [3, 1, 1],
                                                                [0, 0, 0], [0, 0, 0]])
    full, fast, _ = compiled(cfg)
    a, b = np.asarray(full(params, batch))[0, :5], np.asarray(fast(params, batch))[0, :5]
    np.testing.assert_allclose(a, b, atol=1e-4)
    runtime = RankerRuntime(cfg, params, None, store)
    before = runtime.rank(5, history, cands, now_ms=NOW)
    np.testing.assert_allclose(before, np.asarray(predictions(a)), atol=1e-4)
    store.put([ids[2]], store.get([ids[2]]), np.asarray([[1, 1, REPOST]], np.int8))  # same content, no video
    moved = runtime.rank(5, history, cands, now_ms=NOW)
    assert np.abs(moved[0] - before[0]).max() > 1e-4
    np.testing.assert_allclose(moved[1:], before[1:], atol=1e-6)


def test_a_config_saved_without_the_field_loads_with_the_input_off_and_ignores_kinds():
    cfg = tiny_ranker_config(inputs=V2)
    assert cfg.inputs.post_kind and V2_INPUTS.post_kind
    data = cfg.to_dict()
    del data["inputs"]["post_kind"]
    old = RankerConfig.from_dict(data)
    assert not old.inputs.post_kind and old == dataclasses.replace(cfg, inputs=dataclasses.replace(V2, post_kind=False))
    params = params_for(old)
    assert "post_kind_table" not in params["params"]["embeddings"] and "post_kind_action_bias" not in params["params"]
    ids = [_id(i) for i in range(3)]
    cands = [CandidateItem(p, 9) for p in ids]
    history = [HistoryItem(ids[0], 7, (0,), 1, NOW - 1000)]
    plain = _store_with(ids, [[0, 0, 0]] * 3)
    media = _store_with(ids, [[3, 5, QUOTE], [2, 1, REPLY], [1, 4, REPOST]])
    batch = make_rank_batch(old, [5], [history], [cands], features=PostFeatureView(media, None), now_ms=NOW)
    assert batch.candidate_kind is None and batch.history_kind is None
    np.testing.assert_array_equal(RankerRuntime(old, params, None, plain).rank(5, history, cands, now_ms=NOW),
                                  RankerRuntime(old, params, None, media).rank(5, history, cands, now_ms=NOW))


def test_the_retriever_has_no_post_kind_input():
    cfg = tiny_retriever_config(inputs=V2)
    assert cfg.inputs.post_kind
    assert "post_kind_table" not in retriever_init_params(cfg)["params"]["embeddings"]
    store = _store_with([_id(1)], [[2, 1, 1]])
    users = make_user_batch(cfg, [5], [[HistoryItem(_id(1), 7, (0,), 1, NOW)]], PostFeatureView(store, None))
    assert users.history_kind is None


def _posts_log(posts):
    return collect((topics.POSTS, events_pb2.PostEvent(created=p)) for p in posts)


def test_training_log_codes_follow_the_posts_and_survive_the_follow_window():
    original = common_pb2.Post(post_id=_id(1, 30), author_id=7, text="garlic oven #cooking", photo_count=1)
    repost = common_pb2.Post(post_id=_id(2, 20), author_id=8, text="RT @seven: garlic oven #cooking",
                             repost_of_post_id=original.post_id)
    reply = common_pb2.Post(post_id=_id(3, 10), author_id=9, text="@seven yes", in_reply_to_post_id=original.post_id,
                            video_duration_ms=5_000)
    log = _posts_log([reply, original, repost])
    np.testing.assert_array_equal(log.posts.kinds, [[2, 1, 1], [1, 1, REPOST], [1, 2, REPLY]])  # by id
    np.testing.assert_array_equal(log.content_store().kinds(log.post_ids), [[2, 1, 1], [2, 1, REPOST], [1, 2, REPLY]])
    window = merge(_posts_log([original]), _posts_log([repost, reply]))
    np.testing.assert_array_equal(window.posts.kinds, log.posts.kinds)
    kept = trim(window, 15 * 60_000)  # the original is older, but the repost refers to it
    np.testing.assert_array_equal(kept.posts.kinds, log.posts.kinds)
