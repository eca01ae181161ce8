"""Integration: the real broker, a real Phoenix server (grpc.aio, tiny preset), called as a
client: catch-up before SERVING, Rank and Retrieve shapes and ordering, deletes, expiry,
exclusions, validation, micro-batching, malformed records, hot reload."""
from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from foryou import snowflake, topics
from foryou_protos import common_pb2, phoenix_pb2
from phoenix import checkpoints
from phoenix.actions import ACTION_NAMES
from phoenix.config import tiny_retriever_config
from phoenix.features import HistoryItem
from phoenix.rerank import Affinity, Freshness, Scoring
from phoenix.server_corpus import RECORDS

from tests.phoenix_service.conftest import AUTHOR_BASE, created, deleted, new_post_id, publish
from tests.waiting import eventually

pytestmark = pytest.mark.slow  # trains or starts stacks: scheduled first (tests/conftest.py)

MAX_K = 500


def candidates(posts) -> dict:
    """RankRequest fields for (post id, author id) pairs: packed id columns."""
    return {"post_ids": [p for p, _ in posts], "author_ids": [a for _, a in posts], "surface": common_pb2.HOME_FOR_YOU}


def predictions(reply) -> np.ndarray:
    return np.asarray(reply.predictions).reshape(-1, reply.num_outputs or 19)


def history(posts):
    return [phoenix_pb2.HistoryItem(post_id=p, author_id=a, actions=[common_pb2.FAVORITE, common_pb2.REPLY])
            for p, a in posts]


async def retrieve_ids(stub, **fields) -> list[int]:
    reply = await stub.Retrieve(phoenix_pb2.RetrieveRequest(user_id=fields.pop("user_id", 1), k=fields.pop("k", MAX_K),
                                                            **fields))
    return [p.post_id for p in reply.posts]


async def test_posts_published_before_start_are_indexed_when_serving(stub, phoenix, seeded_posts):
    # the fixture waited for SERVING: the corpus had caught up with the topic by then
    assert all(p in phoenix.index for p, _ in seeded_posts)
    info = await stub.ModelInfo(phoenix_pb2.ModelInfoRequest())
    assert info.corpus_size >= len(seeded_posts)
    assert list(info.action_names) == list(ACTION_NAMES)
    assert info.max_history == 8 and info.max_candidates == 64
    assert "ranker-init-tiny" in info.checkpoint_id
    found = await retrieve_ids(stub)
    assert {p for p, _ in seeded_posts} <= set(found)


async def test_rank_returns_19_values_per_candidate_in_request_order(stub, seeded_posts):
    posts = seeded_posts[:12]
    reply = await stub.Rank(phoenix_pb2.RankRequest(user_id=5, history=history(seeded_posts[20:23]),
                                                    **candidates(posts), request_id="r1"))
    assert reply.num_outputs == 19
    values = predictions(reply)
    assert values.shape == (12, 19)
    assert reply.content_dim == 0 and not reply.content_f16  # the tiny model has no content input
    assert np.all((values[:, :18] >= 0) & (values[:, :18] <= 1))
    # candidate isolation: a candidate scores the same alone as among others, in any slot
    alone = await stub.Rank(phoenix_pb2.RankRequest(user_id=5, history=history(seeded_posts[20:23]),
                                                    **candidates(posts[7:8])))
    np.testing.assert_allclose(predictions(alone)[0], values[7], rtol=1e-4, atol=1e-5)
    reordered = await stub.Rank(phoenix_pb2.RankRequest(user_id=5, history=history(seeded_posts[20:23]),
                                                        **candidates(posts[::-1])))
    np.testing.assert_allclose(predictions(reordered), values[::-1], rtol=1e-4, atol=1e-5)


async def test_rank_with_no_candidates_is_empty(stub):
    reply = await stub.Rank(phoenix_pb2.RankRequest(user_id=5))
    assert len(reply.predictions) == 0 and reply.checkpoint_id


async def test_retrieve_is_the_exact_top_k_best_first(stub, phoenix):
    reply = await stub.Retrieve(phoenix_pb2.RetrieveRequest(user_id=77, k=10))
    scores = [p.score for p in reply.posts]
    assert len(reply.posts) == 10 and scores == sorted(scores, reverse=True)
    assert reply.corpus_size == len(phoenix.index)
    user = phoenix.models.retriever.user_embeddings([77], [[]])
    expected = phoenix.index.search(user, 10, exact=True)[0]
    assert [p.post_id for p in reply.posts] == [p.post_id for p in expected]
    np.testing.assert_allclose(scores, [p.score for p in expected], rtol=1e-4, atol=1e-5)


