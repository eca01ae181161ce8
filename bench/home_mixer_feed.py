"""`foryou bench home_mixer_feed`: end-to-end GetScoredPosts latency and throughput with
1,000 candidates per request (600 in-network from Thunder + 400 out-of-network from Phoenix
retrieval by default), and where the time goes.

Starts its own embedded broker, publishes a synthetic world through Kafka, runs real Thunder,
Phoenix (random-init preset, CPU unless JAX finds an accelerator) and HomeMixer processes on
loopback with HomeMixer's shipped call deadlines, then measures as a client, in one run:
- sequential requests: p50/p99, and per stage and component (the response's debug timings);
- concurrent clients (8 and 32 by default): latency, throughput, errors and degraded feeds,
  the last one for a fixed duration (30 s);
- CPU time per request of each service process (utime + stime from /proc/PID/stat, before
  and after each phase), so a reader sees which process the request costs;
- the model floor: Phoenix ranking the same candidates alone (its Rank RPC, sequential),
  and the ratio of the end-to-end p50 to it;
- the load average, since the machine may be shared."""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections import defaultdict
from collections import Counter
from dataclasses import dataclass, field

import grpc

from bench.common import percentiles_ms, print_table
from foryou import topics
from foryou.broker import EmbeddedBroker, create_topics, free_port
from foryou.process import ServiceProcess
from foryou.seed import publish_events
from foryou.snowflake import make_id, now_ms
from foryou_protos import (common_pb2, events_pb2, home_mixer_pb2, home_mixer_pb2_grpc, phoenix_pb2,
                           phoenix_pb2_grpc, thunder_pb2, thunder_pb2_grpc)
from home_mixer.clients import history_items
from home_mixer.query_hydrators.user_action_sequence import merge_engagements

SERVICES = ("home_mixer", "thunder", "phoenix")
_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_S


@dataclass
class Phase:
    name: str
    latencies: list[float]
    wall_s: float
    errors: int
    degraded: int
    cpu_s: dict[str, float]  # service -> CPU seconds spent during the phase
    reasons: Counter = field(default_factory=Counter)  # degraded reason -> feeds
    error_codes: Counter = field(default_factory=Counter)  # status code name -> failed calls
    error_latencies: list[float] = field(default_factory=list)  # how long a failed call took

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.errors


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
            if i == 1 and author in authors[:40]:  # a history for the model: the viewer liked 40 posts
                events.append((topics.ENGAGEMENTS, common_pb2.Engagement(
                    user_id=VIEWER, post_id=make_id(created, low), post_author_id=author,
                    actions=[common_pb2.FAVORITE], surface=common_pb2.HOME_FOR_YOU, timestamp_ms=now - author)))
    return events


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
            ServiceProcess("phoenix", ["--port", str(ports["phoenix"]), *common, "--preset", args.preset,
                                       "--no-warm-every-bucket"], addr["phoenix"]),
            ServiceProcess("home-mixer", ["--port", str(ports["home_mixer"]), *common,
                                          "--thunder-address", addr["thunder"], "--phoenix-address", addr["phoenix"],
                                          "--phoenix-timeout-s", str(args.phoenix_timeout_s),
                                          "--thunder-timeout-s", str(args.thunder_timeout_s)], addr["home_mixer"]),
        ]
        try:
            for process in processes:
                process.start()
            await asyncio.gather(*(p.wait_ready(timeout_s=900) for p in processes))
            pids = {name: process.pid for name, process in zip(("thunder", "phoenix", "home_mixer"), processes)}
            await run_load(args, addr, pids)
        finally:
            for process in reversed(processes):
                process.stop()


async def floor_request(args: argparse.Namespace, addr: dict[str, str]) -> tuple[phoenix_pb2.RankRequest, dict]:
    """A Rank request for the candidates the feed ranks (the sources' answers, asked of Thunder
    and Phoenix directly), with the viewer's history as HomeMixer sends it."""
    async with grpc.aio.insecure_channel(addr["thunder"]) as t, grpc.aio.insecure_channel(addr["phoenix"]) as p:
        thunder = thunder_pb2_grpc.ThunderServiceStub(t)
        phoenix = phoenix_pb2_grpc.PhoenixServiceStub(p)
        context = await thunder.GetUserContext(thunder_pb2.GetUserContextRequest(user_id=VIEWER), timeout=30)
        in_network = (await thunder.GetInNetworkPosts(thunder_pb2.GetInNetworkPostsRequest(
            user_id=VIEWER, max_results=args.in_network), timeout=30)).posts
        retrieved = (await phoenix.Retrieve(phoenix_pb2.RetrieveRequest(
            user_id=VIEWER, k=args.out_of_network, exclude_author_ids=list(context.following_user_ids)),
            timeout=60)).posts
        info = await phoenix.ModelInfo(phoenix_pb2.ModelInfoRequest(), timeout=30)
    history = history_items(merge_engagements(context.engagements, 5 * 60 * 1000, info.max_history), info.max_history)
    request = phoenix_pb2.RankRequest(
        user_id=VIEWER, history=history, surface=common_pb2.HOME_FOR_YOU,
        post_ids=[*in_network.post_ids, *(r.post_id for r in retrieved)],
        author_ids=[*in_network.author_ids, *(r.author_id for r in retrieved)])
    return request, {"in-network": len(in_network.post_ids), "out-of-network": len(retrieved)}


