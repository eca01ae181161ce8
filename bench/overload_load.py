"""Closed-loop overload of one real service process: start Thunder, Phoenix or HomeMixer as
`foryou <service>` (foryou/process.py, its shipped admission settings), drive N concurrent clients that each send
one call at a time with the deadline the real caller sets, and collect per-level latencies of
admitted calls and of refusals, error codes and the server's RSS.

Shared by `foryou bench overload` (the ramp) and tests/reliability/test_overload.py."""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from bench.common import run_clients
from foryou.broker import free_port
from foryou.process import ServiceProcess
from foryou_protos import common_pb2, home_mixer_pb2, phoenix_pb2, thunder_pb2

OK = "OK"
REFUSED = grpc.StatusCode.RESOURCE_EXHAUSTED.name
BACKOFF_S = 0.05   # a refused client's pause before its next call


@dataclass(frozen=True)
class Target:
    """What a caller of this service sends, and with which deadline (the caller's default)."""
    method: str
    request: bytes
    timeout_s: float
    args: tuple[str, ...] = ()          # extra flags for `foryou <service>`


def thunder_target() -> Target:
    # HomeMixer's post lookup: a full page of ids (Thunder's largest regular request); its
    # call deadline is HomeMixer's --thunder-timeout-s.
    request = thunder_pb2.GetPostsRequest(post_ids=range(1, 5001)).SerializeToString()
    return Target("/foryou.ThunderService/GetPosts", request, 0.2)


def phoenix_target() -> Target:
    rng = np.random.default_rng(0)
    candidates = rng.integers(1, 2**40, 256)
    request = phoenix_pb2.RankRequest(
        user_id=7, history=[phoenix_pb2.HistoryItem(post_id=int(p), author_id=int(p) % 97 + 1, actions=[common_pb2.FAVORITE])
                            for p in rng.integers(1, 2**40, 8)],
        post_ids=[int(p) for p in candidates], author_ids=[int(p) % 89 + 1 for p in candidates])
    return Target("/foryou.PhoenixService/Rank", request.SerializeToString(), 0.5,
                  ("--preset", "tiny", "--warm-every-bucket"))   # no compilation while measured


def home_mixer_target() -> Target:
    # Dependencies unreachable: every feed is the degraded (empty, safe) one, after the
    # breakers open, so what is measured is HomeMixer's own work and its admission.
    dead = f"127.0.0.1:{free_port()}"
    return Target("/foryou.ScoredPostsService/GetScoredPosts",
                  home_mixer_pb2.ScoredPostsQuery(viewer_id=7).SerializeToString(), 2.0,
                  ("--thunder-address", dead, "--phoenix-address", dead))


TARGETS = {"thunder": thunder_target, "phoenix": phoenix_target, "home-mixer": home_mixer_target}


@dataclass
class Level:
    clients: int
    duration_s: float
    latencies_s: dict[str, list[float]] = field(default_factory=dict)  # code name -> latencies
    rss_mb: float = 0.0

    def count(self, code: str) -> int:
        return len(self.latencies_s.get(code, []))

    @property
    def requests(self) -> int:
        return sum(map(len, self.latencies_s.values()))

    def p(self, code: str, q: float) -> float:
        values = self.latencies_s.get(code)
        return float(np.percentile(values, q)) * 1000 if values else float("nan")

    @property
    def codes(self) -> Counter:
        return Counter({code: len(v) for code, v in self.latencies_s.items()})


async def drive(address: str, target: Target, clients: int, duration_s: float, channels: int = 8,
                backoff_s: float = BACKOFF_S) -> Level:
    """`clients` loops, each sending its next call as soon as the last one is answered, or
    `backoff_s` after a refusal (a refusal asks the caller to back off; HomeMixer's breaker
    does, for longer)."""
    level = Level(clients, duration_s)
    # One connection per channel (a local subchannel pool), as separate callers would have.
    chans = [grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
             for _ in range(min(clients, channels))]
    calls = [c.unary_unary(target.method, request_serializer=None, response_deserializer=None) for c in chans]
    for chan in chans:
        await chan.channel_ready()
    stop_at = time.monotonic() + duration_s

    async def client(i: int) -> None:
        call = calls[i % len(calls)]
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                await call(target.request, timeout=target.timeout_s)
                code = OK
            except grpc.aio.AioRpcError as err:
                code = err.code().name
            level.latencies_s.setdefault(code, []).append(time.perf_counter() - started)
            if code == REFUSED:
                await asyncio.sleep(backoff_s)

    level.duration_s = await run_clients(client, clients, chans)
    return level


@contextlib.asynccontextmanager
async def running(service: str, kafka: str, log_path: Path | None = None, metrics_port: int = 0,
                  start_timeout_s: float = 600.0):
    """(process, target) of a started service (Phoenix compiles its model first: minutes on a
    loaded 2-core machine)."""
    target = TARGETS[service]()
    port = free_port()
    process = ServiceProcess(service, ["--port", str(port), "--metrics-port", str(metrics_port), "--kafka-bootstrap",
                                       kafka, "--log-level", "WARNING", *target.args], f"127.0.0.1:{port}",
                             env={"JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")},
                             log_path=str(log_path) if log_path else None)
    try:
        process.start()
        await process.wait_ready(start_timeout_s)
        yield process, target
    finally:
        process.stop()
