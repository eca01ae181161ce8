"""Phoenix service fixtures: one in-process Phoenix server (tiny preset) per module, fed by
the session broker, and helpers to publish posts and wait until the corpus reflects them.

The session broker is shared with other suites, so the corpus may hold their posts too:
tests here use their own author ids and only assert about their own posts."""
from __future__ import annotations

import itertools

import grpc
import pytest
from aiokafka import AIOKafkaProducer

from foryou import snowflake, topics
from foryou_protos import common_pb2, events_pb2, phoenix_pb2_grpc

AUTHOR_BASE = 9_100_000
_low_bits = itertools.count(3_900_000)


def new_post_id(age_ms: int = 0) -> int:
    return snowflake.make_id(snowflake.now_ms() - age_ms, next(_low_bits))


def created(post_id: int, author_id: int) -> events_pb2.PostEvent:
    return events_pb2.PostEvent(created=common_pb2.Post(
        post_id=post_id, author_id=author_id, created_at_ms=snowflake.created_at_ms(post_id)))


def deleted(post_id: int, author_id: int) -> events_pb2.PostEvent:
    return events_pb2.PostEvent(deleted=events_pb2.PostDeleted(post_id=post_id, author_id=author_id,
                                                               deleted_at_ms=snowflake.now_ms()))


@pytest.fixture(scope="session")
async def producer(kafka):
    prod = AIOKafkaProducer(bootstrap_servers=kafka)
    await prod.start()
    yield prod
    await prod.stop()


async def publish(producer, events: list[events_pb2.PostEvent]) -> None:
    for event in events:
        await producer.send(topics.POSTS, topics.encode(event), key=topics.key_for(topics.POSTS, event))
    await producer.flush()


@pytest.fixture(scope="module")
async def seeded_posts(producer):
    """Posts published before the server starts: 40 posts by 4 authors."""
    posts = [(new_post_id(age_ms=60_000), AUTHOR_BASE + i % 4) for i in range(40)]
    await publish(producer, [created(p, a) for p, a in posts])
    return posts


@pytest.fixture(scope="module")
async def phoenix(kafka, seeded_posts, tmp_path_factory):
    from phoenix.server import PhoenixServer, PhoenixSettings

    settings = PhoenixSettings(port=0, metrics_port=0, kafka_bootstrap=kafka, preset="tiny", max_wait_ms=20.0,
                               max_batch=64,
                               max_candidates=64, max_k=500,
                               checkpoint_dir=str(tmp_path_factory.mktemp("phoenix-ckpt")), reload_every_s=0.3)
    server = await PhoenixServer(settings).start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def stub(phoenix):
    from foryou.health import wait_for_serving

    await wait_for_serving(phoenix.address, timeout_s=60)
    async with grpc.aio.insecure_channel(phoenix.address) as channel:
        yield phoenix_pb2_grpc.PhoenixServiceStub(channel)
