"""The HomeMixer integration world and stack: a small hand-made world published through the
session broker, then real Thunder, Phoenix and HomeMixer processes on free loopback ports.
The fixtures (conftest.py) and the fault-injection tests build on these."""
from __future__ import annotations

import asyncio
import itertools
import os
import signal
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import grpc

from foryou.broker import free_port
from foryou.process import ServiceProcess
from foryou.seed import publish_events
from foryou.snowflake import make_id, now_ms
from foryou_protos import common_pb2, events_pb2, home_mixer_pb2_grpc, thunder_pb2_grpc
from foryou import topics

# Ids far from other suites' ids, so a shared session broker cannot mix worlds.
BASE = 7_340_000
_low_bits = itertools.count(BASE % (1 << 20))


@dataclass
class World:
    base: int = BASE
    keyword: str = "Spoiler Alert"
    posts: dict[str, int] = field(default_factory=dict)   # label -> post id
    events: list[tuple[str, object]] = field(default_factory=list)

    # Users, at fixed offsets from `base` (one world per base: a shared broker cannot mix them).
    @property
    def viewer(self) -> int: return self.base + 1
    @property
    def pager(self) -> int: return self.base + 2          # a second viewer, for the served-history test
    @property
    def followed_a(self) -> int: return self.base + 11
    @property
    def followed_b(self) -> int: return self.base + 12
    @property
    def muted(self) -> int: return self.base + 13          # followed and muted
    @property
    def subscribed(self) -> int: return self.base + 14     # followed and subscribed to
    @property
    def unsubscribed(self) -> int: return self.base + 15   # followed, not subscribed to
    @property
    def blocked(self) -> int: return self.base + 21
    @property
    def oon(self) -> tuple[int, ...]: return (self.base + 31, self.base + 32)

    def post(self, label: str, author: int, age_min: float, text: str = "", **fields) -> int:
        post_id = make_id(now_ms() - int(age_min * 60_000), next(_low_bits))
        self.posts[label] = post_id
        self.events.append((topics.POSTS, events_pb2.PostEvent(created=common_pb2.Post(
            post_id=post_id, author_id=author, created_at_ms=now_ms() - int(age_min * 60_000),
            text=text or f"{label} says hello", **fields))))
        return post_id

    def user(self, user_id: int, **event) -> None:
        self.events.append((topics.USERS, events_pb2.UserEvent(user_id=user_id, timestamp_ms=now_ms(), **event)))

    def ids(self, *labels: str) -> set[int]:
        return {self.posts[label] for label in labels}


def build_world(base: int = BASE) -> World:
    w = World(base)
    for uid, handle in [(w.viewer, "viewer"), (w.followed_a, "alice"), (w.followed_b, "bob"), (w.muted, "mute_me"),
                        (w.subscribed, "patron"), (w.unsubscribed, "paywall"), (w.blocked, "troll"),
                        (w.oon[0], "stranger1"), (w.oon[1], "stranger2"), (w.pager, "pager")]:
        w.user(uid, profile=events_pb2.Profile(handle=handle))
    for followed in (w.followed_a, w.followed_b, w.muted, w.subscribed, w.unsubscribed):
        w.user(w.viewer, follow=followed)
    w.user(w.viewer, mute=w.muted)
    w.user(w.viewer, block=w.blocked)
    w.user(w.viewer, subscribe=w.subscribed)
    w.user(w.viewer, mute_keyword=w.keyword)
    for followed in (w.followed_a, w.followed_b):
        w.user(w.pager, follow=followed)
    w.user(w.followed_a, follow=w.viewer)  # a mutual follow of the viewer's (bob does not follow back)

    w.post("a1", w.followed_a, 5)
    w.post("a2", w.followed_a, 15)
    w.post("a_keyword", w.followed_a, 20, text="big SPOILER ALERT: the butler did it")
    w.post("a_served", w.followed_a, 25)
    w.post("b1", w.followed_b, 10)
    w.post("b_deleted", w.followed_b, 12)
    w.post("b_spam", w.followed_b, 14)
    w.post("muted1", w.muted, 6)
    w.post("sub_ok", w.subscribed, 7, subscriber_only=True)
    w.post("sub_paywalled", w.unsubscribed, 8, subscriber_only=True)
    w.post("blocked1", w.blocked, 9)
    w.post("own1", w.viewer, 4)
    for i in range(6):
        w.post(f"oon{i}", w.oon[i % 2], 30 + i)
    w.post("old", w.followed_b, 3 * 24 * 60)  # older than the 2-day max age (and retention)
    # Two reposts of the same stranger's post by followed accounts: one is a duplicate.
    w.post("repost_a", w.followed_a, 3, repost_of_post_id=w.posts["oon0"], repost_of_user_id=w.oon[0])
    w.post("repost_b", w.followed_b, 2, repost_of_post_id=w.posts["oon0"], repost_of_user_id=w.oon[0])

    w.events.append((topics.POSTS, events_pb2.PostEvent(deleted=events_pb2.PostDeleted(
        post_id=w.posts["b_deleted"], author_id=w.followed_b, deleted_at_ms=now_ms()))))
    # A stranger's post whose delete arrives before its create: retrieval must never find it.
    gone = make_id(now_ms() - 31 * 60_000, next(_low_bits))
    w.posts["oon_deleted_first"] = gone
    w.events.append((topics.POSTS, events_pb2.PostEvent(deleted=events_pb2.PostDeleted(
        post_id=gone, author_id=w.oon[0], deleted_at_ms=now_ms()))))
    w.events.append((topics.POSTS, events_pb2.PostEvent(created=common_pb2.Post(
        post_id=gone, author_id=w.oon[0], created_at_ms=now_ms() - 31 * 60_000, text="deleted first"))))
    w.events.append((topics.POSTS, events_pb2.PostEvent(labelled=events_pb2.PostLabelled(
        post_id=w.posts["b_spam"], labels=[common_pb2.SPAM], labelled_at_ms=now_ms()))))
    w.events.append((topics.SERVED, events_pb2.ServedEvent(
        user_id=w.viewer, request_id="earlier", post_ids=[w.posts["a_served"]], served_at_ms=now_ms())))
    return w


