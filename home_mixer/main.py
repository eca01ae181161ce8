"""`foryou home-mixer`: the ScoredPostsService over grpc.aio.

It reports SERVING as soon as its server is up: it may start before Thunder and Phoenix, and
serves degraded feeds until they are reachable."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from foryou import config, logs
from foryou.grpc_server import ServiceServer
from foryou.metrics import start_metrics_server
from foryou_protos import home_mixer_pb2_grpc
from home_mixer.clients import PhoenixClient, ThunderClient
from home_mixer.pipeline import build_pipeline
from home_mixer.service import DEFAULT_REQUEST_BUDGET_S, ScoredPostsServicer
from home_mixer.side_effects.record_served import ServedPublisher

log = logging.getLogger(__name__)

SERVICE_NAME = "foryou.ScoredPostsService"

SETTINGS = [
    config.Setting("host", config.DEFAULT_HOST, "address to listen on"),
    config.Setting("port", config.HOME_MIXER_PORT, "gRPC port"),
    config.Setting("metrics_port", config.HOME_MIXER_METRICS_PORT, "Prometheus port (0 = off)"),
    config.KAFKA_SETTING,
    config.Setting("thunder_address", f"{config.DEFAULT_HOST}:{config.THUNDER_PORT}", "Thunder host:port"),
    config.Setting("phoenix_address", f"{config.DEFAULT_HOST}:{config.PHOENIX_PORT}", "Phoenix host:port"),
    config.Setting("thunder_timeout_s", 1.0, "deadline of each Thunder call, seconds"),
    config.Setting("phoenix_timeout_s", 3.0, "deadline of each Phoenix call, seconds"),
    config.Setting("request_budget_s", DEFAULT_REQUEST_BUDGET_S, "longest a request may take when the client sets no deadline"),
    config.Setting("max_concurrent_rpcs", 64, "beyond it requests get RESOURCE_EXHAUSTED at once"),
    config.Setting("log_level", "INFO", "log level"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_settings(parser, SETTINGS)


async def serve(args: argparse.Namespace) -> None:
    thunder = ThunderClient(args.thunder_address, args.thunder_timeout_s)
    phoenix = PhoenixClient(args.phoenix_address, args.phoenix_timeout_s)
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
