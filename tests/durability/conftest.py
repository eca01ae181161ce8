"""Durability fixtures: brokers of their own (these tests kill and restart them), with an
in-process Thunder and Phoenix corpus feeder reading them."""
from __future__ import annotations

import numpy as np
import pytest

from foryou.broker import EmbeddedBroker, create_topics
from phoenix.index import CorpusIndex
from phoenix.server_corpus import CorpusFeeder
from thunder.app import ThunderApp
from thunder.settings import ThunderSettings

DIM = 8


def thunder_for(bootstrap: str) -> ThunderApp:
    return ThunderApp(ThunderSettings(port=0, metrics_port=0, kafka_bootstrap=bootstrap, trim_interval_s=3600,
                                      stats_interval_s=3600, verify_interval_s=0.5))


def corpus_for(bootstrap: str) -> tuple[CorpusFeeder, CorpusIndex]:
    index = CorpusIndex(DIM, initial_capacity=4096)

    def embed(post_ids: np.ndarray, author_ids: np.ndarray) -> np.ndarray:
        vectors = np.ones((len(post_ids), DIM), np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    feeder = CorpusFeeder(bootstrap, lambda: (index, embed), max_age_ms=48 * 3_600_000, verify_interval_s=0.5)
    return feeder, index


async def start_consumers(bootstrap: str):
    thunder = thunder_for(bootstrap)
    await thunder.start()
    feeder, index = corpus_for(bootstrap)
    await feeder.start()
    await thunder.wait_ready(60)
    return thunder, feeder, index


async def restart(broker: EmbeddedBroker) -> None:
    broker.kill()
    broker.restart()
    await create_topics(broker.bootstrap_servers)


@pytest.fixture(scope="module")
def durable_broker(tmp_path_factory):
    with EmbeddedBroker(storage="durable", data_dir=str(tmp_path_factory.mktemp("log"))) as broker:
        yield broker


@pytest.fixture(scope="module")
def memory_broker():
    with EmbeddedBroker(storage="memory") as broker:
        yield broker
