"""Load test: concurrent clients drive HomeMixer's GetScoredPosts for a fixed time; reports
throughput, p50/p99 latency, errors (target: zero) and degraded responses.

    foryou bench load_test                       # starts its own stack and seeds a world
    foryou bench load_test --use-running         # the `foryou up` stack of the state file
    foryou bench load_test --clients 1,8,32 --duration 20
"""
from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass, field

import grpc

from bench.common import percentiles_ms, print_table, run_clients
from foryou_protos import home_mixer_pb2, home_mixer_pb2_grpc


@dataclass
class LoadResult:
    clients: int
    duration_s: float
    latencies_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    degraded: int = 0

    @property
    def requests(self) -> int:
        return len(self.latencies_s) + sum(self.errors.values())

    def row(self) -> list[object]:
        p50, p99 = percentiles_ms(self.latencies_s) if self.latencies_s else (float("nan"), float("nan"))
        errors = sum(self.errors.values())
        detail = ", ".join(f"{k} {v}" for k, v in self.errors.items())
        return [self.clients, self.requests, self.requests / self.duration_s, p50, p99,
                f"{errors}" + (f" ({detail})" if detail else ""), self.degraded]


async def drive(address: str, user_ids: list[int], clients: int, duration_s: float,
                timeout_s: float = 10.0, seed: int = 0) -> LoadResult:
    """`clients` concurrent loops, each sending one request at a time for `duration_s`."""
    result = LoadResult(clients, duration_s)
    rng = random.Random(seed)
    channels = [grpc.aio.insecure_channel(address) for _ in range(min(clients, 8))]
    stubs = [home_mixer_pb2_grpc.ScoredPostsServiceStub(c) for c in channels]
    deadline = time.monotonic() + duration_s

    async def client(i: int) -> None:
        stub = stubs[i % len(stubs)]
        while time.monotonic() < deadline:
            query = home_mixer_pb2.ScoredPostsQuery(viewer_id=rng.choice(user_ids))
            started = time.perf_counter()
            try:
                reply = await stub.GetScoredPosts(query, timeout=timeout_s)
            except grpc.aio.AioRpcError as exc:
                name = exc.code().name
                result.errors[name] = result.errors.get(name, 0) + 1
                continue
            result.latencies_s.append(time.perf_counter() - started)
            result.degraded += bool(reply.degraded)

    result.duration_s = await run_clients(client, clients, channels)
    return result


async def _own_stack(args):
    from foryou.seed import publish_world
    from foryou.stack import Stack, StackConfig
    from foryou.world import WorldConfig, generate_world

    stack = Stack(StackConfig.free_ports(preset=args.preset), write_state=False)
    await stack.start()
    world = generate_world(WorldConfig(num_users=args.users, days=1.0, seed=args.seed))
    await publish_world(world, stack.kafka_bootstrap)
    return stack, [u.user_id for u in world.users]


async def _wait_caught_up(address: str, user_ids: list[int]) -> None:
    """Until feeds come back non-empty (Thunder has consumed the world)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = home_mixer_pb2_grpc.ScoredPostsServiceStub(channel)
        for _ in range(120):
            reply = await stub.GetScoredPosts(home_mixer_pb2.ScoredPostsQuery(viewer_id=user_ids[-1]), timeout=30)
            if reply.scored_posts and not reply.degraded:
                return
            await asyncio.sleep(0.5)


async def amain(args: argparse.Namespace) -> int:
    stack = None
    if args.use_running:
        from foryou.seed import load_world
        from foryou.stack import resolve_home_mixer_address
        address = resolve_home_mixer_address(args.address)
        user_ids = [u.user_id for u in load_world().users]
    else:
        print(f"starting a stack (preset {args.preset}) and seeding {args.users} users ...", flush=True)
        stack, user_ids = await _own_stack(args)
        address = stack.address("home-mixer")
    try:
        await _wait_caught_up(address, user_ids)
        rows = []
        total_errors = 0
        for clients in args.clients:
            # warm-up at this concurrency: new micro-batch shapes compile on first use
            await drive(address, user_ids, clients, args.warmup, args.timeout)
            result = await drive(address, user_ids, clients, args.duration, args.timeout)
            rows.append(result.row())
            total_errors += sum(result.errors.values())
        print_table(f"GetScoredPosts load test, {args.duration:.0f}s per level, {len(user_ids)} users, {address}",
                    ["clients", "requests", "req/s", "p50 ms", "p99 ms", "errors", "degraded"], rows)
        return 1 if total_errors else 0
    finally:
        if stack is not None:
            await asyncio.to_thread(stack.stop)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench load_test", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,4,16,32", help="comma-separated concurrency levels")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per level")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up traffic before each level")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request deadline, seconds")
    parser.add_argument("--use-running", action="store_true", help="load the running `foryou up` stack")
    parser.add_argument("--address", default=None, help="HomeMixer host:port (with --use-running)")
    parser.add_argument("--users", type=int, default=300, help="world size when starting a stack")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "demo", "serving"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.clients = [int(c) for c in args.clients.split(",")]
    return asyncio.run(amain(args))
