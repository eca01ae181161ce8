"""Events of every topic go through the real embedded broker and come back decoded, spread over
several partitions, read through a consumer group."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from foryou import topics
from foryou.broker import EmbeddedBroker, create_topics
from foryou.snowflake import make_id, now_ms
from foryou_protos import common_pb2, events_pb2


def _events() -> dict[str, list]:
    t = now_ms()
    posts = [events_pb2.PostEvent(created=common_pb2.Post(post_id=make_id(t, i), author_id=100 + i,
                                                          created_at_ms=t, text=f"post {i}"))
             for i in range(12)]
    posts.append(events_pb2.PostEvent(deleted=events_pb2.PostDeleted(post_id=make_id(t, 0), author_id=100)))
    posts.append(events_pb2.PostEvent(labelled=events_pb2.PostLabelled(
        post_id=make_id(t, 1), labels=[common_pb2.SPAM])))
    engagements = [common_pb2.Engagement(user_id=u, post_id=make_id(t, u), post_author_id=7,
                                         actions=[common_pb2.FAVORITE, common_pb2.REPLY],
                                         surface=common_pb2.HOME_FOR_YOU, timestamp_ms=t)
                   for u in range(1, 13)]
    users = [events_pb2.UserEvent(user_id=u, timestamp_ms=t, follow=u + 1) for u in range(1, 9)]
    users += [events_pb2.UserEvent(user_id=9, timestamp_ms=t, mute_keyword="Crème brûlée"),
              events_pb2.UserEvent(user_id=10, timestamp_ms=t,
                                   profile=events_pb2.Profile(handle="ten", verified=True))]
    served = [events_pb2.ServedEvent(user_id=u, request_id=f"r{u}", post_ids=[1, 2, 3], served_at_ms=t)
              for u in range(1, 13)]
    return {topics.POSTS: posts, topics.ENGAGEMENTS: engagements, topics.USERS: users, topics.SERVED: served}


async def _consume_all(bootstrap: str, topic: str, expected: int) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"test-{uuid.uuid4()}",
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(30):
            while len(records) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                for partition_records in batch.values():
                    records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


@pytest.fixture(scope="module")
async def own_kafka():
    """A broker of this module's own: the test counts every record of a topic, so no other test
    may publish there."""
    with EmbeddedBroker() as broker:
        await create_topics(broker.bootstrap_servers)
        yield broker.bootstrap_servers


@pytest.mark.parametrize("topic", list(topics.TOPICS))
async def test_events_round_trip_through_consumer_group(own_kafka, topic):
    kafka = own_kafka
    sent = _events()[topic]
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    try:
        for message in sent:
            await producer.send(topic, topics.encode(message), key=topics.key_for(topic, message))
        await producer.flush()
    finally:
        await producer.stop()

    records = await _consume_all(kafka, topic, len(sent))
    assert len(records) == len(sent)
    assert len({r.partition for r in records}) > 1, "keys should spread over several partitions"
    decoded = [topics.decode(topic, r.value) for r in records]
    assert sorted(m.SerializeToString(deterministic=True) for m in decoded) == \
        sorted(m.SerializeToString(deterministic=True) for m in sent)
    # one entity's events stay in one partition, and keys are the decimal ids
    for record, message in zip(records, decoded):
        assert record.key == topics.key_for(topic, message)


def test_malformed_records_are_rejected_with_a_clear_error():
    with pytest.raises(topics.MalformedRecord, match="empty"):
        topics.decode(topics.POSTS, b"")
    with pytest.raises(topics.MalformedRecord):
        topics.decode(topics.POSTS, b"\xff\xff\xff\xff")
    with pytest.raises(topics.MalformedRecord, match="no event set"):
        topics.decode(topics.USERS, events_pb2.UserEvent(user_id=1).SerializeToString())
    with pytest.raises(topics.MalformedRecord, match="no user_id"):
        topics.decode(topics.SERVED, events_pb2.ServedEvent(post_ids=[1]).SerializeToString())
    with pytest.raises(topics.MalformedRecord, match="not a decimal id"):
        topics.decode_key(b"abc")
