"""`foryou home-mixer`: the ScoredPostsService over grpc.aio.

It reports SERVING as soon as its server is up: it may start before Thunder and Phoenix, and
serves degraded (smaller, never unsafe) feeds until they are reachable. The call deadlines,
circuit breakers, health watching and safety cache are described in docs/reliability.md."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from foryou import config, logs
from foryou.grpc_server import ServiceServer
from foryou.metrics import start_metrics_server
from foryou_protos import home_mixer_pb2_grpc
from home_mixer.clients import BreakerSettings, PhoenixClient, ThunderClient
from home_mixer.pipeline import build_pipeline
from home_mixer.safety_cache import SafetyCache
from home_mixer.service import DEFAULT_REQUEST_BUDGET_S, ScoredPostsServicer
from home_mixer.side_effects.record_served import ServedPublisher

log = logging.getLogger(__name__)

SERVICE_NAME = "foryou.ScoredPostsService"

SETTINGS = [
    config.Setting("host", config.DEFAULT_HOST, "address to listen on"),
    config.Setting("port", config.HOME_MIXER_PORT, "gRPC port"),
    config.Setting("metrics_port", config.HOME_MIXER_METRICS_PORT, "Prometheus port (0 = off)"),
    config.KAFKA_SETTING,
    config.Setting("thunder_address", f"{config.DEFAULT_HOST}:{config.THUNDER_PORT}", "Thunder host:port, or several comma-separated, or dns:///name:port (replicas, docs/scaling.md)"),
    config.Setting("phoenix_address", f"{config.DEFAULT_HOST}:{config.PHOENIX_PORT}", "Phoenix host:port, or several comma-separated, or dns:///name:port (replicas, docs/scaling.md)"),
    config.Setting("thunder_timeout_s", 0.2, "deadline of each Thunder call, seconds"),
    config.Setting("phoenix_timeout_s", 0.5, "deadline of each Phoenix call (Rank, Retrieve), seconds"),
    config.Setting("breaker_failures", 5, "consecutive failed calls that open a dependency's circuit breaker"),
    config.Setting("breaker_reset_s", 1.0, "seconds an open breaker waits before a probe call"),
    config.Setting("health_every_s", 0.5, "seconds between health checks of each dependency (0 = off)"),
    config.Setting("cache_ttl_s", 300.0, "life of the cached user features and post facts, seconds (0 = no cache)"),
    config.Setting("cache_max_users", 100_000, "viewers whose user features are cached"),
    config.Setting("cache_max_posts", 500_000, "posts whose core data and labels are cached"),
    config.Setting("request_budget_s", DEFAULT_REQUEST_BUDGET_S, "longest a request may take when the client sets no deadline"),
    config.Setting("max_concurrent_rpcs", 64, "beyond it requests get RESOURCE_EXHAUSTED at once"),
    config.Setting("log_level", "INFO", "log level"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_settings(parser, SETTINGS)


async def serve(args: argparse.Namespace) -> None:
    breaker = BreakerSettings(args.breaker_failures, args.breaker_reset_s, args.health_every_s)
    cache = SafetyCache(args.cache_ttl_s, args.cache_max_users, args.cache_max_posts)
    thunder = ThunderClient(args.thunder_address, args.thunder_timeout_s, cache, breaker)
    phoenix = PhoenixClient(args.phoenix_address, args.phoenix_timeout_s, breaker)
    publisher = ServedPublisher(args.kafka_bootstrap)
    pipeline = build_pipeline(thunder, phoenix, publisher)
    server = ServiceServer("home_mixer", [SERVICE_NAME], host=args.host, port=args.port,
                           max_concurrent_rpcs=args.max_concurrent_rpcs or None)
    home_mixer_pb2_grpc.add_ScoredPostsServiceServicer_to_server(
        ScoredPostsServicer(pipeline, request_budget_s=args.request_budget_s), server.server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    thunder.watch_health()
    phoenix.watch_health()
    await server.set_serving()
    log.info("home_mixer ready", extra=logs.fields(thunder=args.thunder_address, phoenix=args.phoenix_address))
    await stop.wait()
    log.info("home_mixer stopping")
    await server.set_not_serving()
    await server.stop(grace_s=2.0)
    await pipeline.drain_side_effects()
    await publisher.close()
    await thunder.close()
    await phoenix.close()


def run(args: argparse.Namespace) -> int:
    logs.setup("home_mixer", args.log_level)
    start_metrics_server(args.metrics_port, args.host)
    asyncio.run(serve(args))
    return 0
