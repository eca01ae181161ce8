"""`foryou bench home_mixer_feed`: end-to-end GetScoredPosts latency and throughput with
1,000 candidates per request (600 in-network from Thunder + 400 out-of-network from Phoenix
retrieval by default), broken down by pipeline stage.

Starts its own embedded broker, publishes a synthetic world through Kafka, runs real Thunder,
Phoenix (random-init preset, CPU unless JAX finds an accelerator) and HomeMixer processes on
loopback, then measures as a client: sequential requests for latency (p50/p99, and per stage
from the response's debug timings), then concurrent requests for throughput."""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict

import grpc

from bench.common import percentiles_ms, print_table
from foryou import topics
from foryou.broker import EmbeddedBroker, create_topics, free_port
from foryou.process import ServiceProcess
from foryou.seed import publish_events
from foryou.snowflake import make_id, now_ms
from foryou_protos import (common_pb2, events_pb2, home_mixer_pb2, home_mixer_pb2_grpc, phoenix_pb2,
                           phoenix_pb2_grpc, thunder_pb2, thunder_pb2_grpc)

VIEWER = 1


def world_events(followed: int, oon_authors: int, posts_per_author: int) -> list[tuple[str, object]]:
    events: list[tuple[str, object]] = []
    now, low = now_ms(), 0
    authors = list(range(1000, 1000 + followed + oon_authors))
    for author in authors:
        events.append((topics.USERS, events_pb2.UserEvent(user_id=author, timestamp_ms=now,
                                                          profile=events_pb2.Profile(handle=f"u{author}"))))
    for author in authors[:followed]:
        events.append((topics.USERS, events_pb2.UserEvent(user_id=VIEWER, timestamp_ms=now, follow=author)))
    for i in range(posts_per_author):
        for author in authors:
            created = now - (i * len(authors) + author) * 1000  # distinct times, all within hours
            low += 1
            events.append((topics.POSTS, events_pb2.PostEvent(created=common_pb2.Post(
                post_id=make_id(created, low), author_id=author, created_at_ms=created,
                text=f"post {i} by {author} about things", video_duration_ms=15_000 if i % 5 == 0 else 0))))
    return events


async def one_request(stub, request) -> tuple[float, home_mixer_pb2.ScoredPostsResponse]:
    started = time.perf_counter()
    reply = await stub.GetScoredPosts(request, timeout=60)
    return time.perf_counter() - started, reply


async def measure(args: argparse.Namespace) -> None:
    with EmbeddedBroker() as broker:
        await create_topics(broker.bootstrap_servers)
        events = world_events(args.followed, args.oon_authors, args.posts_per_author)
        await publish_events(broker.bootstrap_servers, events, len(events))
        ports = {name: free_port() for name in ("thunder", "phoenix", "home_mixer")}
        addr = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
        common = ["--metrics-port", "0", "--kafka-bootstrap", broker.bootstrap_servers, "--log-level", "WARNING"]
        processes = [
            ServiceProcess("thunder", ["--port", str(ports["thunder"]), *common], addr["thunder"]),
            ServiceProcess("phoenix", ["--port", str(ports["phoenix"]), *common, "--preset", args.preset],
                           addr["phoenix"]),
            ServiceProcess("home-mixer", ["--port", str(ports["home_mixer"]), *common,
                                          "--thunder-address", addr["thunder"], "--phoenix-address", addr["phoenix"],
                                          "--phoenix-timeout-s", "30", "--thunder-timeout-s", "10",
                                          "--request-budget-s", "60"], addr["home_mixer"]),
        ]
        try:
            for process in processes:
                process.start()
            await asyncio.gather(*(p.wait_ready(timeout_s=300) for p in processes))
            await run_load(args, addr["home_mixer"], await candidate_counts(args, addr))
        finally:
            for process in reversed(processes):
                process.stop()


