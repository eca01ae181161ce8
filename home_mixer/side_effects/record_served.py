"""RecordServed: publish the served post ids to the `served` topic (keyed by user), so
Thunder's served record lets later bottom requests skip them."""
from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer

from candidate_pipeline import PipelineResult, SideEffect
from foryou import topics
from foryou.kafka import security_options
from foryou.snowflake import now_ms
from foryou_protos import events_pb2
from home_mixer.candidates import PostBatch
from home_mixer.query import ScoredPostsQuery

log = logging.getLogger(__name__)


class ServedPublisher:
    """One aiokafka producer per process, started on first use (HomeMixer may come up before
    the broker); a failed start is retried on the next publish."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                # the same SSL/SASL settings as every consumer (foryou/kafka.py)
                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, linger_ms=5,
                                            **security_options())
                try:
                    await producer.start()
                except Exception:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, event: events_pb2.ServedEvent) -> None:
        producer = await self._started()
        await producer.send_and_wait(topics.SERVED, topics.encode(event), key=topics.key_for(topics.SERVED, event))

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class RecordServed(SideEffect[ScoredPostsQuery, PostBatch]):
    reads = ("post_id",)

    def __init__(self, publisher: ServedPublisher, timeout_s: float | None = 5.0) -> None:
        self.publisher = publisher
        self.timeout_s = timeout_s

    def enable(self, query: ScoredPostsQuery) -> bool:
        return True

    async def run(self, query: ScoredPostsQuery, result: PipelineResult[ScoredPostsQuery, PostBatch]) -> None:
        if not len(result.selected):
            return
        event = events_pb2.ServedEvent(user_id=query.viewer_id, request_id=query.request_id,
                                       post_ids=result.selected["post_id"].tolist(), served_at_ms=now_ms())
        await self.publisher.publish(event)