@dataclass
class Stack:
    world: World
    thunder: ServiceProcess
    phoenix: ServiceProcess
    home_mixer: ServiceProcess
    channel: grpc.aio.Channel
    stub: home_mixer_pb2_grpc.ScoredPostsServiceStub
    thunder_stub: thunder_pb2_grpc.ThunderServiceStub
    thunder_channel: grpc.aio.Channel


def _address() -> tuple[int, str]:
    port = free_port()
    return port, f"127.0.0.1:{port}"


@dataclass
class Services:
    """The world published and its Thunder and Phoenix processes, shared by the HomeMixers of
    several test modules (Phoenix's start is the slow part)."""
    kafka: str
    world: World
    thunder: ServiceProcess
    phoenix: ServiceProcess

    async def ensure_running(self) -> None:
        """Restart what an earlier test stopped (and thaw what it froze)."""
        for process in (self.thunder, self.phoenix):
            if process.proc is not None and process.alive:
                os.kill(process.proc.pid, signal.SIGCONT)
            else:
                process.start()
        await asyncio.gather(self.thunder.wait_ready(), self.phoenix.wait_ready())


def _stop(*processes: ServiceProcess) -> None:
    for process in processes:
        if process.proc is not None and process.alive:
            os.kill(process.proc.pid, signal.SIGCONT)  # a frozen process cannot take SIGTERM
        process.stop()


@asynccontextmanager
async def running_services(kafka: str, world: World):
    await publish_events(kafka, world.events, len(world.events))
    t_port, t_addr = _address()
    p_port, p_addr = _address()
    common = ["--metrics-port", "0", "--kafka-bootstrap", kafka]
    thunder = ServiceProcess("thunder", ["--port", str(t_port), *common], t_addr).start()
    phoenix = ServiceProcess("phoenix", ["--port", str(p_port), *common, "--preset", "tiny"], p_addr).start()
    try:
        await asyncio.gather(thunder.wait_ready(), phoenix.wait_ready())
        yield Services(kafka, world, thunder, phoenix)
    finally:
        _stop(phoenix, thunder)


@asynccontextmanager
async def running_stack(services: Services, home_mixer_flags: list[str]):
    """A HomeMixer process with these flags in front of the shared Thunder and Phoenix."""
    await services.ensure_running()
    h_port, h_addr = _address()
    home_mixer = ServiceProcess("home-mixer", [
        "--port", str(h_port), "--metrics-port", "0", "--kafka-bootstrap", services.kafka,
        "--thunder-address", services.thunder.address, "--phoenix-address", services.phoenix.address,
        *home_mixer_flags], h_addr).start()
    try:
        await home_mixer.wait_ready()
        channel = grpc.aio.insecure_channel(h_addr)
        thunder_channel = grpc.aio.insecure_channel(services.thunder.address)
        yield Stack(services.world, services.thunder, services.phoenix, home_mixer, channel,
                    home_mixer_pb2_grpc.ScoredPostsServiceStub(channel),
                    thunder_pb2_grpc.ThunderServiceStub(thunder_channel), thunder_channel)
        await channel.close()
        await thunder_channel.close()
    finally:
        _stop(home_mixer)
