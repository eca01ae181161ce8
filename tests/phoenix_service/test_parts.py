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
    from foryou.packed import float16_rows
    from phoenix.config import V2_INPUTS
    from phoenix.content import CONTENT_DIM, ContentStore
    from phoenix.features import CandidateItem
    from phoenix.runtime import RankerRuntime, Ranked
    from phoenix.server import rank_response

    store = ContentStore()
    vector = np.zeros((1, CONTENT_DIM), np.float32)
    vector[0, :2] = 0.6, 0.8
    store.put([10], vector)
    candidates = [CandidateItem(10, 1), CandidateItem(11, 1)]   # 11: no content known
    content_model = RankerRuntime.init(tiny_ranker_config(inputs=V2_INPUTS))
    content_model.use_store(store)
    [ranked] = content_model.rank_many_ranked([(1, (), candidates)], now_ms=1)
    reply = rank_response(ranked, "ck")
    values = np.asarray(reply.predictions).reshape(2, reply.num_outputs)
    np.testing.assert_array_equal(values, content_model.rank(1, (), candidates, now_ms=1))
    assert reply.content_dim == CONTENT_DIM
    assert len(reply.content_f16) == 2 * CONTENT_DIM * 2   # float16 bytes
    content = float16_rows(reply.content_f16, reply.content_dim)
    np.testing.assert_array_equal(content, store.get([10, 11]))   # the batch's rows, as a fresh lookup reads them
    np.testing.assert_allclose(content[0, :3], [0.6, 0.8, 0.0], atol=1e-3)   # stored as float16
    assert not content[1].any()
    reply = rank_response(Ranked(values, None), "ck")   # a model without content input
    assert reply.content_dim == 0 and not reply.content_f16 and reply.checkpoint_id == "ck"


def test_a_rank_request_decodes_to_the_columns_the_model_batch_was_built_from_before():
    """The packed columns are read as arrays (no CandidateItem per candidate); the model's batch
    is the same, array for array, as the one built from CandidateItems."""
    from dataclasses import fields

    from foryou.packed import field_number, packed
    from foryou_protos import phoenix_pb2
    from phoenix.config import V2_INPUTS
    from phoenix.content import CONTENT_DIM, ContentStore, PostFeatureView
    from phoenix.features import CandidateItem, Candidates, RankBatch, hash_candidates, make_rank_batch
    from phoenix.server_validation import Limits, ValidationError, rank_input

    limits = Limits(max_history=8, max_candidates=100, max_k=10, surface_vocab=16)
    posts, authors = np.array([10, 2**63 + 5, 12], np.uint64), np.array([1, 2**40, 3], np.uint64)

    def request(**fields_):
        req = phoenix_pb2.RankRequest(user_id=7, **fields_)
        req.MergeFromString(packed(field_number(phoenix_pb2.RankRequest, "post_ids"), posts)
                            + packed(field_number(phoenix_pb2.RankRequest, "author_ids"), authors))
        return req

    got = rank_input(request(surfaces=[2, 0, 5]), limits).candidates
    assert got.post_ids.dtype == np.uint64 and got.post_ids.tolist() == posts.tolist()
    assert got.author_ids.tolist() == authors.tolist() and got.surfaces.tolist() == [2, 0, 5]
    assert rank_input(request(surface=3), limits).candidates.surfaces.tolist() == [3, 3, 3]
    with pytest.raises(ValidationError, match=r"surfaces: unknown product surface 16"):
        rank_input(request(surfaces=[1, 16, 2]), limits)
    with pytest.raises(ValidationError, match=r"surface: unknown product surface 17"):
        rank_input(request(surface=17), limits)
    zero = phoenix_pb2.RankRequest(user_id=7, post_ids=[4, 0], author_ids=[1, 1])
    with pytest.raises(ValidationError, match=r"post_ids\[1\] is required"):
        rank_input(zero, limits)

    store = ContentStore()
    store.put([10, 12], np.ones((2, CONTENT_DIM), np.float32))
    config = tiny_ranker_config(inputs=V2_INPUTS)
    items = [CandidateItem(int(p), int(a), s) for p, a, s in zip(posts, authors, [2, 0, 5])]
    view = PostFeatureView(store, None)
    before = make_rank_batch(config, [7, 8], [[], []], [items, items[:1]], features=view, now_ms=5)
    now = make_rank_batch(config, [7, 8], [[], []], [got, Candidates.of(items[:1])], features=view, now_ms=5)
    for f in fields(RankBatch):
        old, new = getattr(before, f.name), getattr(now, f.name)
        assert (old is None and new is None) or np.array_equal(old, new), f.name
    post_hashes, author_hashes = hash_candidates(config.hash, posts, authors)   # each column in its place
    assert now.candidate_surface.tolist() == [[2, 0, 5, 0, 0, 0, 0, 0], [2, 0, 0, 0, 0, 0, 0, 0]]
    np.testing.assert_array_equal(now.candidate_post_hashes[0, :3], post_hashes)
    np.testing.assert_array_equal(now.candidate_author_hashes[0, :3], author_hashes)
    assert not now.candidate_post_hashes[0, 3:].any() and not now.candidate_post_hashes[1, 1:].any()
    np.testing.assert_array_equal(now.candidate_content[0, :3], store.get(posts))


async def test_the_corpus_feeder_stores_each_posts_kind_codes_reposts_with_their_originals_media():
    from dataclasses import dataclass

    from foryou import snowflake
    from phoenix.content import ContentStore
    from phoenix.index import CorpusIndex
    from phoenix.post_kind import QUOTE, REPOST
    from phoenix.server_corpus import CorpusFeeder

    @dataclass
    class Record:  # the fields of an aiokafka record the feeder reads
        key: bytes
        value: bytes
        partition: int = 0
        offset: int = 0

    def created(low: int, **fields) -> tuple[int, Record]:
        pid = snowflake.make_id(snowflake.now_ms() - 60_000, low)
        post = common_pb2.Post(post_id=pid, author_id=7, created_at_ms=snowflake.created_at_ms(pid), text="x", **fields)
        return pid, Record(str(pid).encode(), topics.encode(events_pb2.PostEvent(created=post)))

    index, store = CorpusIndex(4), ContentStore()
    feeder = CorpusFeeder("unused:0", lambda: (index, lambda ids, _: np.ones((len(ids), 4), np.float32)),
                          max_age_ms=48 * 3600 * 1000, content=store)
    video, video_record = created(1, video_duration_ms=30_000)
    repost, repost_record = created(2, repost_of_post_id=video, repost_of_user_id=7)
    await feeder.apply([video_record, repost_record])
    quote, quote_record = created(3, quote_of_post_id=video, photo_count=2)
    later, later_record = created(4, repost_of_post_id=video, repost_of_user_id=7)
    await feeder.apply([quote_record, later_record])
    np.testing.assert_array_equal(store.kinds([video, repost, quote, later]),
                                  [[1, 3, 1], [1, 3, REPOST], [3, 1, QUOTE], [1, 3, REPOST]])
