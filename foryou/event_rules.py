"""The rules every consumed Kafka record must pass, next to the topic specs (foryou/topics.py).

`check(topic, key, value, now_ms)` decodes a record and returns its message, or raises
BadRecord with a `reason` (the label under which consumers count it); a refused record changes
no state. Unknown enum values (a product surface, an action, a label added by a newer producer)
do not refuse the record: they are mapped to the enum's "unspecified" value (surface, action)
or dropped (labels), and counted in `foryou_event_values_mapped_total`. See docs/durability.md.
"""
from __future__ import annotations

import prometheus_client
from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError, Message

from foryou import snowflake, topics
from foryou_protos import common_pb2, events_pb2

# ---- limits -------------------------------------------------------------------------------

MAX_RECORD_BYTES = 256 * 1024        # one event; Kafka's own limit is far above what an event needs
MAX_TEXT_CHARS = 4_000               # post text (X allows 280, 25,000 for long posts: we serve 4,000)
MAX_NAME_CHARS = 100                 # handle, display name
MAX_KEYWORD_CHARS = 100              # a muted keyword or phrase
MAX_REQUEST_ID_CHARS = 128
MAX_SERVED_IDS = 1_000               # post ids in one ServedEvent (a feed page is ~35)
MAX_ACTIONS = 64                     # entries in Engagement.actions (a multi-hot set of 19)
MAX_LABELS = 32
MAX_FOLLOWING = 5_000                # follows read per viewer: Thunder's limit, HomeMixer's too
FUTURE_SKEW_MS = 60_000              # timestamps and snowflake times at most this far ahead
MAX_ID = (1 << 63) - 1               # snowflake ids are signed 63-bit: 0 and above this name nothing

REASONS = ("empty", "too_large", "undecodable", "wrong_type", "missing_field", "bad_key", "bad_id",
           "future_id", "future_timestamp", "bad_timestamp", "too_long", "too_many")

REFUSED = prometheus_client.Counter(
    "foryou_refused_records_total", "Kafka records refused by the event rules, skipped",
    ["service", "topic", "reason"])
MAPPED = prometheus_client.Counter(
    "foryou_event_values_mapped_total", "Unknown enum values mapped to unspecified (or dropped)",
    ["topic", "field"])

_SURFACES = frozenset(common_pb2.ProductSurface.values())
_ACTIONS = frozenset(common_pb2.Action.values())
_LABELS = frozenset(common_pb2.VisibilityLabel.values())
_USER_ID_EVENTS = ("follow", "unfollow", "block", "unblock", "mute", "unmute", "subscribe", "unsubscribe")


class BadRecord(topics.MalformedRecord):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def count_refused(service: str, topic: str, reason: str) -> None:
    REFUSED.labels(service, topic, reason).inc()


def check(topic: str, key: bytes | None, value: bytes | None, now_ms: int) -> Message:
    """The record's message, checked (and its unknown enum values mapped), or BadRecord."""
    message = _decode(topic, value)
    _CHECKS[topic](message, now_ms)
    _check_key(topic, key, message)
    return message


# ---- decoding and type ----------------------------------------------------------------------

def _decode(topic: str, value: bytes | None) -> Message:
    spec = topics.TOPICS[topic]
    if not value:
        raise BadRecord("empty", f"empty record on topic {topic!r}")
    if len(value) > MAX_RECORD_BYTES:
        raise BadRecord("too_large", f"{len(value)} bytes > {MAX_RECORD_BYTES}")
    message = spec.message()
    try:
        message.ParseFromString(value)
    except DecodeError as exc:
        raise BadRecord("undecodable", f"undecodable {spec.message.__name__}: {exc}") from exc
    _check_type(message)
    return message


def _check_type(message: Message) -> None:
    """A field number the message knows, arriving with another wire type, means another message
    type (an Engagement published on `served` parses as a ServedEvent otherwise). Unknown field
    numbers are allowed: a newer producer may add fields."""
    known = message.DESCRIPTOR.fields_by_number
    for unknown in unknown_fields.UnknownFieldSet(message):
        if unknown.field_number in known:
            raise BadRecord("wrong_type", f"field {unknown.field_number} has the wrong wire type for "
                                          f"{message.DESCRIPTOR.name}: another message type?")
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and not descriptor.is_repeated:
            _check_type(value)


def _check_key(topic: str, key: bytes | None, message: Message) -> None:
    try:
        key_id = topics.decode_key(key)
    except topics.MalformedRecord as exc:
        raise BadRecord("bad_key", str(exc)) from exc
    expected = topics.post_event_key(message) if topic == topics.POSTS else getattr(message, topics.TOPICS[topic].key_field)
    if key_id != expected:
        raise BadRecord("bad_key", f"key {key_id} is not the message's {topics.TOPICS[topic].key_field} {expected}")


# ---- field rules -------------------------------------------------------------------------------

def _id(value: int, name: str, required: bool = True) -> None:
    if value == 0 and not required:
        return
    if value == 0 or value > MAX_ID:
        raise BadRecord("bad_id", f"{name}={value} is not a valid id")


def _post_id(value: int, name: str, now_ms: int, required: bool = True) -> None:
    _id(value, name, required)
    if value and snowflake.created_at_ms(value) > now_ms + FUTURE_SKEW_MS:
        raise BadRecord("future_id", f"{name}={value} was minted in the future")


