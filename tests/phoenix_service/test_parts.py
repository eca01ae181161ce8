"""Event files, checkpoints, micro-batching and metrics: the parts under the server and trainer."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from foryou import topics
from foryou.event_file import EventFileError, read_events, write_events
from foryou_protos import common_pb2, events_pb2
from phoenix import checkpoints
from phoenix.config import tiny_ranker_config
from phoenix.evaluation.metrics import log_loss, ndcg_at_k, recall_at_k, roc_auc
from phoenix.server_batching import MicroBatcher


def test_event_file_round_trip_and_errors(tmp_path):
    events = [
        (topics.POSTS, events_pb2.PostEvent(created=common_pb2.Post(post_id=5, author_id=2))),
        (topics.ENGAGEMENTS, common_pb2.Engagement(user_id=1, post_id=5, actions=[common_pb2.FAVORITE])),
        (topics.SERVED, events_pb2.ServedEvent(user_id=1, post_ids=[5, 6])),
        (topics.USERS, events_pb2.UserEvent(user_id=1, follow=2)),
    ]
    path = tmp_path / "world.events"
    assert write_events(path, events) == 4
    assert list(read_events(path)) == events
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(EventFileError, match="truncated"):
        list(read_events(path))
    (tmp_path / "bad").write_bytes(b"not an event file")
    with pytest.raises(EventFileError, match="header"):
        list(read_events(tmp_path / "bad"))
    with pytest.raises(ValueError, match="unknown topic"):
        write_events(tmp_path / "x", [("nope", events[0][1])])


def test_checkpoint_round_trip_and_newest_step(tmp_path):
    from phoenix.losses import ranker_init_params

    config = tiny_ranker_config()
    params = ranker_init_params(config, seed=1)
    assert checkpoints.latest(tmp_path, checkpoints.RANKER) is None
    checkpoints.save(tmp_path, checkpoints.RANKER, 5, params, config, {"note": 1.0})
    ref = checkpoints.save(tmp_path, checkpoints.RANKER, 20, params, config)
    (tmp_path / "ranker" / "99").mkdir()  # an incomplete directory is not a checkpoint
    latest = checkpoints.latest(tmp_path, checkpoints.RANKER)
    assert latest == ref and latest.checkpoint_id == "ranker-20"
    loaded_config, loaded = checkpoints.load(latest)
    assert loaded_config == config
    import jax
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(loaded)):
        np.testing.assert_array_equal(np.asarray(a), b)
    assert checkpoints.load_metrics(checkpoints.CheckpointRef("ranker", 5, tmp_path / "ranker" / "5", 0)) == {"note": 1.0}
    again = checkpoints.save(tmp_path, checkpoints.RANKER, 20, params, config)  # retrained: replaces
    assert checkpoints.latest(tmp_path, checkpoints.RANKER).stamp == again.stamp


async def test_micro_batcher_groups_concurrent_items_and_keeps_order():
    seen = []

    def double(items):
        seen.append(list(items))
        return [x * 2 for x in items]

    batcher = MicroBatcher("t", double, max_batch=4, max_wait_ms=50)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert results == [i * 2 for i in range(10)]
    assert all(len(b) <= 4 for b in seen) and len(seen) < 10
    assert [x for b in seen for x in b] == list(range(10))
    await batcher.close()


async def test_micro_batcher_failure_reaches_every_caller():
    def boom(items):
        raise RuntimeError("model failed")

    batcher = MicroBatcher("t", boom, max_batch=8, max_wait_ms=20)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    await batcher.close()


def test_metrics_on_known_values():
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)  # ties count half
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.1, 0.2])))
    assert log_loss(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(np.log(2))
    ranks = np.array([0, 4, 20])
    assert recall_at_k(ranks, 5) == pytest.approx(2 / 3)
    assert ndcg_at_k(ranks, 5) == pytest.approx((1 + 1 / np.log2(6)) / 3)


def test_rank_response_packs_predictions_and_the_content_vectors_of_a_content_model():
    from types import SimpleNamespace

    from phoenix.config import V2_INPUTS
    from phoenix.content import CONTENT_DIM, ContentStore, PostFeatureView
    from phoenix.features import CandidateItem
    from phoenix.server import rank_response

    store = ContentStore()
    vector = np.zeros((1, CONTENT_DIM), np.float32)
    vector[0, :2] = 0.6, 0.8
    store.put([10], vector)
    values = np.arange(2 * 19, dtype=np.float32).reshape(2, 19) / 100
    candidates = [CandidateItem(10, 1), CandidateItem(11, 1)]   # 11: no content known
    content_model = SimpleNamespace(config=tiny_ranker_config(inputs=V2_INPUTS), features=PostFeatureView(store, None))
    reply = rank_response(content_model, candidates, values, "ck")
    np.testing.assert_allclose(np.asarray(reply.predictions).reshape(2, reply.num_outputs), values)
    assert reply.content_dim == CONTENT_DIM
    content = np.asarray(reply.content_vectors).reshape(2, CONTENT_DIM)
    np.testing.assert_allclose(content[0, :3], [0.6, 0.8, 0.0], atol=1e-3)   # stored as float16
    assert not content[1].any()
    ids_only = SimpleNamespace(config=tiny_ranker_config(), features=None)
    reply = rank_response(ids_only, candidates, values, "ck")
    assert reply.content_dim == 0 and len(reply.content_vectors) == 0 and reply.checkpoint_id == "ck"
