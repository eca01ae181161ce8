"""Phoenix no longer exits at start when Kafka is unreachable: its corpus feeder (the shared
ReplayConsumer, foryou/kafka.py) retries with back-off, like Thunder's, and catches up once a
broker answers on that address."""
from __future__ import annotations

import asyncio
import logging

import numpy as np

from foryou.broker import EmbeddedBroker, create_topics, free_port
from phoenix.index import CorpusIndex
from phoenix.server_corpus import CorpusFeeder


async def test_corpus_feeder_retries_until_kafka_is_up(caplog):
    port = free_port()
    index = CorpusIndex(4)
    feeder = CorpusFeeder(f"127.0.0.1:{port}", lambda: (index, lambda ids, authors: np.ones((len(ids), 4), np.float32)),
                          max_age_ms=3_600_000)
    caplog.set_level(logging.WARNING, logger="foryou.kafka")
    await feeder.start()                              # returns at once: the connect runs in the background
    try:
        await asyncio.sleep(1.5)
        assert not feeder._task.done(), feeder._task  # still trying, not crashed
        assert "cannot reach Kafka" in caplog.text
        with EmbeddedBroker(port=port) as broker:     # a broker appears on that address
            await create_topics(broker.bootstrap_servers)
            await asyncio.wait_for(feeder.caught_up.wait(), 60)
    finally:
        await feeder.stop()
