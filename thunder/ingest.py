"""Kafka -> stores, through the shared replay-then-follow consumer (foryou/kafka.py).

One consumer reads every partition of the four topics (manual assignment: every Thunder
replica holds the full state). Offsets are never committed: on start Thunder always replays
(posts, engagements and served from the start of the retention window, users from the
beginning because the social graph is not time-bounded). Until the replay reaches the end
offsets seen at start the service reports NOT_SERVING.

A rewound or reset log (a broker that lost its data) is detected by the consumer; Thunder then
clears its stores and replays the log as it now is (see docs/durability.md).
"""
from __future__ import annotations

import gc
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from foryou import event_rules, topics
from foryou.kafka import Batches, ReplayConsumer, security_options
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
                 clock: Callable[[], int] = now_ms,
                 on_reset: Callable[[], Awaitable[None] | None] | None = None) -> None:
        self.settings = settings
        self.posts = posts
        self.users = users
        self.clock = clock
        self.applied = 0            # records applied since start (all topics)
        self.malformed = 0          # records skipped (refused by the event rules or failed to apply)
        self._on_reset = on_reset
        self._gc_was_enabled = True
        s = settings
        self.reader = ReplayConsumer(
            s.kafka_bootstrap, TOPICS, s.client_id, self._handle, on_reset=self._reset,
            start_offsets=self._start_offsets, replay_max_records=s.fetch_max_records,
            live_max_records=s.live_fetch_max_records, verify_interval_s=s.verify_interval_s,
            consumer_options=dict(fetch_max_bytes=s.fetch_max_bytes, max_partition_fetch_bytes=s.fetch_max_bytes,
                                  group_id=s.group_id or None, **security_options()),
        )
        self.caught_up = self.reader.caught_up
        self._appliers: dict[str, Callable[..., bool]] = {
            topics.POSTS: posts.apply,
            topics.USERS: users.apply_user_event,
            topics.ENGAGEMENTS: users.add_engagement,
            topics.SERVED: self._apply_served,
        }

    # ---- lifecycle ------------------------------------------------------------------------

    async def run(self, on_caught_up: Callable[[], Awaitable[None]] | None = None) -> None:
        """Connect (retrying until the broker and topics exist), replay, then follow the topics
        until cancelled."""

        async def caught_up() -> None:
            self._end_replay()
            metrics.CAUGHT_UP.set(1)
            if on_caught_up is not None:
                await on_caught_up()

        await self.reader.run(on_replay_start=self._begin_replay, on_caught_up=caught_up)

    async def stop(self) -> None:
        await self.reader.stop()

    async def _reset(self) -> None:
        metrics.CAUGHT_UP.set(0)
        self._end_replay()
        if self._on_reset is not None:
            pending = self._on_reset()
            if pending is not None:
                await pending
        self.posts.clear()
        self.users.clear()

    async def _start_offsets(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> dict:
        """Windowed topics: the first offset at or after (now - retention), by record timestamp.
        No answer (or a broker that cannot tell: tansu answers offset 0 with timestamp -1) means
        the beginning: replaying too much is only slower, the stores drop what is too old."""
        windowed = [tp for tp in partitions if tp.topic in WINDOWED_TOPICS]
        window_start = self.clock() - self.settings.store.retention_ms
        try:
            found = await consumer.offsets_for_times({tp: window_start for tp in windowed})
        except KafkaError as exc:
            log.info("offsets_for_times unsupported (%s): replaying from the beginning", exc)
            return {}
        return {tp: hit.offset for tp, hit in found.items() if hit is not None and hit.timestamp >= 0}

    # ---- the replay -----------------------------------------------------------------------

    def _begin_replay(self) -> None:
        # The replay creates millions of long-lived objects and no reference cycles: the cyclic
        # GC would repeatedly traverse the growing stores for nothing (about 40% of replay
        # time). Pause it; afterwards collect once (so no garbage gets frozen) and freeze what
        # was loaded, so later collections skip it.
        self._gc_was_enabled = gc.isenabled()
        gc.disable()
        self.posts.begin_bulk()

    def _end_replay(self) -> None:
        if not self.posts.bulk:
            return
        started = time.monotonic()
        reordered = self.posts.end_bulk()
        gc.collect()
        gc.freeze()
        if self._gc_was_enabled:
            gc.enable()
        log.info("ordered %d author timelines after the replay in %.2fs", reordered, time.monotonic() - started)

    def _apply_served(self, event, now_ms: int) -> bool:
        """The user's served record, then (for a request not seen before) the posts' impression
        counts: the user store is what knows a redelivered request."""
        if not self.users.add_served(event, now_ms):
            return False
        self.posts.count_impressions(event.post_ids)
        return True

    async def _handle(self, batches: Batches) -> None:
        for tp, records in batches.items():
            self.apply_records(tp.topic, records)

    def apply_records(self, topic: str, records) -> int:
        """Check, decode and apply a batch of one topic's records; refused ones are logged,
        counted by reason and skipped. Returns how many changed the stores (not duplicates, not
        records outside the retention window)."""
        apply = self._appliers[topic]
        now = self.clock()
        applied = 0
        with_raw = topic == topics.POSTS  # the post store reuses the record bytes
        for record in records:
            try:
                event = event_rules.check(topic, record.key, record.value, now)
                changed = apply(event, now, record.value) if with_raw else apply(event, now)
                applied += bool(changed)
            except event_rules.BadRecord as exc:
                self._refuse(topic, record, exc.reason, str(exc))
            except Exception as exc:  # a bug on one record must not stop ingestion
                log.exception("skipping record %s[%d]@%d that failed to apply",
                              topic, record.partition, record.offset)
                self._refuse(topic, record, "apply_failed", repr(exc))
        self.applied += applied
        metrics.EVENTS.labels(topic).inc(applied)
        return applied

    def _refuse(self, topic: str, record, reason: str, detail: str) -> None:
        self.malformed += 1
        metrics.MALFORMED.labels(topic).inc()
        event_rules.count_refused("thunder", topic, reason)
        if reason != "apply_failed":
            log.warning("skipping %s record %s[%d]@%d: %s", reason, topic, record.partition, record.offset, detail)

    def lag_by_topic(self) -> dict[str, int]:
        """Records behind the last seen high watermark, per topic (never 0 while behind)."""
        return self.reader.lag_by_topic()
