"""Shared fixtures: one real embedded broker (tansu) per test session, topics created.

Service-specific fixtures live in each tests/<service>/conftest.py."""
from __future__ import annotations

import os

import pytest

# Tests run JAX on the CPU with a deterministic, small footprint on a 2-core CI machine.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# Stacks the tests start keep their state (and a durable broker its log) under this session's
# own directory, never in the checkout's ./.foryou, where an earlier run's log would replay;
# each xdist worker has its own (the workers inherit the root from the controller).
if "FORYOU_STATE_DIR" not in os.environ or "FORYOU_TESTS_STATE_ROOT" in os.environ:
    import tempfile
    _root = os.environ.setdefault("FORYOU_TESTS_STATE_ROOT", tempfile.mkdtemp(prefix="foryou-tests-state-"))
    os.environ["FORYOU_STATE_DIR"] = os.path.join(_root, os.environ.get("PYTEST_XDIST_WORKER", "main"))

from foryou.broker import EmbeddedBroker, create_topics  # noqa: E402
from tests.exclusive import exclusive_while  # noqa: E402


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Tests marked `exclusive` (they measure latency) run while no other xdist worker runs a
    test; the lock covers setup and teardown, so module fixtures (stacks, training) count."""
    with exclusive_while(item.get_closest_marker("exclusive") is not None):
        return (yield)


def pytest_collection_modifyitems(config, items):
    """Modules marked `slow` first (stable order otherwise), so parallel workers do not finish
    on one long module."""
    slow_modules = {item.module for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.module not in slow_modules)  # a module stays together


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
