"""`foryou demo --dataset movielens-100k`: the demo's four steps on real data. The stack
starts, the data set is imported through Kafka (`foryou import`), the ranker and retriever
train on it, and the For You feeds of a few real users are printed next to the movies they
most recently rated highly, so you can judge the feed against their taste."""
from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from pathlib import Path

from foryou_protos import common_pb2


def say(line: str) -> None:
    print(line, flush=True)


def showcase_users(data, count: int) -> list[int]:
    """Users with many favorites, most recent activity first among equals."""
    favs: dict[int, int] = {}
    for e in data.engagements:
        if common_pb2.FAVORITE in e.actions:
            favs[e.user_id] = favs.get(e.user_id, 0) + 1
    return sorted(favs, key=lambda u: (-min(favs[u], 60), u))[:count]


def recent_loved(data, user_id: int, titles: dict[int, str], n: int = 5) -> list[str]:
    loved = [e for e in data.engagements if e.user_id == user_id and common_pb2.FAVORITE in e.actions]
    return [titles.get(e.post_id, str(e.post_id)) for e in sorted(loved, key=lambda e: -e.timestamp_ms)[:n]]


async def dataset_demo(args: argparse.Namespace) -> int:
    from foryou.demo import show_feeds, train_and_reload  # the synthetic demo's steps
    from foryou.importers import movielens
    from foryou.importers.common import publish
    from foryou.seed import progress_printer
    from foryou.stack import Stack, print_addresses, stack_config_from_args, state_dir

    started = time.monotonic()
    cfg = stack_config_from_args(args)
    checkpoint_dir = Path(args.checkpoint_dir or state_dir() / "demo-checkpoints").absolute()
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    checkpoint_dir.mkdir(parents=True)
    cfg = cfg.model_copy(update={"checkpoint_dir": str(checkpoint_dir)})
    try:
        data = movielens.load(args.dataset_dir, now_ms=args.now_ms)
    except (FileNotFoundError, ValueError) as exc:
        print(f"foryou demo: {exc}", file=sys.stderr)
        return 2
    titles = {e.created.post_id: e.created.text for e in data.post_events}

    say("[1/4] starting the stack (broker, thunder, phoenix, home-mixer) ...")
    stack = Stack(cfg)
    try:
        await stack.start()
        print_addresses(stack)
        say(f"      up in {time.monotonic() - started:.0f}s")
        say(f"[2/4] importing {args.dataset} through Kafka ...")
        say(f"      {data.summary()}")
        for note in data.notes:
            say(f"      {note}")
        await asyncio.to_thread(publish, data, stack.kafka_bootstrap, progress_printer("      publishing", sys.stdout))
        say("[3/4] training the ranker and the retriever on the imported events ...")
        await train_and_reload(stack, None, checkpoint_dir, args, list(data.events()), preset="movielens")
        users = args.user or showcase_users(data, args.feeds)

        def notes(user_id: int, feed) -> list[str]:
            from_data = sum(1 for p in feed.scored_posts if p.post_id in titles)
            return ["  recently rated 4-5: " + "; ".join(recent_loved(data, user_id, titles)),
                    f"  {from_data}/{len(feed.scored_posts)} feed posts are MovieLens movies"]
        await show_feeds(stack, users, f"[4/4] For You feeds of real users ({time.monotonic() - started:.0f}s so far)",
                         lambda user_id: f"@ml_user{user_id} (user {user_id})", notes, args.text_width)
        say(f"\ndemo finished in {time.monotonic() - started:.0f}s")
        if args.keep_running:
            from foryou.demo import _wait_for_signal
            say("the stack keeps running: try `foryou feed USER_ID`; Ctrl-C stops it")
            await _wait_for_signal()
        return 0
    finally:
        await asyncio.to_thread(stack.stop)
