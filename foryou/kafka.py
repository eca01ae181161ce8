"""The one Kafka consumer of foryou: replay every partition to its end offset, then follow.

Used by Thunder (all four topics), the Phoenix corpus (`posts`) and training (all four topics,
stopping at the end). See docs/durability.md.

- Partitions are assigned manually (`consumer.assign`): every replica holds the full state, so
  every replica reads every partition. Offsets are never committed.
- Connecting (and waiting for the topics) retries with exponential back-off (tenacity); a
  failed fetch backs off too, so a broker that is down costs a few log lines, not a flood.
- The replay is caught up once every partition's position reaches its end offset as seen at
  start: the larger of ListOffsets and the first fetch's high watermark (the embedded broker,
  tansu, under-reports ListOffsets: it can answer 1 for a partition holding 500 records).
- A rewound or reset log is detected and the state rebuilt, loudly (an ERROR log line and
  `foryou_kafka_log_resets_total`), instead of silently skipping: a high watermark below the
  next offset to read, an out-of-range fetch, or (checked every `verify_interval_s`) the last
  record read no longer being the same record at its offset: what a broker that restarted
  on memory storage and was written again looks like. The owner's `on_reset` callback clears
  its state, then the replay starts over from the start offsets.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Literal

import prometheus_client
import tenacity
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError, OffsetOutOfRangeError

from foryou import config

log = logging.getLogger(__name__)

RESETS = prometheus_client.Counter(
    "foryou_kafka_log_resets_total", "Rewound or reset logs detected; the consumer's state was rebuilt",
    ["client", "reason"])
FETCH_ERRORS = prometheus_client.Counter(
    "foryou_kafka_fetch_errors_total", "Failed fetches (retried with back-off)", ["client"])

Batches = dict[TopicPartition, list]
StartOffsets = Callable[[AIOKafkaConsumer, list[TopicPartition]], Awaitable[dict[TopicPartition, int]]]


class LogReset(Exception):
    """The log was rewound or reset under the consumer."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


async def _maybe_await(value) -> None:
    if inspect.isawaitable(value):
        await value


@dataclass(frozen=True)
class _Fingerprint:
    """What identifies a record at an offset: a different record there means a different log."""

    offset: int
    timestamp: int
    key: bytes | None
    value_hash: int

    @staticmethod
    def of(record) -> "_Fingerprint":
        return _Fingerprint(record.offset, record.timestamp, record.key, hash(record.value))


