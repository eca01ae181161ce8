"""The four Kafka topics, their keys and their protobuf messages: one place for all of it.

Every producer and consumer in foryou goes through `encode`/`decode` here, so a topic's
message type and key convention cannot drift between services.
"""
from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError, Message

from foryou_protos import common_pb2, events_pb2

POSTS = "posts"
ENGAGEMENTS = "engagements"
USERS = "users"
SERVED = "served"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    message: type[Message]
    key_field: str  # the id the key is made from: one entity's events stay in one partition
    partitions: int = 4


TOPICS: dict[str, TopicSpec] = {
    POSTS: TopicSpec(POSTS, events_pb2.PostEvent, "post_id"),
    ENGAGEMENTS: TopicSpec(ENGAGEMENTS, common_pb2.Engagement, "user_id"),
    USERS: TopicSpec(USERS, events_pb2.UserEvent, "user_id"),
    SERVED: TopicSpec(SERVED, events_pb2.ServedEvent, "user_id"),
}


class MalformedRecord(ValueError):
    """A record that cannot be decoded as its topic's message. Consumers log, count, skip."""


def encode_key(entity_id: int) -> bytes:
    """Keys are the UTF-8 decimal id (readable in any Kafka tool)."""
    return str(int(entity_id)).encode()


def decode_key(key: bytes | None) -> int:
    if not key:
        raise MalformedRecord("record has no key")
    try:
        return int(key.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedRecord(f"key {key!r} is not a decimal id") from exc


def post_event_key(event: events_pb2.PostEvent) -> int:
    kind = event.WhichOneof("event")
    if kind is None:
        raise ValueError("PostEvent has no event set")
    return getattr(event, kind).post_id


def key_for(topic: str, message: Message) -> bytes:
    """The record key for `message` on `topic`."""
    if topic == POSTS:
        return encode_key(post_event_key(message))  # type: ignore[arg-type]
    return encode_key(getattr(message, TOPICS[topic].key_field))


def encode(message: Message) -> bytes:
    return message.SerializeToString()


def decode(topic: str, value: bytes | None) -> Message:
    """Decode a record value of `topic`; raises MalformedRecord on garbage or empty values."""
    spec = TOPICS[topic]
    if not value:
        raise MalformedRecord(f"empty record on topic {topic!r}")
    message = spec.message()
    try:
        message.ParseFromString(value)
    except DecodeError as exc:
        raise MalformedRecord(f"undecodable {spec.message.__name__} on topic {topic!r}: {exc}") from exc
    if topic in (POSTS, USERS) and message.WhichOneof("event") is None:
        raise MalformedRecord(f"{spec.message.__name__} on topic {topic!r} has no event set")
    if topic in (ENGAGEMENTS, USERS, SERVED) and not message.user_id:
        raise MalformedRecord(f"{spec.message.__name__} on topic {topic!r} has no user_id")
    if topic == ENGAGEMENTS and not message.post_id:
        raise MalformedRecord(f"Engagement on topic {topic!r} has no post_id")
    return message
