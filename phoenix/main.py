"""`foryou phoenix`: run the Phoenix model server until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from foryou import config, logs, metrics
from phoenix.server_models import PRESETS

log = logging.getLogger(__name__)

SETTINGS = [
    config.Setting("host", config.DEFAULT_HOST, "address to listen on"),
    config.Setting("port", config.PHOENIX_PORT, "gRPC port"),
    config.Setting("metrics_port", config.PHOENIX_METRICS_PORT, "Prometheus metrics port (0 = off)"),
    config.KAFKA_SETTING,
    config.Setting("max_age_hours", 48.0, "corpus retention: posts older than this are not retrievable"),
    config.Setting("max_batch", 32, "most requests in one model micro-batch"),
    config.Setting("max_wait_ms", 2.0, "longest a request waits for its micro-batch to fill"),
    config.Setting("reload_every_s", 3.0, "how often the checkpoint directory is polled"),
    config.Setting("warm_every_bucket", 1, "1: compile every candidate bucket before SERVING; 0: only the smallest"),
    config.Setting("log_level", "INFO", "log level"),
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_settings(parser, SETTINGS)
    parser.add_argument("--preset", choices=PRESETS, default=config.env("PRESET", "demo"),
                        help="model sizes when no checkpoint is found (random init) (env FORYOU_PRESET, default demo)")
    parser.add_argument("--checkpoint-dir", default=config.env("CHECKPOINT_DIR", "") or None,
                        help="load the newest ranker/retriever checkpoints here and hot-reload newer ones "
                             "(env FORYOU_CHECKPOINT_DIR)")


async def serve(args: argparse.Namespace) -> int:
    from phoenix.server import PhoenixServer, PhoenixSettings  # imports JAX: only when serving

    settings = PhoenixSettings(
        host=args.host, port=args.port, kafka_bootstrap=args.kafka_bootstrap, preset=args.preset,
        checkpoint_dir=args.checkpoint_dir, max_age_hours=args.max_age_hours,
        reload_every_s=args.reload_every_s, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
        warm_every_bucket=bool(args.warm_every_bucket),
    )
    metrics.start_metrics_server(args.metrics_port, args.host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await PhoenixServer(settings).start()
    log.info("phoenix listening on %s (preset %s, checkpoints %s)", server.address, args.preset, args.checkpoint_dir)
    await stop.wait()
    log.info("phoenix stopping")
    await server.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    logs.setup("phoenix", args.log_level)
    logging.getLogger("absl").setLevel(logging.WARNING)  # orbax logs every file it touches
    return asyncio.run(serve(args))
