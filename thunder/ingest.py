"""Kafka -> stores. One aiokafka consumer reads every partition of the four topics.

Partitions are assigned manually (`consumer.assign`), not through a consumer group: every
Thunder replica holds the full state, so every replica must read every partition; a shared
group would split the partitions between replicas. Offsets are never committed: on start
Thunder always replays (posts, engagements and served from the start of the retention
window, users from the beginning because the social graph is not time-bounded).

Start-up: the replay counts as caught up once every partition's position reaches its end
offset as seen at start (the larger of ListOffsets and the first fetch's high watermark: the
embedded broker under-reports ListOffsets). Until then the service reports NOT_SERVING.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from foryou import topics
from foryou.snowflake import now_ms
from thunder import metrics
from thunder.post_store import PostStore
from thunder.settings import ThunderSettings
from thunder.user_store import UserStore

log = logging.getLogger(__name__)

TOPICS = (topics.POSTS, topics.USERS, topics.ENGAGEMENTS, topics.SERVED)
# Topics whose records only matter within the retention window; `users` is replayed whole.
WINDOWED_TOPICS = frozenset({topics.POSTS, topics.ENGAGEMENTS, topics.SERVED})


class Ingestor:
    def __init__(self, settings: ThunderSettings, posts: PostStore, users: UserStore,
                 clock: Callable[[], int] = now_ms) -> None:
        self.settings = settings
        self.posts = posts
        self.users = users
        self.clock = clock
        self.consumer: AIOKafkaConsumer | None = None
        self.partitions: list[TopicPartition] = []
        self.caught_up = asyncio.Event()
        self.applied = 0            # records applied since start (all topics)
        self.malformed = 0          # records skipped
        self._next_offset: dict[TopicPartition, int] = {}
        self._appliers = {
            topics.POSTS: posts.apply,
            topics.USERS: users.apply_user_event,
            topics.ENGAGEMENTS: users.add_engagement,
            topics.SERVED: users.add_served,
        }

    # ---- lifecycle ------------------------------------------------------------------------

    async def run(self, on_caught_up: Callable[[], Awaitable[None]] | None = None) -> None:
        """Connect (retrying until the broker and topics exist), replay, then follow the topics
        until cancelled."""
        await self._connect()
        await self._replay()
        metrics.CAUGHT_UP.set(1)
        self.caught_up.set()
        if on_caught_up is not None:
            await on_caught_up()
        while True:
            await self._poll(timeout_ms=500, max_records=self.settings.live_fetch_max_records)

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None

    async def _connect(self) -> None:
        s = self.settings
        while True:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=s.kafka_bootstrap, client_id=s.client_id,
                group_id=s.group_id or None, enable_auto_commit=False,
                auto_offset_reset="earliest", fetch_max_bytes=s.fetch_max_bytes,
                max_partition_fetch_bytes=s.fetch_max_bytes,
            )
            try:
                await consumer.start()
                partitions = await self._wait_for_topics(consumer)
            except (KafkaError, OSError) as exc:
                await consumer.stop()
                log.warning("cannot reach Kafka at %s (%s); retrying", s.kafka_bootstrap, exc)
                await asyncio.sleep(1.0)
                continue
            except BaseException:
                await consumer.stop()
                raise
            self.consumer, self.partitions = consumer, partitions
            consumer.assign(partitions)
            await self._seek_to_start()
            return

    async def _wait_for_topics(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        warned_at = 0.0
        while True:
            available = await consumer.topics()
            missing = [t for t in TOPICS if t not in available or not consumer.partitions_for_topic(t)]
            if not missing:
                return [TopicPartition(t, p) for t in TOPICS for p in sorted(consumer.partitions_for_topic(t))]
            if time.monotonic() - warned_at > 5:
                log.warning("waiting for Kafka topics %s to exist", missing)
                warned_at = time.monotonic()
            await asyncio.sleep(0.2)

    async def _seek_to_start(self) -> None:
        """Windowed topics: the first offset at or after (now - retention), by record timestamp.
        No answer (or a broker that cannot tell) means the beginning: replaying too much is only
        slower, the stores drop what is too old."""
        consumer = self.consumer
        windowed = [tp for tp in self.partitions if tp.topic in WINDOWED_TOPICS]
        window_start = self.clock() - self.settings.store.retention_ms
        found = {}
        try:
            found = await consumer.offsets_for_times({tp: window_start for tp in windowed})
        except KafkaError as exc:
            log.info("offsets_for_times unsupported (%s): replaying from the beginning", exc)
        beginning = await consumer.beginning_offsets(self.partitions)
        for tp in self.partitions:
            hit = found.get(tp)
            offset = hit.offset if hit is not None and hit.timestamp >= 0 else beginning[tp]
            consumer.seek(tp, offset)
            self._next_offset[tp] = offset

    # ---- consuming ------------------------------------------------------------------------

    async def _replay(self) -> None:
        # The replay creates millions of long-lived objects and no reference cycles: the cyclic
        # GC would repeatedly traverse the growing stores for nothing (about 40% of replay
        # time). Pause it; afterwards collect once (so no garbage gets frozen) and freeze what
        # was loaded, so later collections skip it.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        self.posts.begin_bulk()
        try:
            await self._replay_to_end()
        finally:
            started = time.monotonic()
            reordered = self.posts.end_bulk()
            gc.collect()
            gc.freeze()
            if gc_was_enabled:
                gc.enable()
            log.info("ordered %d author timelines after the replay in %.2fs", reordered, time.monotonic() - started)

    async def _replay_to_end(self) -> None:
        consumer = self.consumer
        listed = await consumer.end_offsets(self.partitions)
        targets: dict[TopicPartition, int] = {}
        pending = set(self.partitions)
        started = time.monotonic()
        while pending:
            await self._poll(timeout_ms=100)
            for tp in list(pending):
                if tp not in targets:
                    high = consumer.highwater(tp)
                    if high is None:
                        continue  # no fetch response for this partition yet
                    targets[tp] = max(high, listed.get(tp, 0))
                if await consumer.position(tp) >= targets[tp]:
                    pending.discard(tp)
        log.info("caught up: %d records replayed in %.1fs", self.applied, time.monotonic() - started)

    async def _poll(self, timeout_ms: int, max_records: int | None = None) -> int:
        try:
            batches = await self.consumer.getmany(
                timeout_ms=timeout_ms, max_records=max_records or self.settings.fetch_max_records)
        except KafkaError as exc:
            log.warning("Kafka fetch failed (%s); retrying", exc)
            await asyncio.sleep(0.5)
            return 0
        total = 0
        for tp, records in batches.items():
            total += self.apply_records(tp.topic, records)
            self._next_offset[tp] = records[-1].offset + 1
        return total

    def apply_records(self, topic: str, records) -> int:
        """Decode and apply a batch of one topic's records; malformed ones are logged, counted
        and skipped. Returns how many were applied."""
        apply = self._appliers[topic]
        decode = topics.decode
        now = self.clock()
        applied = bad = 0
        with_raw = topic == topics.POSTS  # the post store reuses the record bytes
        for record in records:
            try:
                value = record.value
                if with_raw:
                    apply(decode(topic, value), now, value)
                else:
                    apply(decode(topic, value), now)
                applied += 1
            except topics.MalformedRecord as exc:
                bad += 1
                log.warning("skipping malformed record %s[%d]@%d: %s",
                            topic, record.partition, record.offset, exc)
            except Exception:  # a bug on one record must not stop ingestion
                bad += 1
                log.exception("skipping record %s[%d]@%d that failed to apply",
                              topic, record.partition, record.offset)
        self.applied += applied
        metrics.EVENTS.labels(topic).inc(applied)
        if bad:
            self.malformed += bad
            metrics.MALFORMED.labels(topic).inc(bad)
        return applied

    def lag_by_topic(self) -> dict[str, int]:
        """Records behind the last seen high watermark, per topic."""
        lag = dict.fromkeys(TOPICS, 0)
        if self.consumer is None:
            return lag
        for tp in self.partitions:
            high = self.consumer.highwater(tp)
            if high is not None:
                lag[tp.topic] += max(0, high - self._next_offset.get(tp, 0))
        return lag