async def one_request(stub, request) -> tuple[float, home_mixer_pb2.ScoredPostsResponse]:
    started = time.perf_counter()
    reply = await stub.GetScoredPosts(request, timeout=60)
    return time.perf_counter() - started, reply


async def phase(name: str, stub, request, pids: dict[str, int], concurrency: int,
                count: int | None = None, duration_s: float | None = None) -> Phase:
    """`concurrency` clients sending `request` back to back, `count` requests in all or for
    `duration_s` seconds."""
    latencies: list[float] = []
    errors = degraded = 0
    reasons: Counter = Counter()
    codes: Counter = Counter()
    error_latencies: list[float] = []
    started = time.perf_counter()
    sent = 0

    async def client() -> None:
        nonlocal errors, degraded, sent
        while (count is None or sent < count) and (duration_s is None or time.perf_counter() - started < duration_s):
            sent += 1
            call_started = time.perf_counter()
            try:
                elapsed, reply = await one_request(stub, request)
            except grpc.aio.AioRpcError as err:
                errors += 1
                codes[err.code().name] += 1
                error_latencies.append(time.perf_counter() - call_started)
                continue
            latencies.append(elapsed)
            degraded += bool(reply.degraded)
            reasons.update(r.split(":", 1)[0] for r in reply.degraded)

    before = {service: cpu_seconds(pid) for service, pid in pids.items()}
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    cpu = {service: cpu_seconds(pid) - before[service] for service, pid in pids.items()}
    return Phase(name, latencies, wall, errors, degraded, cpu, reasons, codes, error_latencies)


async def run_load(args: argparse.Namespace, addr: dict[str, str], pids: dict[str, int]) -> None:
    rank_request, counts = await floor_request(args, addr)
    params = {"thunder_max_results": args.in_network, "phoenix_max_results": args.out_of_network}
    debug = home_mixer_pb2.ScoredPostsQuery(viewer_id=VIEWER, params=params, debug=True)
    plain = home_mixer_pb2.ScoredPostsQuery(viewer_id=VIEWER, params=params)
    async with grpc.aio.insecure_channel(addr["home_mixer"]) as channel, \
            grpc.aio.insecure_channel(addr["phoenix"]) as phoenix_channel:
        stub = home_mixer_pb2_grpc.ScoredPostsServiceStub(channel)
        phoenix = phoenix_pb2_grpc.PhoenixServiceStub(phoenix_channel)
        # Warm-up at every concurrency measured: Phoenix compiles one program per batch shape
        # (its micro-batches grow with concurrency), until feeds stop coming back degraded.
        for concurrency in (1, *args.concurrency):
            for _ in range(args.warmup_rounds):
                warm = await phase("warm-up", stub, plain, pids, concurrency, count=4 * concurrency)
                if not warm.degraded and not warm.errors:
                    break
        for _ in range(args.warmup):
            await phoenix.Rank(rank_request, timeout=60)

        stage_ms: dict[tuple[str, str], list[float]] = defaultdict(list)
        sequential_latencies: list[float] = []
        sequential_degraded, sequential_reasons = 0, Counter[str]()
        before = {service: cpu_seconds(pid) for service, pid in pids.items()}
        started = time.perf_counter()
        for _ in range(args.requests):
            elapsed, reply = await one_request(stub, debug)
            sequential_latencies.append(elapsed)
            sequential_degraded += bool(reply.degraded)
            sequential_reasons.update(r.split(":", 1)[0] for r in reply.degraded)
            for t in reply.debug.timings:
                stage_ms[(t.stage, t.component)].append(t.duration_ms)
        sequential = Phase("sequential", sequential_latencies, time.perf_counter() - started, 0, sequential_degraded,
                           {service: cpu_seconds(pid) - before[service] for service, pid in pids.items()},
                           sequential_reasons)
        floor = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            await phoenix.Rank(rank_request, timeout=60)
            floor.append(time.perf_counter() - t0)
        phases = [sequential]
        for concurrency in args.concurrency:
            if concurrency == max(args.concurrency) and args.duration_s:
                phases.append(await phase(f"{concurrency} clients, {args.duration_s:g} s", stub, plain, pids,
                                          concurrency, duration_s=args.duration_s))
            else:
                phases.append(await phase(f"{concurrency} clients", stub, plain, pids, concurrency,
                                          count=args.throughput_requests))

    report(args, counts, phases, stage_ms, floor)


