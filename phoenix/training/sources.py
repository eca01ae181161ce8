"""Where training and evaluation read events from: an event file, or Kafka (all four topics
read from the beginning to the end offsets they had when reading started)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from google.protobuf.message import Message

from foryou import event_rules, snowflake, topics
from foryou.event_file import read_events
from foryou.kafka import ReplayConsumer, security_options
from phoenix.training.event_log import EventLog, EventLogBuilder, collect

log = logging.getLogger(__name__)


class CheckedRecords:
    """A ReplayConsumer handler: each record that passes the event rules goes to `add(topic,
    message)`; a refused one is logged, counted by reason and skipped."""

    def __init__(self, add: Callable[[str, Message], None]) -> None:
        self.add = add
        self.skipped = 0

    def __call__(self, batches) -> None:
        now = snowflake.now_ms()
        for tp, records in batches.items():
            for record in records:
                try:
                    self.add(tp.topic, event_rules.check(tp.topic, record.key, record.value, now))
                except event_rules.BadRecord as exc:
                    self.skipped += 1
                    event_rules.count_refused("training", tp.topic, exc.reason)
                    log.warning("skipping %s %s record at offset %d: %s", exc.reason, tp.topic, record.offset, exc)


async def read_topics(bootstrap: str, names: tuple[str, ...] = tuple(topics.TOPICS),
                      timeout_s: float = 300.0) -> EventLog:
    """Every record of the topics that passes the event rules, up to their ends as seen when
    reading started (the shared consumer, foryou/kafka.py: a log reset meanwhile starts the read
    over). Refused records are logged, counted by reason and skipped. Records become columns as
    they arrive (EventLogBuilder): no message is kept."""
    builder = EventLogBuilder()
    handle = CheckedRecords(builder.add)

    def reset() -> None:
        builder.clear()

    reader = ReplayConsumer(bootstrap, names, "foryou-train", handle, on_reset=reset,
                            consumer_options=security_options())
    try:
        await asyncio.wait_for(reader.run(follow=False), timeout_s)
    except asyncio.TimeoutError:
        raise TimeoutError(f"reading topics from {bootstrap} took longer than {timeout_s}s") from None
    finally:
        await reader.stop()
    if handle.skipped:
        log.warning("skipped %d refused records", handle.skipped)
    return builder.build()


def load_event_log(events_file: str | None, kafka_bootstrap: str | None) -> EventLog:
    if events_file:
        return collect(read_events(events_file))
    if kafka_bootstrap:
        return asyncio.run(read_topics(kafka_bootstrap))
    raise ValueError("give --events-file or --kafka-bootstrap")