async def candidate_counts(args: argparse.Namespace, addr: dict[str, str]) -> dict[str, int]:
    """What the two sources get per request, asked of Thunder and Phoenix directly."""
    async with grpc.aio.insecure_channel(addr["thunder"]) as t, grpc.aio.insecure_channel(addr["phoenix"]) as p:
        in_network = await thunder_pb2_grpc.ThunderServiceStub(t).GetInNetworkPosts(
            thunder_pb2.GetInNetworkPostsRequest(user_id=VIEWER, max_results=args.in_network), timeout=30)
        retrieved = await phoenix_pb2_grpc.PhoenixServiceStub(p).Retrieve(
            phoenix_pb2.RetrieveRequest(user_id=VIEWER, k=args.out_of_network), timeout=60)
    return {"in-network": len(in_network.posts), "out-of-network": len(retrieved.posts)}


async def run_load(args: argparse.Namespace, address: str, counts: dict[str, int]) -> None:
    params = {"thunder_max_results": args.in_network, "phoenix_max_results": args.out_of_network}
    request = home_mixer_pb2.ScoredPostsQuery(viewer_id=VIEWER, params=params, debug=True)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = home_mixer_pb2_grpc.ScoredPostsServiceStub(channel)
        _, reply = await one_request(stub, request)
        if reply.degraded:
            raise SystemExit(f"feed is degraded: {list(reply.degraded)}")
        plain = home_mixer_pb2.ScoredPostsQuery(viewer_id=VIEWER, params=params)
        semaphore = asyncio.Semaphore(args.concurrency)

        async def limited():
            async with semaphore:
                return await one_request(stub, plain)
        # Warm-up, sequential and concurrent: Phoenix compiles one program per batch shape.
        for _ in range(args.warmup):
            await one_request(stub, request)
        await asyncio.gather(*(limited() for _ in range(args.concurrency * 2)))
        latencies, stage_ms = [], defaultdict(list)
        for _ in range(args.requests):
            elapsed, reply = await one_request(stub, request)
            latencies.append(elapsed)
            for t in reply.debug.timings:
                stage_ms[(t.stage, t.component)].append(t.duration_ms)
        started = time.perf_counter()
        concurrent = await asyncio.gather(*(limited() for _ in range(args.throughput_requests)))
        wall = time.perf_counter() - started

    p50, p99 = percentiles_ms(latencies)
    cp50, cp99 = percentiles_ms([e for e, _ in concurrent])
    print_table(
        f"GetScoredPosts end to end ({args.in_network} in-network + {args.out_of_network} out-of-network "
        f"requested; Phoenix preset {args.preset})",
        ["mode", "requests", "p50 ms", "p99 ms", "req/s"],
        [["sequential", args.requests, p50, p99, args.requests / sum(latencies)],
         [f"concurrency {args.concurrency}", args.throughput_requests, cp50, cp99, args.throughput_requests / wall]],
    )
    print(f"candidates per request: {sum(counts.values())} ({counts})")
    rows = []
    for (stage, component), values in stage_ms.items():
        if stage == "side_effects":
            continue  # after the response; not part of its latency
        rows.append([stage, component or "(stage)", statistics.median(values), max(values)])
    print_table("Per stage and component, sequential requests", ["stage", "component", "median ms", "max ms"], rows)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench home_mixer_feed", description=__doc__)
    parser.add_argument("--followed", type=int, default=60, help="accounts the viewer follows")
    parser.add_argument("--oon-authors", type=int, default=100, help="accounts the viewer does not follow")
    parser.add_argument("--posts-per-author", type=int, default=12)
    parser.add_argument("--in-network", type=int, default=600, help="thunder_max_results per request")
    parser.add_argument("--out-of-network", type=int, default=400, help="phoenix_max_results per request")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "demo", "serving"])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--throughput-requests", type=int, default=80)
    args = parser.parse_args(argv)
    asyncio.run(measure(args))
    return 0
