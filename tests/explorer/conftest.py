"""One real stack for the explorer tests (package scope): the embedded broker, Thunder,
Phoenix (tiny preset, initial weights) and HomeMixer on free ports, with a small synthetic
world seeded through Kafka and its world file written as `foryou seed` does."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from explorer.app import ExplorerConfig
from explorer.backends import Addresses
from foryou import snowflake
from foryou.demo import warm_up
from foryou.seed import WORLD_FILE, publish_world, save_world_config
from foryou.stack import Stack, StackConfig
from foryou.world import World, WorldConfig, generate_world
from foryou_protos import phoenix_pb2, phoenix_pb2_grpc, thunder_pb2, thunder_pb2_grpc

# Enough posts that a user following about half the world has well over 35 in-network
# candidates, and retrieval still brings out-of-network ones.
WORLD: dict[str, Any] = dict(num_users=60, days=1.0, posts_per_user_per_day=4.0, mean_following=25, impressions_per_user=30,
             seed=5)
# Generous deadlines: the CI machine has 2 shared cores and Phoenix runs on CPU.
SLOW_MACHINE_ENV = {"FORYOU_HOME_MIXER_THUNDER_TIMEOUT_S": "5", "FORYOU_HOME_MIXER_PHOENIX_TIMEOUT_S": "20",
                    "FORYOU_HOME_MIXER_REQUEST_BUDGET_S": "40"}


@dataclass
class SeededStack:
    stack: Stack
    world: World
    world_file: Path
    root: Path
    viewer: int            # follows about half the world: a feed of in- and out-of-network posts

    @property
    def addresses(self) -> Addresses:
        return Addresses(self.stack.address("home-mixer"), self.stack.address("thunder"),
                         self.stack.address("phoenix"))

    def config(self, **overrides) -> ExplorerConfig:
        return ExplorerConfig(**{"addresses": self.addresses, "world_file": self.world_file, "timeout_s": 20.0,
                                 "feed_timeout_s": 60.0, **overrides})


async def _until(predicate, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def pick_viewer(world: World) -> int:
    """The user following the most accounts among those following at most 60% of the world."""
    limit = 0.6 * len(world.users)
    return max((u.user_id for u in world.users if len(world.follows[u.user_id]) <= limit),
               key=lambda uid: (len(world.follows[uid]), -uid))


@pytest.fixture(scope="package")
async def seeded(tmp_path_factory) -> AsyncIterator[SeededStack]:
    root = tmp_path_factory.mktemp("explorer")
    stack = Stack(StackConfig.free_ports(preset="tiny", extra_env=SLOW_MACHINE_ENV, log_dir=str(root / "logs"),
                                         ready_timeout_s=240), write_state=False)
    await stack.start()
    try:
        world = generate_world(WorldConfig(**WORLD, now_ms=snowflake.now_ms()))
        world_file = root / WORLD_FILE
        save_world_config(world, world_file)
        await publish_world(world, stack.kafka_bootstrap)
        last = world.users[-1].user_id

        async def thunder_caught_up() -> bool:
            async with grpc.aio.insecure_channel(stack.address("thunder")) as channel:
                ctx = await thunder_pb2_grpc.ThunderServiceStub(channel).GetUserContext(
                    thunder_pb2.GetUserContextRequest(user_id=last), timeout=10)
            return set(ctx.following_user_ids) == world.follows[last]

        async def corpus_loaded() -> bool:
            async with grpc.aio.insecure_channel(stack.address("phoenix")) as channel:
                info = await phoenix_pb2_grpc.PhoenixServiceStub(channel).ModelInfo(
                    phoenix_pb2.ModelInfoRequest(), timeout=10)
            return info.corpus_size >= 0.8 * len(world.posts)

        await _until(thunder_caught_up, "thunder to hold the seeded world")
        await _until(corpus_loaded, "phoenix to index the seeded posts")
        viewer = pick_viewer(world)
        await warm_up(stack.address("home-mixer"), viewer)  # the first ranking compiles the model
        yield SeededStack(stack, world, world_file, root, viewer)
    finally:
        await asyncio.to_thread(stack.stop)
