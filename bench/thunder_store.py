"""Thunder benchmark: Kafka ingestion rate, in-network query latency, memory per million posts.

`foryou bench thunder_store [--posts N] [--queries Q]`

1. Generates a synthetic 47-hour window of posts (originals, some with video; replies; reposts)
   over `--authors` accounts and publishes it to an embedded broker started here.
2. Ingestion: Thunder's own Ingestor (aiokafka, manual assignment, batch decode) replays the
   topic into a PostStore; rate = posts / time from start until caught up (end to end: fetch,
   decode, insert). Memory: process RSS growth over the ingestion, per million posts (an upper
   bound: it includes allocator slack and fetch buffers).
3. In-network query, server side, for viewers following 200 and 2,000 random authors, with and
   without 1,000 excluded post ids: the store query alone (request to query + the ordered
   encoded posts) and the whole handler (plus the joined response), timed in-process on
   distinct requests, wall clock and thread CPU time; the gRPC transport is not included.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import time

from bench.common import percentiles_ms, print_table
from foryou import topics
from foryou.broker import EmbeddedBroker, create_topics
from foryou.snowflake import make_id, now_ms
from foryou_protos import common_pb2, events_pb2, thunder_pb2

HOUR_MS = 3_600_000


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench thunder_store")
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--authors", type=int, default=0, help="default: posts / 20")
    parser.add_argument("--queries", type=int, default=2_000, help="queries per following size")
    parser.add_argument("--follows", type=int, nargs="+", default=[200, 2_000])
    parser.add_argument("--excluded", type=int, nargs="+", default=[0, 1_000],
                        help="exclude_post_ids sizes to measure")
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args(argv)


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def generate(n_posts: int, n_authors: int, rng: random.Random, now: int) -> list[tuple[bytes, bytes]]:
    """(key, value) records of `posts`, in creation order, the last 47 hours."""
    start = now - 47 * HOUR_MS
    times = sorted(rng.randrange(start, now - 1000) for _ in range(n_posts))
    records: list[tuple[bytes, bytes]] = []
    recent: list[tuple[int, int]] = []   # (post id, author) of posts to reply to / repost
    for i, created_ms in enumerate(times):
        author = rng.randrange(1, n_authors + 1)
        post = common_pb2.Post(post_id=make_id(created_ms, i), author_id=author, created_at_ms=created_ms,
                               text=f"post {i} by {author} with a little text")
        kind = rng.random()
        if kind < 0.15 and recent:
            parent_id, parent_author = recent[rng.randrange(len(recent))]
            post.in_reply_to_post_id, post.in_reply_to_user_id = parent_id, parent_author
            post.conversation_id = parent_id
        elif kind < 0.25 and recent:
            source_id, source_author = recent[rng.randrange(len(recent))]
            post.repost_of_post_id, post.repost_of_user_id = source_id, source_author
        else:
            post.conversation_id = post.post_id
            if rng.random() < 0.1:
                post.video_duration_ms = rng.randrange(1000, 120_000)
            recent.append((post.post_id, author))
            if len(recent) > 10_000:
                recent = recent[-5_000:]
        event = events_pb2.PostEvent(created=post)
        records.append((topics.key_for(topics.POSTS, event), topics.encode(event)))
    return records


async def produce(bootstrap: str, records, batch: int = 20_000, linger_ms: int = 20,
                  max_batch_size: int = 1 << 20) -> float:
    """Publish (key, value) records to `posts`, awaiting every `batch` sends; seconds taken."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms, max_batch_size=max_batch_size)
    await producer.start()
    start = time.perf_counter()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topics.POSTS, value, key=key))
            if len(pending) >= batch:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - start


async def ingest(bootstrap: str, n_posts: int):
    from thunder.ingest import Ingestor
    from thunder.post_store import PostStore
    from thunder.settings import ThunderSettings
    from thunder.user_store import UserStore

    settings = ThunderSettings(kafka_bootstrap=bootstrap)
    posts, users = PostStore(settings.store, settings.query), UserStore(settings.store)
    ingestor = Ingestor(settings, posts, users)
    gc.collect()
    rss_before = rss_bytes()
    start, start_cpu = time.perf_counter(), time.process_time()
    task = asyncio.create_task(ingestor.run())
    await ingestor.caught_up.wait()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    await ingestor.stop()
    gc.collect()
    rss_delta = rss_bytes() - rss_before
    if len(posts.posts) != n_posts:
        raise SystemExit(f"ingested {len(posts.posts)} posts, expected {n_posts}")
    return posts, users, settings, elapsed, cpu, rss_delta


