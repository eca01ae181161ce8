"""Where training and evaluation read events from: an event file, or Kafka (all four topics
read from the beginning to the end offsets they had when reading started)."""
from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from foryou import topics
from foryou.event_file import read_events
from phoenix.training.data import EventLog, collect

log = logging.getLogger(__name__)


async def read_topics(bootstrap: str, names: tuple[str, ...] = tuple(topics.TOPICS),
                      timeout_s: float = 300.0) -> list[tuple[str, object]]:
    """Every decodable record of the topics, up to their current ends. Malformed records are
    logged and skipped."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", client_id="foryou-train")
    await consumer.start()
    try:
        await consumer.topics()
        tps = [TopicPartition(name, p) for name in names for p in sorted(consumer.partitions_for_topic(name) or ())]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if end[tp] > 0}
        events, skipped = [], 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while remaining:
            if loop.time() > deadline:
                raise TimeoutError(f"reading topics from {bootstrap} took longer than {timeout_s}s")
            batch = await consumer.getmany(*remaining, timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= end[tp]:
                        continue
                    try:
                        events.append((tp.topic, topics.decode(tp.topic, record.value)))
                    except topics.MalformedRecord as exc:
                        skipped += 1
                        log.warning("skipping malformed %s record at offset %d: %s", tp.topic, record.offset, exc)
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        if skipped:
            log.warning("skipped %d malformed records", skipped)
        return events
    finally:
        await consumer.stop()


def load_event_log(events_file: str | None, kafka_bootstrap: str | None) -> EventLog:
    if events_file:
        return collect(read_events(events_file))
    if kafka_bootstrap:
        return collect(asyncio.run(read_topics(kafka_bootstrap)))
    raise ValueError("give --events-file or --kafka-bootstrap")