def _timestamp(value: int, name: str, now_ms: int, required: bool = False) -> None:
    if value == 0 and not required:
        return
    if value <= 0:
        raise BadRecord("bad_timestamp" if value else "missing_field", f"{name}={value}")
    if value > now_ms + FUTURE_SKEW_MS:
        raise BadRecord("future_timestamp", f"{name}={value} is {value - now_ms} ms in the future")


def _text(value: str, name: str, limit: int) -> None:
    if len(value) > limit:
        raise BadRecord("too_long", f"{name} has {len(value)} characters > {limit}")


def _count(values, name: str, limit: int) -> None:
    if len(values) > limit:
        raise BadRecord("too_many", f"{name} has {len(values)} entries > {limit}")


def _known_enums(values, allowed: frozenset[int], topic: str, name: str, replacement: int | None) -> list[int] | None:
    """None when every value is known, else the values with unknown ones mapped or dropped."""
    if all(v in allowed for v in values):
        return None
    MAPPED.labels(topic, name).inc()
    if replacement is None:
        return [v for v in values if v in allowed]
    return [v if v in allowed else replacement for v in values]


def _check_post(post: common_pb2.Post, now_ms: int) -> None:
    _post_id(post.post_id, "post_id", now_ms)
    _id(post.author_id, "author_id")
    _timestamp(post.created_at_ms, "created_at_ms", now_ms, required=True)
    _text(post.text, "text", MAX_TEXT_CHARS)
    for name in ("in_reply_to_post_id", "conversation_id", "repost_of_post_id", "quote_of_post_id"):
        _post_id(getattr(post, name), name, now_ms, required=False)
    for name in ("in_reply_to_user_id", "repost_of_user_id"):
        _id(getattr(post, name), name, required=False)
    _labels(post.labels, topics.POSTS)


def _labels(labels, topic: str) -> None:
    _count(labels, "labels", MAX_LABELS)
    mapped = _known_enums(labels, _LABELS, topic, "labels", None)
    if mapped is not None:
        del labels[:]
        labels.extend(mapped)


def _check_post_event(event: events_pb2.PostEvent, now_ms: int) -> None:
    kind = event.WhichOneof("event")
    if kind is None:
        raise BadRecord("missing_field", "PostEvent has no event set")
    if kind == "created":
        _check_post(event.created, now_ms)
    elif kind == "deleted":
        _post_id(event.deleted.post_id, "deleted.post_id", now_ms)
        _id(event.deleted.author_id, "deleted.author_id", required=False)
        _timestamp(event.deleted.deleted_at_ms, "deleted_at_ms", now_ms)
    else:
        _post_id(event.labelled.post_id, "labelled.post_id", now_ms)
        _timestamp(event.labelled.labelled_at_ms, "labelled_at_ms", now_ms)
        _labels(event.labelled.labels, topics.POSTS)


def _check_user_event(event: events_pb2.UserEvent, now_ms: int) -> None:
    _id(event.user_id, "user_id")
    kind = event.WhichOneof("event")
    if kind is None:
        raise BadRecord("missing_field", "UserEvent has no event set")
    _timestamp(event.timestamp_ms, "timestamp_ms", now_ms)
    if kind in _USER_ID_EVENTS:
        _id(getattr(event, kind), kind)
    elif kind == "profile":
        _text(event.profile.handle, "profile.handle", MAX_NAME_CHARS)
        _text(event.profile.display_name, "profile.display_name", MAX_NAME_CHARS)
    else:
        _text(getattr(event, kind), kind, MAX_KEYWORD_CHARS)


def _check_engagement(e: common_pb2.Engagement, now_ms: int) -> None:
    _id(e.user_id, "user_id")
    _post_id(e.post_id, "post_id", now_ms)
    _id(e.post_author_id, "post_author_id", required=False)
    _timestamp(e.timestamp_ms, "timestamp_ms", now_ms, required=True)
    _count(e.actions, "actions", MAX_ACTIONS)
    if e.dwell_time_ms < 0:
        raise BadRecord("bad_timestamp", f"dwell_time_ms={e.dwell_time_ms}")
    mapped = _known_enums(e.actions, _ACTIONS, topics.ENGAGEMENTS, "actions", common_pb2.ACTION_UNSPECIFIED)
    if mapped is not None:
        del e.actions[:]
        e.actions.extend(mapped)
    if e.surface not in _SURFACES:
        MAPPED.labels(topics.ENGAGEMENTS, "surface").inc()
        e.surface = common_pb2.SURFACE_UNSPECIFIED


def _check_served(event: events_pb2.ServedEvent, now_ms: int) -> None:
    _id(event.user_id, "user_id")
    _timestamp(event.served_at_ms, "served_at_ms", now_ms)
    _text(event.request_id, "request_id", MAX_REQUEST_ID_CHARS)
    _count(event.post_ids, "post_ids", MAX_SERVED_IDS)
    for post_id in event.post_ids:
        _post_id(post_id, "post_ids[]", now_ms)


_CHECKS = {
    topics.POSTS: _check_post_event,
    topics.USERS: _check_user_event,
    topics.ENGAGEMENTS: _check_engagement,
    topics.SERVED: _check_served,
}