def time_queries(posts, users, settings, authors: list[int], n_follows: int, n_queries: int,
                 n_excluded: int, rng: random.Random):
    """Each query: a fresh viewer following `n_follows` random authors, excluding `n_excluded`
    random stored post ids (as HomeMixer excludes already-served posts). The store query and
    the whole handler are timed on different requests, so neither runs on caches the other
    warmed."""
    from thunder.service import ThunderHandlers

    handlers = ThunderHandlers(posts, users, settings.query)
    post_ids = list(posts.posts)

    def request(q: int) -> thunder_pb2.GetInNetworkPostsRequest:
        return thunder_pb2.GetInNetworkPostsRequest(
            user_id=10**9 + q, following_user_ids=rng.sample(authors, n_follows),
            exclude_post_ids=rng.sample(post_ids, n_excluded))

    for q in range(200):  # warm-up
        handlers.get_in_network_posts(request(q))
    store_requests = [request(q) for q in range(n_queries)]
    handler_requests = [request(n_queries + q) for q in range(n_queries)]
    store_s, handler_s, store_cpu, handler_cpu, results = [], [], [], [], 0
    wall, cpu = time.perf_counter, time.thread_time
    for req in store_requests:
        t0, c0 = wall(), cpu()
        found = posts.in_network_wires(handlers.in_network_query(req))
        store_s.append(wall() - t0)
        store_cpu.append(cpu() - c0)
        results += len(found)
    for req in handler_requests:
        t0, c0 = wall(), cpu()
        handlers.get_in_network_posts(req)
        handler_s.append(wall() - t0)
        handler_cpu.append(cpu() - c0)
    return store_s, store_cpu, handler_s, handler_cpu, results / n_queries


def _latency(wall_s: list[float], cpu_s: list[float]) -> str:
    w50, w99 = percentiles_ms(wall_s)
    c50, c99 = percentiles_ms(cpu_s)
    return f"wall p50 {w50:.3f} / p99 {w99:.3f} ms; CPU p50 {c50:.3f} / p99 {c99:.3f} ms"


def main(argv: list[str]) -> int:
    args = parse(argv)
    n_authors = args.authors or max(1, args.posts // 20)
    rng = random.Random(args.seed)
    print(f"generating {args.posts:,} posts over {n_authors:,} authors ...", flush=True)
    records = generate(args.posts, n_authors, rng, now_ms())
    with EmbeddedBroker() as broker:
        async def run(records):
            await create_topics(broker.bootstrap_servers)
            produce_s = await produce(broker.bootstrap_servers, records)
            print(f"published in {produce_s:.1f}s; ingesting ...", flush=True)
            return produce_s, await ingest(broker.bootstrap_servers, args.posts)

        produce_s, (posts, users, settings, ingest_s, ingest_cpu, rss_delta) = asyncio.run(run(records))
    del records
    sizes = posts.sizes()
    load = os.getloadavg()[0]
    rows: list[list[object]] = [
        ["publish to broker (aiokafka producer)", f"{args.posts / produce_s:,.0f} posts/s", ""],
        ["ingestion, Kafka -> store (end to end)", f"{args.posts / ingest_s:,.0f} posts/s wall",
         f"{args.posts:,} posts in {ingest_s:.2f}s"],
        ["ingestion, CPU cost", f"{args.posts / ingest_cpu:,.0f} posts per CPU-second",
         "Thunder process only (the broker runs apart)"],
        ["memory (RSS growth) per million posts", f"{rss_delta / args.posts * 1e6 / 2**20:,.0f} MiB",
         f"{sizes['authors']:,} authors"],
    ]
    authors = list(posts.originals.keys() | posts.secondary.keys())
    for n_follows in args.follows:
        for n_excluded in args.excluded:
            store_s, store_cpu, handler_s, handler_cpu, mean_results = time_queries(
                posts, users, settings, authors, n_follows, args.queries, n_excluded, rng)
            label = f"in-network, {n_follows:,} follows, {n_excluded:,} excluded"
            rows.append([f"{label}: store query", _latency(store_s, store_cpu),
                         f"{mean_results:,.0f} posts returned on average"])
            rows.append([f"{label}: whole handler", _latency(handler_s, handler_cpu),
                         "validation + query + serialized response"])
    rows.append(["machine load average (1 min) at the end", f"{load:.1f}", "latency is wall clock and CPU time"])
    print_table(f"Thunder store benchmark ({args.posts:,} posts, {args.queries:,} queries per row)",
                ["measure", "result", "notes"], rows)
    return 0


if __name__ == "__main__":
    import sys
    raise SystemExit(main(sys.argv[1:]))