async def test_exclusions_are_honoured(stub, seeded_posts):
    mine = {p for p, _ in seeded_posts}
    excluded_posts = [p for p, _ in seeded_posts[:5]]
    excluded_author = AUTHOR_BASE + 1
    found = await retrieve_ids(stub, exclude_post_ids=excluded_posts, exclude_author_ids=[excluded_author])
    assert not set(excluded_posts) & set(found)
    by_author = dict(seeded_posts)
    assert all(by_author[p] != excluded_author for p in found if p in mine)
    # the rest of this suite's posts are all still there
    expected = {p for p, a in seeded_posts[5:] if a != excluded_author}
    assert expected <= set(found)


async def test_new_posts_are_indexed_and_deleted_posts_never_returned(stub, phoenix, producer):
    author = AUTHOR_BASE + 50
    posts = [new_post_id() for _ in range(6)]
    await publish(producer, [created(p, author) for p in posts])
    await eventually(lambda: all(p in phoenix.index for p in posts), what="new posts indexed")
    assert set(posts) <= set(await retrieve_ids(stub))
    gone = posts[:3]
    await publish(producer, [deleted(p, author) for p in gone])
    await eventually(lambda: not any(p in phoenix.index for p in gone), what="deletes applied")
    for user_id in (1, 2, 3):
        assert not set(gone) & set(await retrieve_ids(stub, user_id=user_id))
    assert set(posts[3:]) <= set(await retrieve_ids(stub))


async def test_expired_posts_are_not_indexed(phoenix, producer):
    old = new_post_id(age_ms=72 * 3600 * 1000)      # older than the 48 h retention
    marker = new_post_id()
    await publish(producer, [created(old, AUTHOR_BASE + 60), created(marker, AUTHOR_BASE + 60)])
    await eventually(lambda: marker in phoenix.index, what="marker indexed")
    assert old not in phoenix.index


async def test_malformed_posts_record_is_counted_and_skipped(phoenix, producer):
    before = RECORDS.labels("malformed")._value.get()
    marker = new_post_id()
    await producer.send_and_wait(topics.POSTS, b"\xff\x00 not a protobuf", key=b"123")
    await publish(producer, [created(marker, AUTHOR_BASE + 61)])
    await eventually(lambda: marker in phoenix.index, what="record after the malformed one")
    assert RECORDS.labels("malformed")._value.get() == before + 1


