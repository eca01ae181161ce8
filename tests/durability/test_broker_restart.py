"""The embedded broker killed (-9) and restarted under a stream of events and requests.

Durable storage: every event produced before, during and after is in Thunder and in the Phoenix
corpus afterwards, without a rebuild; no consumer reports lag 0 while behind; a HomeMixer in
front of that Thunder (Phoenix unreachable, its served-event producer on the killed broker)
answers every feed request during the kill, and its in-network feed has the author's newest
posts afterwards. Memory storage:
the restarted broker has lost the log; the consumers notice, say so (metric), and rebuild from
the log as it now is, instead of silently skipping its first records."""
from __future__ import annotations

import asyncio

import grpc
from aiokafka import AIOKafkaProducer

from tests.durability.conftest import restart, start_consumers
from tests.durability.helpers import follow, post_event, sample
from tests.waiting import eventually
from foryou import topics
from foryou.broker import create_topics
from foryou.broker import free_port
from foryou.grpc_server import ServiceServer
from foryou_protos import home_mixer_pb2, home_mixer_pb2_grpc, thunder_pb2, thunder_pb2_grpc
from home_mixer.clients import PhoenixClient, ThunderClient
from home_mixer.pipeline import build_pipeline
from home_mixer.service import ScoredPostsServicer
from home_mixer.side_effects.record_served import ServedPublisher

VIEWER = 4343


async def _produce_stream(bootstrap: str, author: int, n: int, sent: list[int], pause_s: float = 0.005) -> None:
    """n posts one by one; a send that fails (broker down) is retried until acked."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, request_timeout_ms=10_000)
    await producer.start()
    try:
        for _ in range(n):
            event = post_event(author)
            while True:
                try:
                    await producer.send_and_wait(topics.POSTS, topics.encode(event),
                                                 key=topics.key_for(topics.POSTS, event))
                    break
                except Exception:
                    await asyncio.sleep(0.2)
            sent.append(event.created.post_id)
            await asyncio.sleep(pause_s)
    finally:
        await producer.stop()


async def _follow(bootstrap: str, viewer: int, author: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        event = follow(viewer, author)
        await producer.send_and_wait(topics.USERS, topics.encode(event), key=topics.key_for(topics.USERS, event))
    finally:
        await producer.stop()


async def _request_stream(address: str, author: int, stop: asyncio.Event, answers: list) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = thunder_pb2_grpc.ThunderServiceStub(channel)
        while not stop.is_set():
            try:
                reply = await stub.GetInNetworkPosts(thunder_pb2.GetInNetworkPostsRequest(
                    user_id=1, following_user_ids=[author]), timeout=5)
                answers.append(len(reply.posts.post_ids))
            except grpc.aio.AioRpcError as exc:
                answers.append(exc.code())
            await asyncio.sleep(0.02)




async def _home_mixer(thunder_address: str, bootstrap: str):
    """An in-process HomeMixer: Thunder at `thunder_address`, Phoenix unreachable, its served
    events published to the broker under test."""
    thunder = ThunderClient(thunder_address, timeout_s=2.0)
    phoenix = PhoenixClient(f"127.0.0.1:{free_port()}", timeout_s=0.2)
    publisher = ServedPublisher(bootstrap)
    server = ServiceServer("home_mixer_durability", ["foryou.ScoredPostsService"], port=0)
    home_mixer_pb2_grpc.add_ScoredPostsServiceServicer_to_server(
        ScoredPostsServicer(build_pipeline(thunder, phoenix, publisher)), server.server)
    await server.start()
    await server.set_serving()

    async def close() -> None:
        await server.stop(0)
        await publisher.close()
        await thunder.close()
        await phoenix.close()
    return server.address, close


async def _feed_stream(address: str, stop: asyncio.Event, feeds: list) -> None:
    """The viewer's in-network feed, again and again: post ids, or the error code."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = home_mixer_pb2_grpc.ScoredPostsServiceStub(channel)
        while not stop.is_set():
            try:
                reply = await stub.GetScoredPosts(home_mixer_pb2.ScoredPostsQuery(
                    viewer_id=VIEWER, in_network_only=True, disabled_components=["RecordServed"]), timeout=10)
                feeds.append([p.post_id for p in reply.scored_posts])
            except grpc.aio.AioRpcError as exc:
                feeds.append(exc.code())
            await asyncio.sleep(0.05)