@dataclass
class ReplayConsumer:
    bootstrap: str
    topics: tuple[str, ...]
    client_id: str
    handle: Callable[[Batches], Awaitable[None] | None]     # apply one fetch's records
    on_reset: Callable[[], Awaitable[None] | None] | None = None   # clear state before a rebuild
    start_offsets: StartOffsets | None = None                # default: the beginning
    replay_max_records: int = 5_000
    live_max_records: int = 500
    verify_interval_s: float = 5.0
    connect_max_wait_s: float = 10.0                         # back-off ceiling between attempts
    consumer_options: dict = field(default_factory=dict)     # e.g. fetch sizes, TLS/SASL settings
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)
    resets: int = 0
    consumer: AIOKafkaConsumer | None = field(default=None, init=False)
    partitions: list[TopicPartition] = field(default_factory=list, init=False)
    _next: dict[TopicPartition, int] = field(default_factory=dict, init=False)
    _high: dict[TopicPartition, int] = field(default_factory=dict, init=False)
    _last: dict[TopicPartition, _Fingerprint] = field(default_factory=dict, init=False)
    # What the next verification re-reads: the newest record as of the previous one, so a log
    # replaced meanwhile is caught even after records of the new log were read (their
    # fingerprints are in _last by then).
    _anchor: dict[TopicPartition, _Fingerprint] = field(default_factory=dict, init=False)
    _verifying: dict[TopicPartition, _Fingerprint] = field(default_factory=dict, init=False)
    _verify_at: float = field(default=0.0, init=False)
    _failures: int = field(default=0, init=False)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def run(self, on_replay_start: Callable[[], Awaitable[None] | None] | None = None,
                  on_caught_up: Callable[[], Awaitable[None] | None] | None = None,
                  follow: bool = True) -> None:
        """Connect, replay to the end offsets, call `on_caught_up`, then follow until cancelled
        (or return, when `follow` is False). A detected reset calls `on_reset` and replays again."""
        await self.connect()
        while True:
            try:
                await _maybe_await(on_replay_start() if on_replay_start else None)
                await self._replay()
                self.caught_up.set()
                await _maybe_await(on_caught_up() if on_caught_up else None)
                if not follow:
                    return
                while True:
                    await self.poll(self.live_max_records, timeout_ms=500)
            except LogReset as reset:
                await self._rebuild(reset)
            except KafkaError as exc:  # e.g. a timed-out ListOffsets while the broker restarts
                log.warning("%s: Kafka failed (%r); reconnecting and replaying", self.client_id, exc)
                await self.stop()
                await asyncio.sleep(1.0)
                await self.connect()

    @property
    def _live(self) -> AIOKafkaConsumer:
        """The consumer, between `connect` and `stop`."""
        if self.consumer is None:
            raise RuntimeError(f"{self.client_id}: not connected to Kafka")
        return self.consumer

    async def stop(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
            self.consumer = None

    async def connect(self) -> None:
        retrying = tenacity.AsyncRetrying(
            retry=tenacity.retry_if_exception_type((KafkaError, OSError, TimeoutError)),
            wait=tenacity.wait_exponential(multiplier=0.2, max=self.connect_max_wait_s),
            before_sleep=lambda state: log.warning(
                "%s: cannot reach Kafka at %s (%s); retrying", self.client_id, self.bootstrap,
                state.outcome.exception() if state.outcome else None),
        )
        async for attempt in retrying:
            with attempt:
                await self._connect_once()
                try:
                    await self._seek_to_start()
                except BaseException:
                    await self.stop()
                    raise

    async def _connect_once(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id=self.client_id,
                                    enable_auto_commit=False, auto_offset_reset="none",
                                    **self.consumer_options)
        try:
            await consumer.start()
            partitions = await self._wait_for_topics(consumer)
        except BaseException:
            await consumer.stop()
            raise
        self.consumer, self.partitions = consumer, partitions
        consumer.assign(partitions)

    async def _wait_for_topics(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        warned_at = 0.0
        while True:
            available = await consumer.topics()
            missing = [t for t in self.topics if t not in available or not consumer.partitions_for_topic(t)]
            if not missing:
                return [TopicPartition(t, p) for t in self.topics for p in sorted(consumer.partitions_for_topic(t))]
            if time.monotonic() - warned_at > 5:
                log.warning("%s: waiting for Kafka topics %s to exist", self.client_id, missing)
                warned_at = time.monotonic()
            await asyncio.sleep(0.2)

    async def _seek_to_start(self) -> None:
        consumer = self._live
        beginning = await consumer.beginning_offsets(self.partitions)
        chosen = await self.start_offsets(consumer, self.partitions) if self.start_offsets else {}
        self._next, self._high, self._last, self._verifying, self._anchor = {}, {}, {}, {}, {}
        for tp in self.partitions:
            offset = chosen.get(tp, beginning[tp])
            consumer.seek(tp, offset)
            self._next[tp] = offset

    async def _rebuild(self, reset: LogReset) -> None:
        self.resets += 1
        RESETS.labels(self.client_id, reset.reason).inc()
        log.error("%s: the Kafka log was rewound or reset (%s); dropping the state built from it "
                  "and replaying from the start", self.client_id, reset)
        self.caught_up.clear()
        await _maybe_await(self.on_reset() if self.on_reset else None)
        await self.stop()  # a fresh consumer: no fetch positions or buffers from the old log
        await self.connect()

    # ---- consuming ---------------------------------------------------------------------------

    async def _replay(self) -> None:
        listed = await self._end_offsets()
        targets: dict[TopicPartition, int] = {}
        pending = set(self.partitions)
        started = time.monotonic()
        records = 0
        while pending:
            records += await self.poll(self.replay_max_records, timeout_ms=100)
            for tp in list(pending):
                if tp not in targets:
                    high = self._live.highwater(tp)
                    if high is None:
                        continue  # no fetch response for this partition yet
                    targets[tp] = max(high, listed.get(tp, 0))
                if self._next[tp] >= targets[tp]:
                    pending.discard(tp)
        log.info("%s: caught up with %s, %d records in %.1fs", self.client_id, ",".join(self.topics),
                 records, time.monotonic() - started)

    async def _end_offsets(self) -> dict[TopicPartition, int]:
        try:
            return await self._live.end_offsets(self.partitions)
        except KafkaError as exc:
            log.warning("%s: ListOffsets failed (%s); using the fetched high watermarks", self.client_id, exc)
            return {}

    async def poll(self, max_records: int, timeout_ms: int) -> int:
        """One fetch: check it against the log seen so far, hand its records over. Returns how
        many records were handed over. Raises LogReset."""
        if self.caught_up.is_set() and time.monotonic() >= self._verify_at:
            self._start_verification()
        try:
            batches = await self._live.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except OffsetOutOfRangeError as exc:
            raise LogReset("out_of_range", str(exc)) from exc
        except KafkaError as exc:
            await self._back_off(exc)
            return 0
        self._failures = 0
        self._check_high_watermarks()
        batches = self._checked(batches)
        if not batches:
            return 0
        await _maybe_await(self.handle(batches))
        for tp, records in batches.items():
            self._next[tp] = records[-1].offset + 1
            self._last[tp] = _Fingerprint.of(records[-1])
        return sum(len(r) for r in batches.values())

    async def _back_off(self, exc: Exception) -> None:
        self._failures += 1
        FETCH_ERRORS.labels(self.client_id).inc()
        delay = min(self.connect_max_wait_s, 0.2 * 2 ** min(self._failures, 10))
        log.warning("%s: Kafka fetch failed (%s); retrying in %.1fs", self.client_id, exc, delay)
        self._verify_at = 0.0  # after trouble, check the log is still the one we read
        await asyncio.sleep(delay)

    def _check_high_watermarks(self) -> None:
        for tp in self.partitions:
            high = self._live.highwater(tp)
            if high is None:
                continue
            if high < self._next[tp]:
                raise LogReset("rewound", f"{tp.topic}[{tp.partition}] ends at {high}, "
                                          f"below the next offset to read {self._next[tp]}")
            self._high[tp] = high

    def _start_verification(self) -> None:
        """Re-read, for every partition, the last record read before the previous verification
        (the last one read, the first time): if it is no longer there, or another record is,
        the log is not the one the state was built from."""
        self._verify_at = time.monotonic() + self.verify_interval_s
        for tp, fingerprint in self._last.items():
            if tp not in self._verifying:
                anchor = self._anchor.get(tp, fingerprint)
                self._verifying[tp] = anchor
                self._anchor[tp] = fingerprint
                self._live.seek(tp, anchor.offset)

    def _checked(self, batches: Batches) -> Batches:
        out: Batches = {}
        for tp, records in batches.items():
            expected = self._verifying.pop(tp, None)
            if expected is not None:
                first = records[0]
                if first.offset != expected.offset or _Fingerprint.of(first) != expected:
                    raise LogReset("replaced", f"{tp.topic}[{tp.partition}]@{expected.offset} holds another "
                                               "record than the one read before (the broker lost its log)")
                records = records[1:]
            records = [r for r in records if r.offset >= self._next[tp]]
            if records:
                out[tp] = records
        return out

    # ---- reporting ---------------------------------------------------------------------------

    def lag_by_topic(self) -> dict[str, int]:
        """Records behind the last seen high watermark, per topic. Never 0 while behind: before
        any fetch answered (or while replaying after a reset), a partition whose end is unknown
        counts as at least 1 behind."""
        lag = dict.fromkeys(self.topics, 0)
        for tp in self.partitions:
            high = self._high.get(tp)
            behind = max(0, high - self._next.get(tp, 0)) if high is not None else 0
            if high is None and not self.caught_up.is_set():
                behind = 1
            lag[tp.topic] += behind
        if self.consumer is None and not self.caught_up.is_set():
            lag = {t: max(1, n) for t, n in lag.items()}
        return lag


class KafkaSecurity(config.Settings):
    """SSL/SASL of every aiokafka client; environment-only, none by default (loopback). See
    docs/durability.md."""

    protocol: Annotated[Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], config.UPPER] = config.shared(
        "PLAINTEXT", "Kafka security protocol", "KAFKA_SECURITY_PROTOCOL")
    ssl_cafile: str = config.shared("", "CA bundle the brokers are verified against (SSL)", "KAFKA_SSL_CAFILE")
    ssl_certfile: str = config.shared("", "client certificate (SSL with client authentication)", "KAFKA_SSL_CERTFILE")
    ssl_keyfile: str = config.shared("", "key of the client certificate", "KAFKA_SSL_KEYFILE")
    sasl_mechanism: str = config.shared("PLAIN", "SASL mechanism", "KAFKA_SASL_MECHANISM")
    sasl_username: str = config.shared("", "SASL user name", "KAFKA_SASL_USERNAME")
    sasl_password: str = config.shared("", "SASL password", "KAFKA_SASL_PASSWORD")


def security_options(settings: KafkaSecurity | None = None) -> dict:
    """aiokafka keyword arguments for the SSL/SASL settings; {} for PLAINTEXT."""
    s = settings or KafkaSecurity()
    if s.protocol == "PLAINTEXT":
        return {}
    options: dict = {"security_protocol": s.protocol}
    if "SSL" in s.protocol:
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(cafile=s.ssl_cafile or None, certfile=s.ssl_certfile or None,
                                                    keyfile=s.ssl_keyfile or None)
    if s.protocol.startswith("SASL"):
        options.update(sasl_mechanism=s.sasl_mechanism, sasl_plain_username=s.sasl_username or None,
                       sasl_plain_password=s.sasl_password or None)
    return options
