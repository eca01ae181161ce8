"""Thunder fixtures: a Kafka producer, and a Thunder app running in-process on the session
broker (gRPC on a free loopback port, no metrics endpoint)."""
from __future__ import annotations

import itertools
import random

import grpc
import pytest
from aiokafka import AIOKafkaProducer

from foryou_protos import thunder_pb2_grpc
from thunder.app import ThunderApp
from tests.thunder.thunder_helpers import thunder_settings

# Each test draws its own ids, so tests sharing the session topics never see each other's data.
_id_blocks = itertools.count(random.Random().randrange(1, 10_000) * 1_000_000, 1_000_000)


@pytest.fixture
def ids():
    """A fresh block of 1,000,000 user/author ids for one test."""
    return next(_id_blocks)


@pytest.fixture(scope="session")
async def producer(kafka):
    p = AIOKafkaProducer(bootstrap_servers=kafka, linger_ms=2)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture(scope="module")
async def thunder(kafka):
    app = ThunderApp(thunder_settings(kafka))
    await app.start()
    await app.wait_ready(60)
    yield app
    await app.stop()


@pytest.fixture(scope="module")
async def stub(thunder):
    async with grpc.aio.insecure_channel(thunder.address) as channel:
        yield thunder_pb2_grpc.ThunderServiceStub(channel)
