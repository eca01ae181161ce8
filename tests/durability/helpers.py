"""Builders and waits shared by the durability tests."""
from __future__ import annotations

import asyncio
import itertools

import prometheus_client

from foryou import topics
from foryou.snowflake import make_id, now_ms
from foryou_protos import common_pb2, events_pb2

_low_bits = itertools.count(1)


def post_event(author: int, created_ms: int | None = None, **fields) -> events_pb2.PostEvent:
    created_ms = created_ms or now_ms() - 1000
    event = events_pb2.PostEvent()
    event.created.CopyFrom(common_pb2.Post(post_id=make_id(created_ms, next(_low_bits)), author_id=author,
                                           created_at_ms=created_ms, text=f"post by {author}", **fields))
    return event


def follow(user: int, author: int, ts: int | None = None) -> events_pb2.UserEvent:
    return events_pb2.UserEvent(user_id=user, timestamp_ms=ts or now_ms(), follow=author)


async def publish(producer, topic: str, *messages) -> None:
    futures = [await producer.send(topic, topics.encode(m), key=topics.key_for(topic, m)) for m in messages]
    await asyncio.gather(*futures)


def sample(name: str, **labels) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0