def report(args, counts, phases: list[Phase], stage_ms, floor: list[float]) -> None:
    rows = []
    for p in phases:
        p50, p99 = percentiles_ms(p.latencies) if p.latencies else (float("nan"), float("nan"))
        degraded_pct = 100.0 * p.degraded / max(1, len(p.latencies))
        rows.append([p.name, p.requests, p50, p99, len(p.latencies) / p.wall_s, p.errors, f"{degraded_pct:.1f}%",
                     *(1000.0 * p.cpu_s[s] / max(1, p.requests) for s in SERVICES)])
    print_table(
        f"GetScoredPosts end to end ({sum(counts.values())} candidates: {counts}; Phoenix preset {args.preset}; "
        f"deadlines Thunder {args.thunder_timeout_s}s, Phoenix {args.phoenix_timeout_s}s)",
        ["mode", "requests", "p50 ms", "p99 ms", "req/s", "errors", "degraded",
         "CPU ms/req HomeMixer", "CPU ms/req Thunder", "CPU ms/req Phoenix"], rows)
    for p in phases:
        if p.reasons:
            print(f"degraded feeds, {p.name}: " + ", ".join(f"{r} {n}" for r, n in p.reasons.most_common()))
        if p.error_codes:
            e50, e99 = percentiles_ms(p.error_latencies)
            print(f"errors, {p.name}: " + ", ".join(f"{c} {n}" for c, n in p.error_codes.most_common())
                  + f" (answered in p50 {e50:.0f} ms, p99 {e99:.0f} ms)")
    f50, f99 = percentiles_ms(floor)
    e2e50 = percentiles_ms(phases[0].latencies)[0]
    print_table("Model floor: Phoenix Rank of the same candidates alone, sequential",
                ["requests", "p50 ms", "p99 ms", "end-to-end p50 / floor p50"],
                [[len(floor), f50, f99, f"{e2e50 / f50:.2f}x"]])
    rows = []
    for (stage, component), values in stage_ms.items():
        if stage == "side_effects":
            continue  # after the response; not part of its latency
        rows.append([stage, component or "(stage)", statistics.median(values), max(values)])
    print_table("Per stage and component, sequential requests", ["stage", "component", "median ms", "max ms"], rows)
    load = os.getloadavg()
    print(f"\nload average during the run (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"on {os.cpu_count()} cores")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="foryou bench home_mixer_feed", description=__doc__)
    parser.add_argument("--followed", type=int, default=60, help="accounts the viewer follows")
    parser.add_argument("--oon-authors", type=int, default=100, help="accounts the viewer does not follow")
    parser.add_argument("--posts-per-author", type=int, default=12)
    parser.add_argument("--in-network", type=int, default=600, help="thunder_max_results per request")
    parser.add_argument("--out-of-network", type=int, default=400, help="phoenix_max_results per request")
    parser.add_argument("--preset", default="tiny", choices=["tiny", "demo", "serving"])
    parser.add_argument("--warmup", type=int, default=5, help="Rank calls before the floor is measured")
    parser.add_argument("--warmup-rounds", type=int, default=6, help="warm-up rounds per concurrency at most")
    parser.add_argument("--requests", type=int, default=100, help="sequential requests (and floor Rank calls)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--throughput-requests", type=int, default=200, help="requests per concurrency phase")
    parser.add_argument("--duration-s", type=float, default=30.0,
                        help="the largest concurrency runs this long instead (0: throughput-requests)")
    parser.add_argument("--thunder-timeout-s", type=float, default=0.2, help="HomeMixer's Thunder deadline (its default)")
    parser.add_argument("--phoenix-timeout-s", type=float, default=0.5, help="HomeMixer's Phoenix deadline (its default)")
    args = parser.parse_args(argv)
    asyncio.run(measure(args))
    return 0
