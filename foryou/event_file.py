"""An event file: the messages of the foryou Kafka topics, exported to one local file so a
world can be trained and evaluated on offline, with the same messages Kafka would carry.

Format (all integers unsigned little-endian):

    header:  the 8 bytes  b"FYEVENT1"
    record:  u8  topic-name length T
             T   bytes: topic name (ASCII, one of foryou.topics.TOPICS)
             u32 value length V
             V   bytes: the topic's protobuf message, serialized (foryou.topics.encode)

Records are in the order they were written (time order for an exported world). A reader
decodes each value with `foryou.topics.decode`, so an event file and a Kafka topic are read
through the same validation; a truncated tail is an error, not silently dropped.
"""
from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from google.protobuf.message import Message

from foryou import topics

MAGIC = b"FYEVENT1"
_TOPIC_LEN = struct.Struct("<B")
_VALUE_LEN = struct.Struct("<I")


class EventFileError(ValueError):
    """The file is not an event file, or is truncated or corrupt."""


def write_events(path: str | Path, events: Iterable[tuple[str, Message]]) -> int:
    """Write (topic, message) records to `path` (replacing it). Returns the record count."""
    count = 0
    with open(path, "wb") as fh:
        fh.write(MAGIC)
        for topic, message in events:
            if topic not in topics.TOPICS:
                raise ValueError(f"unknown topic {topic!r}")
            name = topic.encode("ascii")
            value = topics.encode(message)
            fh.write(_TOPIC_LEN.pack(len(name)))
            fh.write(name)
            fh.write(_VALUE_LEN.pack(len(value)))
            fh.write(value)
            count += 1
    return count


def _read_exact(fh, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise EventFileError(f"truncated event file: expected {n} bytes of {what}, got {len(data)}")
    return data


def read_events(path: str | Path) -> Iterator[tuple[str, Message]]:
    """Yield (topic, decoded message) in file order. Raises EventFileError on a bad file and
    topics.MalformedRecord on a value that does not decode as its topic's message."""
    with open(path, "rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            raise EventFileError(f"{path} is not a foryou event file (bad header)")
        while True:
            head = fh.read(_TOPIC_LEN.size)
            if not head:
                return
            (topic_len,) = _TOPIC_LEN.unpack(head)
            topic = _read_exact(fh, topic_len, "topic name").decode("ascii", errors="replace")
            if topic not in topics.TOPICS:
                raise EventFileError(f"unknown topic {topic!r} in {path}")
            (value_len,) = _VALUE_LEN.unpack(_read_exact(fh, _VALUE_LEN.size, "value length"))
            yield topic, topics.decode(topic, _read_exact(fh, value_len, "value"))