# Out-of-range enum values on purpose; protobuf's stubs type enum fields as the enum class.
@pytest.mark.parametrize("method,request_,field", [
    ("Rank", phoenix_pb2.RankRequest(user_id=0), "user_id"),
    ("Retrieve", phoenix_pb2.RetrieveRequest(user_id=0, k=5), "user_id"),
    ("Rank", phoenix_pb2.RankRequest(user_id=1, history=[phoenix_pb2.HistoryItem(post_id=5, author_id=1, actions=[99])]),  # type: ignore[list-item]
     "history[0].actions[0]"),
    ("Rank", phoenix_pb2.RankRequest(user_id=1, history=[phoenix_pb2.HistoryItem(post_id=5, actions=[1])] * 9),  # type: ignore[list-item]
     "history"),
    ("Rank", phoenix_pb2.RankRequest(user_id=1, post_ids=[5] * 65, author_ids=[1] * 65), "post_ids"),
    ("Rank", phoenix_pb2.RankRequest(user_id=1, post_ids=[5, 0], author_ids=[1, 1]), "post_ids[1]"),
    ("Rank", phoenix_pb2.RankRequest(user_id=1, post_ids=[5, 6], author_ids=[1]), "author_ids"),
    ("Rank", phoenix_pb2.RankRequest(user_id=1, post_ids=[5], author_ids=[1], surface=40),  # type: ignore[arg-type]
     "surface"),
    ("Rank", phoenix_pb2.RankRequest(user_id=1, post_ids=[5], author_ids=[1], surfaces=[1, 1]),  # type: ignore[list-item]
     "surfaces"),
    ("Retrieve", phoenix_pb2.RetrieveRequest(user_id=1, k=0), "k"),
    ("Retrieve", phoenix_pb2.RetrieveRequest(user_id=1, k=MAX_K + 1), "k"),
])
async def test_invalid_requests_are_rejected_naming_the_field(stub, method, request_, field):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await getattr(stub, method)(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(field)


async def test_concurrent_calls_are_batched_with_the_same_results(stub, phoenix, seeded_posts):
    users = list(range(101, 117))
    rank = [phoenix_pb2.RankRequest(user_id=u, history=history(seeded_posts[u % 7: u % 7 + 3]),
                                    **candidates(seeded_posts[u % 5: u % 5 + 3 + u % 4])) for u in users]
    retrieve = [phoenix_pb2.RetrieveRequest(user_id=u, k=5 + u % 3, history=history(seeded_posts[u % 9: u % 9 + 2]),
                                            exclude_author_ids=[AUTHOR_BASE + u % 4]) for u in users]
    single_rank = [await stub.Rank(r) for r in rank]
    single_retrieve = [await stub.Retrieve(r) for r in retrieve]
    rank_batches = phoenix.rank_batcher.batches_run
    retrieve_batches = phoenix.retrieve_batcher.batches_run
    together = await asyncio.gather(*(stub.Rank(r) for r in rank), *(stub.Retrieve(r) for r in retrieve))
    assert phoenix.rank_batcher.batches_run - rank_batches < len(users)
    assert phoenix.retrieve_batcher.batches_run - retrieve_batches < len(users)
    for one, many in zip(single_rank, together[:len(users)]):
        assert predictions(one).shape == predictions(many).shape
        np.testing.assert_allclose(predictions(one), predictions(many), rtol=1e-4, atol=1e-5)
    for one, many in zip(single_retrieve, together[len(users):]):
        assert [p.post_id for p in one.posts] == [p.post_id for p in many.posts]


async def test_new_retriever_checkpoint_is_hot_reloaded_and_corpus_reembedded(stub, phoenix, seeded_posts):
    from phoenix.losses import retriever_init_params

    config = tiny_retriever_config()
    params = retriever_init_params(config, seed=123)
    before = len(phoenix.index)
    old_vector = phoenix.index.vector(seeded_posts[0][0])
    checkpoints.save(phoenix.settings.checkpoint_dir, checkpoints.RETRIEVER, 7, params, config,
                     scoring={"freshness_weight": 0.5, "affinity_weight": 2.0})
    await eventually(lambda: phoenix.models.retriever_ref is not None, timeout_s=60, what="reload")
    assert phoenix.models.scoring.freshness == Freshness(0.5) and phoenix.models.scoring.affinity == Affinity(2.0)
    info = await stub.ModelInfo(phoenix_pb2.ModelInfoRequest())
    assert "retriever-7" in info.checkpoint_id and "ranker-init-tiny" in info.checkpoint_id
    assert info.corpus_size >= before
    new_vector = phoenix.index.vector(seeded_posts[0][0])
    assert not np.allclose(old_vector, new_vector)
    reply = await stub.Retrieve(phoenix_pb2.RetrieveRequest(user_id=3, k=5))
    assert reply.checkpoint_id == info.checkpoint_id and len(reply.posts) == 5
    # The checkpoint's freshness weight is served: similarity + 0.5 * -log1p(age hours) at request time.
    user = phoenix.models.retriever.user_embeddings([3], [[]])
    expected = phoenix.index.search(user, 5, scoring=Scoring(Freshness(0.5)), now_ms=snowflake.now_ms())[0]
    assert [p.post_id for p in reply.posts] == [p.post_id for p in expected]
    np.testing.assert_allclose([p.score for p in reply.posts], [p.score for p in expected], atol=1e-4)
    plain = [phoenix.index.vector(p.post_id) @ user[0] for p in reply.posts]
    bonus = np.array([p.score for p in reply.posts]) - np.array(plain)
    assert np.all(bonus <= 1e-6) and np.any(bonus < -1e-4)  # posts have an age: the bonus is negative
    # and its affinity weight: + 2 * log1p(2) for the posts of the author engaged with twice
    liked = [p for p in seeded_posts if p[1] == AUTHOR_BASE + 1]
    reply = await stub.Retrieve(phoenix_pb2.RetrieveRequest(user_id=3, k=5, history=history(liked[:2])))
    assert {p.author_id for p in reply.posts} == {AUTHOR_BASE + 1}
    actions = tuple(sorted(a - 1 for a in (common_pb2.FAVORITE, common_pb2.REPLY)))  # model indices
    user = phoenix.models.retriever.user_embeddings([3], [[HistoryItem(p, a, actions) for p, a in liked[:2]]])
    expected = phoenix.index.search(user, 5, scoring=Scoring(Freshness(0.5), Affinity(2.0)), now_ms=snowflake.now_ms(),
                                    engaged=[{AUTHOR_BASE + 1: 2}])[0]
    assert [p.post_id for p in reply.posts] == [p.post_id for p in expected]


async def test_foryou_phoenix_command_serves_and_stops_gracefully(kafka, seeded_posts):
    from foryou.broker import free_port
    from foryou.process import ServiceProcess
    from foryou_protos import phoenix_pb2_grpc

    port = free_port()
    process = ServiceProcess("phoenix", ["--port", str(port), "--metrics-port", "0", "--kafka-bootstrap", kafka,
                                         "--preset", "tiny"], f"127.0.0.1:{port}").start()
    try:
        await process.wait_ready(timeout_s=120)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = await phoenix_pb2_grpc.PhoenixServiceStub(channel).ModelInfo(phoenix_pb2.ModelInfoRequest())
        assert info.corpus_size >= len(seeded_posts) and info.max_history == 8
        proc = process.proc
        process.stop(timeout_s=20)
        assert proc.returncode == 0, process.log_tail()
    finally:
        process.kill()
