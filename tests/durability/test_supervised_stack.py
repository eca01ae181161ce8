"""`foryou up`'s supervision: each service killed (-9) comes back by itself and feeds recover;
the broker on durable storage is restarted with its log; restarts are counted in the state
file. A broker on memory storage that dies stops the stack, saying what was lost.

The stack runs with mutual TLS on every gRPC server and client (foryou/tls.py)."""
from __future__ import annotations

import asyncio
import json
import os
import signal

import grpc
import pytest
from aiokafka import AIOKafkaProducer

from tests.durability.certs import write_certificates
from tests.durability.helpers import follow, post_event, publish
from tests.waiting import eventually
from foryou import topics
from foryou.feed import get_feed
from foryou.health import check as health_check
from foryou.stack import STATE_FILE, Stack, StackConfig
from foryou_protos import home_mixer_pb2, home_mixer_pb2_grpc

pytestmark = pytest.mark.slow  # trains or starts stacks: scheduled first (tests/conftest.py)

VIEWER, AUTHOR = 990_001, 990_002


async def _feed_ids(stack: Stack) -> set[int] | None:
    try:
        feed = await get_feed(stack.address("home-mixer"), VIEWER, timeout_s=10,
                              # the served filter runs on every request: recorded polls would hide posts
                              disabled_components=["RecordServed"])
    except grpc.aio.AioRpcError:
        return None
    return {p.post_id for p in feed.scored_posts}


async def _supervise(stack: Stack, stop: asyncio.Event, fatal: list) -> None:
    while not stop.is_set():
        reason = await stack.supervise_once()
        if reason:
            fatal.append(reason)
            return
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("up")
    certs = write_certificates(root / "certs")
    env = {"FORYOU_STATE_DIR": str(root / "state"), "FORYOU_TLS_CERT": str(certs / "server.crt"),
           "FORYOU_TLS_KEY": str(certs / "server.key"), "FORYOU_TLS_CA": str(certs / "ca.crt"),
           "FORYOU_TLS_CLIENT_AUTH": "1"}
    os.environ.update(env)  # the services inherit it; this process's clients read it too
    cfg = StackConfig.free_ports(metrics=True, preset="tiny", storage="durable", data_dir=str(root / "log"),
                                 log_dir=str(root / "logs"), restart_max_backoff_s=2.0)
    s = Stack(cfg)
    try:
        await s.start()
        yield s
    finally:
        s.stop()
        for name in env:
            del os.environ[name]


async def test_killed_services_and_broker_come_back_and_feeds_recover(stack):
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
    await producer.start()
    posts = [post_event(AUTHOR) for _ in range(3)]
    await publish(producer, topics.USERS, follow(VIEWER, AUTHOR))
    await publish(producer, topics.POSTS, *posts)
    await producer.stop()
    expected = {p.created.post_id for p in posts}
    await eventually(lambda: _has(stack, expected), timeout_s=60, interval_s=0.5, what="the first feed")
    async with grpc.aio.insecure_channel(stack.address("home-mixer")) as plaintext:  # no TLS: refused
        with pytest.raises(grpc.aio.AioRpcError):
            await home_mixer_pb2_grpc.ScoredPostsServiceStub(plaintext).GetScoredPosts(
                home_mixer_pb2.ScoredPostsQuery(viewer_id=VIEWER), timeout=5)
    state = json.loads((stack_state_dir() / STATE_FILE).read_text())
    assert set(state["metrics"]) == {"thunder", "phoenix", "home-mixer"} and state["storage"] == "durable"

    stop, fatal = asyncio.Event(), []
    supervisor = asyncio.create_task(_supervise(stack, stop, fatal))
    try:
        # every service at once (one wait for all three to come back), then the broker
        old_pids = {name: service.proc.pid for name, service in stack.services.items()}
        for pid in old_pids.values():
            os.kill(pid, signal.SIGKILL)
        for name, old_pid in old_pids.items():
            await eventually(lambda: stack.services[name].alive and stack.services[name].proc.pid != old_pid,
                             timeout_s=30, what=f"{name} to be restarted")
        for name in old_pids:
            await eventually(lambda: _serving(stack.address(name)), timeout_s=120, interval_s=0.5,
                             what=f"{name} to serve again")
        await eventually(lambda: _has(stack, expected), timeout_s=120, interval_s=0.5,
                         what="the feed after killing every service")
        old_pid = stack.broker.pid
        os.kill(old_pid, signal.SIGKILL)
        await eventually(lambda: stack.broker.running and stack.broker.pid != old_pid, timeout_s=30,
                         what="the broker to be restarted")
        late = post_event(AUTHOR)  # written after the broker restart: reaches the feed too
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka_bootstrap)
        await producer.start()
        await publish(producer, topics.POSTS, late)
        await producer.stop()
        await eventually(lambda: _has(stack, expected | {late.created.post_id}), timeout_s=120, interval_s=0.5,
                         what="the feed after killing the broker")
        assert not fatal
        state = json.loads((stack_state_dir() / STATE_FILE).read_text())
        assert state["restarts"] == {"broker": 1, "thunder": 1, "phoenix": 1, "home-mixer": 1}
    finally:
        stop.set()
        await supervisor


async def _serving(address: str) -> bool:
    try:
        return await health_check(address) == 1
    except Exception:
        return False


async def _has(stack: Stack, expected: set[int]) -> bool:
    ids = await _feed_ids(stack)
    return ids is not None and expected <= ids


def stack_state_dir():
    from foryou.stack import state_dir
    return state_dir()


async def test_memory_broker_loss_stops_the_stack_and_says_what_was_lost(tmp_path, monkeypatch):
    """Only the broker: supervise_once decides before any service would notice."""
    monkeypatch.setenv("FORYOU_STATE_DIR", str(tmp_path))
    stack = Stack(StackConfig.free_ports(storage="memory"), write_state=False)
    stack.broker.start()
    try:
        stack.restarts = {"broker": None}
        stack.broker.kill()
        reason = await stack.supervise_once()
        assert reason and "memory" in reason and "lost" in reason and "posts" in reason
        assert not stack.broker.running
    finally:
        stack.stop()
