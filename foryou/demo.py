"""`foryou demo`: the whole system in one command. Starts the local stack (`foryou up`),
seeds a synthetic world through Kafka (`foryou seed`), trains a small ranker and retriever on
the same events, lets Phoenix hot-reload the new checkpoints, and prints the For You feeds of
a few users next to their hidden tastes, so you can see whether the feed matches them, and
where two posts published after training land in one of those feeds (foryou/demo_fresh.py).
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from typing import Literal

from pydantic import Field

from explorer.cli import UiSettings
from foryou import config, tls
from foryou.demo_fresh import fresh_post_lines
from foryou.feed import format_feed, get_feed
from foryou.seed import (WORLD_FILE, WorldSettings, add_world_arguments, progress_printer, publish_world,
                         save_world_config, summary)
from foryou.stack import Stack, StackConfig, add_stack_arguments, print_addresses, stack_config_from_args, state_dir
from foryou.world import World, generate_world
from foryou_protos import phoenix_pb2, phoenix_pb2_grpc


def say(line: str) -> None:
    print(line, flush=True)


def train_models(world: World | None, checkpoint_dir: Path, ranker_steps: int, retriever_steps: int,
                 events=None, preset: str = "small") -> list[str]:
    """Train the ranker and the retriever on the world's events (or `events`) with the phoenix
    training functions and a training preset's recipe (phoenix/training/presets.py), and save
    checkpoints where Phoenix watches; returns their checkpoint ids."""
    import importlib

    from phoenix import checkpoints
    from phoenix.training.data import collect
    from phoenix.training.presets import train_recipe

    if events is None:
        if world is None:
            raise ValueError("train_models needs a world or its events")
        events = world.events()
    log = collect(events)  # joined once, used by both
    quiet = lambda line: None  # noqa: E731 - the demo prints its own summary lines
    ids = []
    # "small": tiny widths with hash tables large enough that a 400-user world's ids rarely
    # collide (favorite AUC about 0.80 against 0.71 with the tiny tables, same training time).
    recipe = train_recipe(preset)
    retriever_extras = recipe.retriever_arguments()
    jobs = [(checkpoints.RANKER, "phoenix.training.ranker", recipe.ranker, ranker_steps, {}),
            (checkpoints.RETRIEVER, "phoenix.training.retriever", recipe.retriever, retriever_steps, retriever_extras)]
    for kind, module_name, model_cfg, steps, extras in jobs:
        if steps <= 0:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            say(f"  {module_name} is not available: phoenix keeps its initial {kind}")
            continue
        started = time.monotonic()
        params, metrics = module.train(log, model_cfg, steps=steps, progress=quiet, **extras)
        ref = checkpoints.save(checkpoint_dir, kind, steps, params, model_cfg, metrics)
        ran = metrics.get("train", {}).get("steps", steps)  # early stopping may end before the budget
        say(f"  trained {kind}: {ran} of {steps} steps in {time.monotonic() - started:.0f}s; "
            f"held-out {headline(kind, metrics)}")
        ids.append(ref.checkpoint_id)
    return ids


def headline(kind: str, metrics: dict) -> str:
    """One line of held-out metrics, model vs baselines, whatever the evaluation reports."""
    methods = metrics.get("eval", {}).get("methods", {})
    if kind == "ranker":
        return "favorite AUC " + ", ".join(f"{m} {r['favorite']['auc']:.3f}" for m, r in methods.items()
                                           if "favorite" in r)
    parts = []
    for method, result in methods.items():
        recall = {k: v for k, v in result.items() if k.startswith("recall")}
        if recall:
            key = sorted(recall)[-1]
            parts.append(f"{method} {key} {recall[key]:.3f}")
    return ", ".join(parts) or "(no evaluation reported)"


async def wait_for_checkpoints(address: str, wanted: list[str], timeout_s: float = 120.0) -> str:
    """Until Phoenix's ModelInfo reports every wanted checkpoint id (it polls its directory)."""
    deadline = time.monotonic() + timeout_s
    async with tls.channel(address) as channel:
        stub = phoenix_pb2_grpc.PhoenixServiceStub(channel)
        while True:
            info = await stub.ModelInfo(phoenix_pb2.ModelInfoRequest(), timeout=10)
            if all(w in info.checkpoint_id.split("+") for w in wanted):
                return info.checkpoint_id
            if time.monotonic() > deadline:
                raise TimeoutError(f"phoenix still serves {info.checkpoint_id}, not {wanted}")
            await asyncio.sleep(0.5)