def _caught_up_if_lag_zero(thunder, feeder, index, sent: list[int]) -> bool:
    """A consumer reporting lag 0 must hold every post produced (all were acked before)."""
    thunder_lag, corpus_lag = sum(thunder.ingestor.lag_by_topic().values()), feeder.lag()
    if thunder_lag == 0:
        assert all(p in thunder.posts.posts for p in sent), "Thunder reported lag 0 while behind"
    if corpus_lag == 0:
        assert all(p in index for p in sent), "the corpus reported lag 0 while behind"
    return thunder_lag == 0 and corpus_lag == 0


async def test_durable_broker_killed_under_load_loses_nothing(durable_broker):
    bootstrap = durable_broker.bootstrap_servers
    await create_topics(bootstrap)
    author = 4242
    sent: list[int] = []
    await _produce_stream(bootstrap, author, 150, sent, pause_s=0)  # before the consumers start
    await _follow(bootstrap, VIEWER, author)
    thunder, feeder, index = await start_consumers(bootstrap)
    resets_before = sample("foryou_kafka_log_resets_total", client="thunder", reason="replaced")
    stop, answers, feeds = asyncio.Event(), [], []
    requests = asyncio.create_task(_request_stream(thunder.address, author, stop, answers))
    mixer_address, close_mixer = await _home_mixer(thunder.address, bootstrap)
    feeding = asyncio.create_task(_feed_stream(mixer_address, stop, feeds))
    try:
        stream = asyncio.create_task(_produce_stream(bootstrap, author, 300, sent))
        await eventually(lambda: len(sent) >= 100, what="the stream to start")
        await restart(durable_broker)                      # kill -9 mid-stream, same port, same log
        await stream
        await asyncio.sleep(0.6)  # one fetch wait (500 ms): the consumers have seen the final ends
        await eventually(lambda: _caught_up_if_lag_zero(thunder, feeder, index, sent), what="both to catch up")
        assert len(sent) == 450 and len(set(sent)) == 450
        assert sum(p in thunder.posts.posts for p in sent) == 450
        assert sum(p in index for p in sent) == 450
        assert thunder.ingestor.reader.resets == 0 and feeder._reader.resets == 0  # same log: no rebuild
        assert sample("foryou_kafka_log_resets_total", client="thunder", reason="replaced") == resets_before
        await eventually(lambda: feeds and isinstance(feeds[-1], list) and sent[-1] in feeds[-1],
                         what="HomeMixer's feed to hold the newest post")
        stop.set()
        await requests
        await feeding
        assert any(isinstance(a, int) and a > 0 for a in answers[-5:]), answers[-5:]
        assert len(feeds) > 20 and all(isinstance(f, list) for f in feeds), [f for f in feeds if not isinstance(f, list)]
        assert all(set(f) <= set(sent) for f in feeds)                  # only the author's posts
    finally:
        stop.set()
        await asyncio.gather(requests, feeding, return_exceptions=True)
        await close_mixer()
        await feeder.stop()
        await thunder.stop()


async def test_memory_broker_restart_is_noticed_and_rebuilt(memory_broker):
    bootstrap = memory_broker.bootstrap_servers
    await create_topics(bootstrap)
    author = 5151
    old: list[int] = []
    await _produce_stream(bootstrap, author, 100, old, pause_s=0)
    thunder, feeder, index = await start_consumers(bootstrap)
    try:
        await eventually(lambda: all(p in index for p in old), what="the corpus to read the first log")
        assert all(p in thunder.posts.posts for p in old)
        await restart(memory_broker)                       # the log is gone
        new: list[int] = []
        # more records than the consumers had read: the new log's offsets pass the old positions,
        # the case that used to be silently skipped (only offsets 100.. applied, lag 0)
        await _produce_stream(bootstrap, author, 150, new, pause_s=0)
        readers = (thunder.ingestor.reader, feeder._reader)
        await eventually(lambda: all(r.resets >= 1 for r in readers),
                         what=lambda: "both consumers to notice the reset: " + "; ".join(
                             f"{r.client_id} resets={r.resets} next={r._next} high={r._high}" for r in readers))
        await eventually(lambda: thunder.ready.is_set() and all(p in thunder.posts.posts for p in new),
                         what="Thunder to rebuild")
        await eventually(lambda: all(p in index for p in new), what="the corpus to rebuild")
        # rebuilt from the log as it now is: nothing of the lost log, all of the new one
        assert not any(p in thunder.posts.posts for p in old)
        assert not any(p in index for p in old)
        assert len(thunder.posts.posts) == 150 and len(index) == 150
        assert sum(thunder.ingestor.lag_by_topic().values()) == 0
        resets = sum(sample("foryou_kafka_log_resets_total", client=c, reason=r)
                     for c in ("thunder", "phoenix-corpus") for r in ("replaced", "rewound", "out_of_range"))
        assert resets >= 2
    finally:
        await feeder.stop()
        await thunder.stop()
