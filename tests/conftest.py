"""Shared fixtures: one real embedded broker (tansu) per test session, topics created.

Service-specific fixtures live in each tests/<service>/conftest.py."""
from __future__ import annotations

import os

import pytest

# Tests run JAX on the CPU with a deterministic, small footprint on a 2-core CI machine.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# Stacks the tests start keep their state (and a durable broker its log) under this session's
# own directory, never in the checkout's ./.foryou, where an earlier run's log would replay.
if "FORYOU_STATE_DIR" not in os.environ:
    import tempfile
    os.environ["FORYOU_STATE_DIR"] = tempfile.mkdtemp(prefix="foryou-tests-state-")

from foryou.broker import EmbeddedBroker, create_topics  # noqa: E402


@pytest.fixture(scope="session")
def broker():
    """A running tansu broker on a free loopback port (no topics created)."""
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture(scope="session")
async def kafka(broker) -> str:
    """Bootstrap servers of the session broker, with the four foryou topics created."""
    await create_topics(broker.bootstrap_servers)
    return broker.bootstrap_servers