async def warm_up(address: str, user_id: int, timeout_s: float = 120.0) -> None:
    """Feed requests until one is not degraded: the first ranking after a reload compiles the
    new model, which can take longer than HomeMixer's Phoenix deadline. RecordServed is off:
    the served filter runs on every request, so a recorded warm-up would hide the feed's top."""
    deadline = time.monotonic() + timeout_s
    while True:
        feed = await get_feed(address, user_id, disabled_components=["RecordServed"])
        if not feed.degraded or time.monotonic() > deadline:
            return
        await asyncio.sleep(1.0)


async def train_and_reload(stack, world: World | None, checkpoint_dir: Path, args: argparse.Namespace,
                           events=None, preset: str = "small") -> None:
    """Train both models (on the world's events, or `events`) and wait until Phoenix serves them."""
    ids = await asyncio.to_thread(train_models, world, checkpoint_dir, args.ranker_steps, args.retriever_steps, events,
                                  preset)
    serving = await wait_for_checkpoints(stack.address("phoenix"), ids)
    say(f"      phoenix hot-reloaded {serving}")


async def show_feeds(stack, users: list[int], heading: str, title: Callable[[int], str],
                     notes: Callable[[int, object], list[str]], text_width: int) -> None:
    """Warm HomeMixer up, then print each user's feed: `title(user)` above it, `notes(user,
    feed)` below."""
    await warm_up(stack.address("home-mixer"), users[0])
    say(heading)
    for user_id in users:
        feed = await get_feed(stack.address("home-mixer"), user_id)
        say("")
        say(format_feed(feed, title(user_id), text_width=text_width))
        for line in notes(user_id, feed):
            say(line)


def showcase_users(world: World, count: int) -> list[int]:
    """Active users with clear tastes: many engagements, and following a fair number of accounts."""
    engaged: dict[int, int] = {}
    for e in world.engagements:
        engaged[e.user_id] = engaged.get(e.user_id, 0) + 1
    ranked = sorted(world.users, key=lambda u: (-min(engaged.get(u.user_id, 0), 40), -len(world.follows[u.user_id]),
                                                u.user_id))
    return [u.user_id for u in ranked[:count]]


def taste_line(world: World, user_id: int, feed) -> str:
    user = world.user(user_id)
    loved = [world.topic_names[t] for t in user.taste.argsort()[::-1][:2]]
    disliked = world.topic_names[int(user.taste.argmin())]
    topics = [world.post_topic.get(p.post_id) for p in feed.scored_posts]
    on_loved = sum(1 for t in topics if t is not None and world.topic_names[t] in loved)
    base = sum(1 for p in world.posts if world.topic_names[world.post_topic[p.post_id]] in loved) / max(len(world.posts), 1)
    return (f"  hidden taste: loves {', '.join(loved)}; dislikes {disliked}. "
            f"{on_loved}/{len(topics)} feed posts on loved topics (corpus share {base:.0%})")


