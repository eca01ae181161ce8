"""Broker storage benchmark: what the durable log costs against memory storage.

`foryou bench broker_storage [--posts N] [--batch B]`

For each storage (memory://, and s3:// on the SeaweedFS object store in a temp directory) it
starts an embedded broker, then measures:
1. produce: N post events (about 120 bytes each, as `foryou seed` writes them) published with
   aiokafka, `--batch` sends in flight, every one acknowledged; records per second.
2. ingest: Thunder's own Ingestor replaying the topic into its stores until caught up (fetch,
   event rules, decode, insert); records per second.
3. restart (durable only): the broker killed -9, restarted on the same log, and the topic
   replayed again: seconds until it is read back, and how many records survived.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from bench.common import print_table
from bench.thunder_store import produce
from foryou import topics
from foryou.broker import EmbeddedBroker, create_topics
from foryou.snowflake import make_id, now_ms
from foryou_protos import common_pb2, events_pb2


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="foryou bench broker_storage")
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000, help="sends in flight before waiting for acks")
    return parser.parse_args(argv)


def _events(n: int) -> list[tuple[bytes, bytes]]:
    now = now_ms()
    out = []
    for i in range(n):
        created = now - 3_600_000 + i * 3_600_000 // max(1, n)
        event = events_pb2.PostEvent()
        event.created.CopyFrom(common_pb2.Post(post_id=make_id(created, i), author_id=1 + i % 5_000,
                                               created_at_ms=created, text=f"benchmark post number {i} " * 3))
        out.append((topics.key_for(topics.POSTS, event), topics.encode(event)))
    return out


async def _ingest(bootstrap: str) -> tuple[float, int]:
    from thunder.ingest import Ingestor
    from thunder.post_store import PostStore
    from thunder.settings import ThunderSettings
    from thunder.user_store import UserStore

    settings = ThunderSettings(kafka_bootstrap=bootstrap)
    posts = PostStore(settings.store, settings.query)
    ingestor = Ingestor(settings, posts, UserStore(settings.store))
    start = time.perf_counter()
    task = asyncio.create_task(ingestor.run())
    await ingestor.caught_up.wait()
    elapsed = time.perf_counter() - start
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await ingestor.stop()
    return elapsed, len(posts.posts)


async def _one(storage: str, events, batch: int) -> list[object]:
    with tempfile.TemporaryDirectory(prefix="bench-log-") as data:
        broker = EmbeddedBroker(storage=storage, data_dir=data if storage == "durable" else None)
        started = time.perf_counter()
        broker.start()
        start_s = time.perf_counter() - started
        try:
            await create_topics(broker.bootstrap_servers)
            produce_s = await produce(broker.bootstrap_servers, events, batch, linger_ms=5, max_batch_size=256 * 1024)
            ingest_s, ingested = await _ingest(broker.bootstrap_servers)
            restart = ["-", "-"]
            if storage == "durable":
                broker.kill()
                started = time.perf_counter()
                broker.restart()
                replay_s, survived = await _ingest(broker.bootstrap_servers)
                restart = [f"{time.perf_counter() - started:.2f}", f"{survived:,} of {len(events):,}"]
        finally:
            broker.stop()
    n = len(events)
    return [storage, f"{start_s:.2f}", f"{n / produce_s:,.0f}", f"{n / ingest_s:,.0f}",
            f"{ingested:,}", *restart]


async def _run(args: argparse.Namespace) -> None:
    events = _events(args.posts)
    rows = [await _one(storage, events, args.batch) for storage in ("memory", "durable")]
    print_table(f"broker storage, {args.posts:,} post events",
                ["storage", "start s", "produce rec/s", "ingest rec/s", "ingested", "kill -9 + replay s",
                 "survived"], rows)


def main(argv: list[str]) -> int:
    asyncio.run(_run(parse(argv)))
    return 0
