"""Builders shared by the Thunder tests."""
from __future__ import annotations

import itertools

from foryou import topics
from foryou.snowflake import make_id
from foryou_protos import common_pb2, events_pb2
from thunder.settings import ThunderSettings

_low_bits = itertools.count(1)


def post(author: int, created_ms: int, **fields) -> common_pb2.Post:
    """A post with a fresh snowflake id minted at `created_ms`."""
    return common_pb2.Post(post_id=make_id(created_ms, next(_low_bits)), author_id=author,
                           created_at_ms=created_ms, text=f"post by {author}", **fields)


def reply(author: int, created_ms: int, parent: common_pb2.Post, **fields) -> common_pb2.Post:
    fields = {"in_reply_to_user_id": parent.author_id,
              "conversation_id": parent.conversation_id or parent.post_id, **fields}
    return post(author, created_ms, in_reply_to_post_id=parent.post_id, **fields)


def repost(author: int, created_ms: int, source: common_pb2.Post) -> common_pb2.Post:
    return post(author, created_ms, repost_of_post_id=source.post_id, repost_of_user_id=source.author_id)


def created(p: common_pb2.Post) -> events_pb2.PostEvent:
    event = events_pb2.PostEvent()
    event.created.CopyFrom(p)
    return event


def deleted(p: common_pb2.Post, at_ms: int) -> events_pb2.PostEvent:
    return events_pb2.PostEvent(deleted=events_pb2.PostDeleted(post_id=p.post_id, author_id=p.author_id,
                                                                 deleted_at_ms=at_ms))


def labelled(p: common_pb2.Post, labels: list, at_ms: int) -> events_pb2.PostEvent:
    return events_pb2.PostEvent(labelled=events_pb2.PostLabelled(post_id=p.post_id, labels=labels,
                                                                   labelled_at_ms=at_ms))


async def publish(producer, topic: str, *messages) -> None:
    """Publish through the real broker with the topic's key convention, in order."""
    for message in messages:
        await producer.send_and_wait(topic, topics.encode(message), key=topics.key_for(topic, message))


def thunder_settings(kafka: str, **overrides) -> ThunderSettings:
    base = ThunderSettings(port=0, metrics_port=0, kafka_bootstrap=kafka, trim_interval_s=0.2,
                           stats_interval_s=0.5)
    return base.model_copy(update=overrides)
