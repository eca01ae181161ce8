"""Serving replicas (docs/scaling.md), with real processes: a stack of 2 Thunder and 2 Phoenix
replicas behind one HomeMixer serves the same feeds as a HomeMixer on one replica of each;
killing one replica of each (SIGKILL) during a stream of feed requests fails no request and
degrades no feed once the health checks have noticed."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from foryou import snowflake
from foryou.broker import free_port
from foryou.demo import warm_up
from foryou.feed import get_feed
from foryou.process import ServiceProcess
from foryou.seed import load_world
from foryou.stack import Stack, StackConfig

pytestmark = [pytest.mark.slow, pytest.mark.exclusive]  # counts feeds in a timed window after a kill

WORLD_FLAGS = ["--users", "60", "--days", "1", "--impressions-per-user", "20", "--seed", "5"]
NOTICE_S = 2.0   # generous bound on "the health check notices" (measured: well under 0.1 s)
STREAM_AFTER_KILL_S = 5.0
# The served filter runs on every request: recorded feeds would differ from one request to the next.
NOT_RECORDED = ["RecordServed"]


def feed_key(feed) -> list[tuple[int, float]]:
    return [(p.post_id, round(p.score, 4)) for p in feed.scored_posts]


async def feeds_of(address: str, users: list[int]) -> dict[int, list]:
    out = {}
    for user in users:
        feed = await get_feed(address, user, timeout_s=10, disabled_components=NOT_RECORDED)
        assert not feed.degraded, (user, list(feed.degraded))
        out[user] = feed_key(feed)
    return out


@pytest.fixture(scope="module")
async def replicated(tmp_path_factory):
    root = tmp_path_factory.mktemp("replicas")
    previous_state_dir = os.environ.get("FORYOU_STATE_DIR")
    os.environ["FORYOU_STATE_DIR"] = str(root / "state")
    cfg = StackConfig.free_ports(preset="tiny", storage="memory", log_dir=str(root / "logs"),
                                 replicas={"thunder": 2, "phoenix": 2}, ready_timeout_s=240,
                                 # a loaded 2-core CI machine: deadlines that only a dead replica misses
                                 extra_env={"FORYOU_HOME_MIXER_THUNDER_TIMEOUT_S": "3", "FORYOU_HOME_MIXER_PHOENIX_TIMEOUT_S": "5"})
    stack = Stack(cfg, write_state=False)
    single = None
    try:
        await stack.start()
        seed = subprocess.run(
            [sys.executable, "-m", "foryou.cli", "seed", *WORLD_FLAGS, "--now-ms", str(snowflake.now_ms()),
             "--kafka-bootstrap", stack.kafka_bootstrap, "--quiet"],
            env={**os.environ}, capture_output=True, text=True, timeout=120)
        assert seed.returncode == 0, seed.stderr
        world = load_world()
        # the single-replica reference: a second HomeMixer on replica 1 of each only
        port = free_port()
        single = ServiceProcess("home-mixer", [
            "--host", cfg.host, "--port", str(port), "--metrics-port", "0",
            "--kafka-bootstrap", stack.kafka_bootstrap, "--log-level", "WARNING",
            "--thunder-timeout-s", "3", "--phoenix-timeout-s", "5",
            "--thunder-address", stack.address("thunder"), "--phoenix-address", stack.address("phoenix")],
            f"{cfg.host}:{port}", log_path=str(root / "logs" / "single-home-mixer.log")).start()
        await single.wait_ready(120)
        yield {"stack": stack, "single": single.address, "world": world}
    finally:
        if single is not None:
            single.stop()
        stack.stop()
        if previous_state_dir is None:
            os.environ.pop("FORYOU_STATE_DIR", None)
        else:
            os.environ["FORYOU_STATE_DIR"] = previous_state_dir


async def _until_equal(a: str, b: str, users: list[int], timeout_s: float = 120.0):
    """Both replicas of each service read the whole log; wait until they have caught up."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fa, fb = await feeds_of(a, users), await feeds_of(b, users)
            if fa == fb and all(fa.values()):
                return fa
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            assert fa == fb
        await asyncio.sleep(1.0)


async def test_replica_killed_mid_stream_fails_nothing_and_feeds_equal_single_replica(replicated):
    stack, single = replicated["stack"], replicated["single"]
    multi = stack.address("home-mixer")
    assert stack.services["home-mixer"].args.count("--thunder-address") == 1
    users = [u.user_id for u in replicated["world"].users[:8]]
    await warm_up(multi, users[0])
    await warm_up(single, users[0])
    reference = await _until_equal(multi, single, users)

    results: list[tuple[float, str]] = []  # (start time, "ok" | "degraded" | "failed: ...")
    stop = asyncio.Event()

    async def stream(worker: int):
        i = worker
        while not stop.is_set():
            user = users[i % len(users)]
            i += 1
            started = time.monotonic()
            try:
                feed = await get_feed(multi, user, timeout_s=10, disabled_components=NOT_RECORDED)
                outcome = f"degraded: {list(feed.degraded)}" if feed.degraded else ("ok" if feed_key(feed) == reference[user] else "differs")
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                outcome = f"failed: {exc}"
            results.append((started, outcome))

    workers = [asyncio.ensure_future(stream(w)) for w in range(2)]
    await asyncio.sleep(2.0)
    killed_at = time.monotonic()
    stack.services["thunder-2"].kill()
    stack.services["phoenix-2"].kill()
    await asyncio.sleep(STREAM_AFTER_KILL_S)
    stop.set()
    await asyncio.gather(*workers)

    before = [o for t, o in results if t < killed_at]
    during = [o for t, o in results if killed_at <= t < killed_at + NOTICE_S]
    after = [o for t, o in results if t >= killed_at + NOTICE_S]
    print(f"\nfeeds before kill {len(before)}, within {NOTICE_S}s of it {len(during)} "
          f"(not ok: {sum(o != 'ok' for o in during)}), after {len(after)}")
    assert before and after
    assert all(o == "ok" for o in before), [o for o in before if o != "ok"][:3]
    assert all(o == "ok" for o in after), [o for o in after if o != "ok"][:3]
    # the survivors alone still serve the single-replica feeds
    assert await feeds_of(multi, users) == reference