async def demo(args: argparse.Namespace) -> int:
    if getattr(args, "dataset", None):
        from foryou.importers.demo import dataset_demo
        return await dataset_demo(args)
    started = time.monotonic()
    cfg = stack_config_from_args(args)
    checkpoint_dir = Path(args.checkpoint_dir or state_dir() / "demo-checkpoints").absolute()
    shutil.rmtree(checkpoint_dir, ignore_errors=True)  # every demo trains afresh
    checkpoint_dir.mkdir(parents=True)
    cfg = cfg.model_copy(update={"checkpoint_dir": str(checkpoint_dir)})
    world_cfg = config.from_args(WorldSettings, args).world_config()

    say("[1/4] starting the stack (broker, thunder, phoenix, home-mixer) ...")
    stack = Stack(cfg)
    ui = None
    try:
        await stack.start()
        print_addresses(stack)
        say(f"      up in {time.monotonic() - started:.0f}s")

        say("[2/4] generating and seeding a synthetic world ...")
        world = generate_world(world_cfg)
        say(f"      {summary(world)}")
        save_world_config(world, state_dir() / WORLD_FILE)
        counts = await publish_world(world, stack.kafka_bootstrap, progress_printer("      publishing", sys.stdout))
        say(f"      published {sum(counts.values())} events to {stack.kafka_bootstrap}")

        say("[3/4] training the ranker and the retriever on the seeded events ...")
        await train_and_reload(stack, world, checkpoint_dir, args)
        users = args.user or showcase_users(world, args.feeds)
        await show_feeds(stack, users, f"[4/4] For You feeds ({time.monotonic() - started:.0f}s so far)",
                         lambda user_id: f"@{world.user(user_id).handle} (user {user_id})",
                         lambda user_id, feed: [taste_line(world, user_id, feed)], args.text_width)
        say("\nposts published after training (post ids no model has seen):")
        addresses = {name: stack.address(name) for name in ("thunder", "phoenix", "home-mixer")}
        for line in await fresh_post_lines(world, users[0], stack.kafka_bootstrap, addresses):
            say(line)
        say(f"\ndemo finished in {time.monotonic() - started:.0f}s")
        if args.ui:  # the explorer needs the stack: --ui keeps it running
            from explorer.launch import start_ui
            ui, ui_url = await start_ui(stack, 0 if args.free_ports else UiSettings.default("port"))
            say(f"explorer    {ui_url}feed/{users[0]}")
        if args.keep_running or args.ui:
            say("the stack keeps running: try `foryou feed USER_ID` or `foryou ui`; Ctrl-C stops it")
            await _wait_for_signal()
        return 0
    finally:
        if ui is not None:
            await asyncio.to_thread(ui.stop)
        await asyncio.to_thread(stack.stop)


async def _wait_for_signal() -> None:
    import signal
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


class DemoSettings(config.Settings):
    model_config = config.prefixed("demo")
    free_ports: bool = Field(True, description="free ports for every service (--no-free-ports: the port settings)")
    ranker_steps: int = Field(150, description="ranker training steps (the most; early stopping may end sooner)")
    retriever_steps: int = Field(150, description="retriever training steps")
    feeds: int = Field(3, description="how many users' feeds to print")
    user: list[int] = Field(default_factory=list, description="print this user's feed")
    text_width: int = Field(48, description="characters of post text shown")
    keep_running: bool = Field(False, description="leave the stack up after the demo")
    ui: bool = Field(False, description="then serve the feed explorer web page and keep the stack running "
                                        "(implies --keep-running)")
    dataset: Literal["movielens-100k"] | None = Field(None, description="serve real users on a real data set "
                                                                        "instead of a synthetic world (foryou import)")
    dataset_dir: str | None = Field(None, description="with --dataset: its files (default: the installed package's)")


# a small world; a memory log: every demo seeds a fresh world, a durable log would pile up
# earlier runs' worlds
DEMO_DEFAULTS = {"users": 400, "preset": "tiny", "storage": "memory"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_world_arguments(parser, DEMO_DEFAULTS)
    add_stack_arguments(parser, DEMO_DEFAULTS)
    config.add_settings(parser, DemoSettings)


def run(args: argparse.Namespace) -> int:
    args = config.resolve(args, WorldSettings, StackConfig, DemoSettings)
    try:
        return asyncio.run(demo(args))
    except KeyboardInterrupt:
        return 130
