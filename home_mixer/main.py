"""`foryou home-mixer`: the ScoredPostsService over grpc.aio.

It reports SERVING as soon as its server is up: it may start before Thunder and Phoenix, and
serves degraded (smaller, never unsafe) feeds until they are reachable. The call deadlines,
circuit breakers, health watching and safety cache are described in docs/reliability.md; the
settings are home_mixer/settings.py."""
from __future__ import annotations

import argparse
import logging

from foryou import config, logs, service_main
from foryou.grpc_server import ServiceServer
from foryou_protos import home_mixer_pb2_grpc
from home_mixer.clients import BreakerSettings, PhoenixClient, ThunderClient
from home_mixer.pipeline import build_pipeline
from home_mixer.safety_cache import SafetyCache
from home_mixer.service import ScoredPostsServicer
from home_mixer.settings import HomeMixerSettings
from home_mixer.side_effects.record_served import ServedPublisher

log = logging.getLogger(__name__)

SERVICE_NAME = "foryou.ScoredPostsService"

SETTINGS = HomeMixerSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_settings(parser, SETTINGS)


async def serve(args: HomeMixerSettings) -> None:
    breaker = BreakerSettings(args.breaker_failures, args.breaker_reset_s, args.health_every_s)
    cache = SafetyCache(args.cache_ttl_s, args.cache_max_users, args.cache_max_posts)
    thunder = ThunderClient(args.thunder_address, args.thunder_timeout_s, cache, breaker)
    phoenix = PhoenixClient(args.phoenix_address, args.phoenix_timeout_s, breaker)
    publisher = ServedPublisher(args.kafka_bootstrap)
    pipeline = build_pipeline(thunder, phoenix, publisher)
    server = ServiceServer.of("home_mixer", [SERVICE_NAME], args)
    home_mixer_pb2_grpc.add_ScoredPostsServiceServicer_to_server(
        ScoredPostsServicer(pipeline, settings=args), server.server)
    stop = service_main.stop_event()
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
    return service_main.run("home_mixer", SETTINGS, args, serve)
